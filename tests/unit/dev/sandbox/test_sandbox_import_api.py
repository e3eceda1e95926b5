"""The sandbox's import APIs, in-process, with an in-memory publisher: every validation rule, the overlay,
the event shape, all-or-nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.dev.sandbox.imports import InMemoryPublisher
from cokreat_jobs.dev.sandbox.testing import TestClient, sandbox_client
from cokreat_jobs.sunbird.imports import load_import_config

CONTENT_TOPIC = "sunbirddev.auto.creation.job.request"
QS_TOPIC = "sunbirddev.object.import.request"


class Sources:
    """A tiny HTTP server standing in for the source repository: path -> (status, JSON body)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.seen: list[str] = []
        answers, seen = self.answers, self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                seen.append(self.path)
                status, body = answers.get(
                    self.path.split("?")[0], (404, {"responseCode": "RESOURCE_NOT_FOUND"})
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, path: str, key: str, metadata: dict[str, Any], status: int = 200) -> str:
        body = {"responseCode": "OK" if status == 200 else "CLIENT_ERROR", "result": {key: metadata}}
        self.answers[path] = (status, body)
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def sources() -> Iterator[Sources]:
    s = Sources()
    yield s
    s.close()


@pytest.fixture()
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


@pytest.fixture()
def client(tmp_path: Path, publisher: InMemoryPublisher) -> Iterator[TestClient]:
    with sandbox_client(tmp_path / "sb", {"import_publisher": publisher}) as c:
        yield c


def md(code: str = "c1", **extra: Any) -> dict[str, Any]:
    base = {
        "name": f"Content {code}",
        "code": code,
        "mimeType": "application/pdf",
        "contentType": "Resource",
        "primaryCategory": "Learning Resource",
        "artifactUrl": "https://example.org/a.pdf",
        "framework": "NCF",
        "channel": "ch1",
        "objectType": "Content",
        "lastPublishedBy": "u1",
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def post(client: TestClient, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    r = client.post(path, json=body) if not isinstance(body, bytes) else client.post(path, content=body)
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.status_code, r.json()


def assert_error(answer: tuple[int, dict[str, Any]], status: int, err: str, msg: str | None = None) -> str:
    code, body = answer
    assert code == status, body
    assert body["params"]["status"] == "failed"
    assert body["params"]["err"] == err
    assert body["responseCode"] == ("CLIENT_ERROR" if status == 400 else "SERVER_ERROR")
    if msg is not None:
        assert body["params"]["errmsg"] == msg
    return str(body["params"]["errmsg"])


# -- success and event shape ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/content/v4/import", "/content/v3/import", "/content/v1/import"])
def test_content_import_publishes_one_event_per_object(
    client: TestClient, publisher: InMemoryPublisher, path: str
) -> None:
    objects = [
        {"metadata": md("c1"), "stage": "publish", "collection": [{"identifier": "col1", "unitId": "u1"}]},
        {"metadata": md("c2", downloadUrl="x", variants={"a": 1}, previewUrl="p", streamingUrl="s")},
    ]
    status, body = post(client, "/api" + path, {"request": {"content": objects}})
    assert status == 200, body
    assert body["responseCode"] == "OK" and body["id"] == "api.content.import"
    assert body["ver"] == ("3.0" if "/v3/" in path else "4.0"), "the real controllers' envelope versions"
    pid = body["result"]["processId"]
    assert len(pid) == 36
    events = publisher.events(CONTENT_TOPIC)
    assert len(events) == 2
    keys = [k for _t, k, _v in publisher.records]
    e1, e2 = events
    assert keys == [e1["object"]["id"], e2["object"]["id"]]
    assert e1["eid"] == "BE_JOB_REQUEST" and e1["mid"].startswith("LP.") and isinstance(e1["ets"], int)
    assert e1["actor"] == {"id": "Auto Creator", "type": "System"}
    assert e1["context"] == {
        "pdata": {"id": "org.sunbird.platform", "ver": "1.0", "env": "dev"},
        "channel": "ch1",
    }
    assert e1["object"]["id"].startswith("do_") and e1["object"]["ver"] is None
    assert e1["object"]["id"] != e2["object"]["id"]
    ed = e1["edata"]
    assert list(ed) == [
        "action",
        "iteration",
        "objectType",
        "identifier",
        "metadata",
        "collection",
        "stage",
        "originData",
    ]
    assert ed["action"] == "auto-create" and ed["iteration"] == 1 and ed["objectType"] == "Content"
    assert ed["identifier"] == e1["object"]["id"]
    assert ed["metadata"] == {**md("c1"), "processId": pid}
    assert ed["collection"] == [{"identifier": "col1", "unitId": "u1"}]
    assert ed["stage"] == "publish" and ed["originData"] == {}
    # remove_props of contents
    assert e2["edata"]["metadata"] == {**md("c2"), "processId": pid}
    assert e2["edata"]["collection"] == [] and e2["edata"]["stage"] == ""


def test_a_single_object_and_a_given_process_id(client: TestClient, publisher: InMemoryPublisher) -> None:
    status, body = post(
        client, "/content/v4/import", {"request": {"content": {"metadata": md()}, "processId": "my-pid"}}
    )
    assert status == 200 and body["result"]["processId"] == "my-pid"
    (event,) = publisher.events()
    assert event["edata"]["metadata"]["processId"] == "my-pid"


def test_source_is_read_and_overlaid(
    client: TestClient, publisher: InMemoryPublisher, sources: Sources
) -> None:
    source_md = md("src", name="Source name", status="Live", versionKey="123", downloadUrl="d", variants={})
    source_md["originData"] = {"identifier": "do_orig", "repository": "https://elsewhere"}
    url = sources.add("/api/content/v1/read/do_src1", "content", source_md)
    obj = {"source": url, "metadata": {"name": "Overridden name", "channel": "ch9"}, "stage": "review"}
    status, body = post(client, "/content/v4/import", {"request": {"content": [obj]}})
    assert status == 200, body
    (event,) = publisher.events()
    assert event["object"] == {"id": "do_src1", "ver": "123"}
    assert event["context"]["channel"] == "ch9"
    ed = event["edata"]
    assert "identifier" not in ed and ed["repository"] == url
    assert ed["metadata"]["name"] == "Overridden name" and ed["metadata"]["source"] == url
    assert ed["metadata"]["status"] == "Live"
    assert "downloadUrl" not in ed["metadata"] and "variants" not in ed["metadata"]
    assert ed["originData"] == {"identifier": "do_orig", "repository": "https://elsewhere"}
    assert ed["stage"] == "review"


def test_the_object_level_origin_data_is_ignored(
    client: TestClient, publisher: InMemoryPublisher, sources: Sources
) -> None:
    url = sources.add("/content/v4/read/do_s2", "content", md("s2"))
    with_origin = sources.add(
        "/content/v4/read/do_s3", "content", md("s3", originData={"identifier": "o", "repository": "r"})
    )
    objs = [
        {"source": url, "metadata": {}, "originData": {"identifier": "x", "repository": "r"}},
        {"metadata": md("n"), "originData": {"identifier": "y"}},
        {"source": with_origin, "originData": {"identifier": "x"}},
    ]
    assert post(client, "/content/v4/import", {"request": {"content": objs}})[0] == 200
    e1, e2, e3 = publisher.events()
    assert e1["edata"]["originData"] == {} and e2["edata"]["originData"] == {}
    assert e3["edata"]["originData"] == {"identifier": "o", "repository": "r"}, "the metadata's"


def test_a_blank_object_type_becomes_the_apis(
    client: TestClient, publisher: InMemoryPublisher, sources: Sources
) -> None:
    objs = [{"metadata": md("a", objectType=None)}, {"metadata": md("b", objectType=" ")}]
    assert post(client, "/content/v1/import", {"request": {"content": objs}})[0] == 200
    qs = {"name": "QS", "code": "q", "mimeType": "m", "framework": "f", "status": "Live", "channel": "c"}
    url = sources.add("/questionset/v1/read/do_qs_nt", "questionset", qs)
    assert post(client, "/questionset/v1/import", {"request": {"questionset": {"source": url}}})[0] == 200
    e1, e2, e3 = publisher.events()
    for e, want in ((e1, "Content"), (e2, "Content"), (e3, "QuestionSet")):
        assert e["edata"]["objectType"] == want and e["edata"]["metadata"]["objectType"] == want


def test_the_source_may_be_the_sandbox_itself(tmp_path: Path) -> None:
    from cokreat_jobs.dev.sandbox.server import ServerThread
    from cokreat_jobs.dev.sandbox.testing import seed

    pub = InMemoryPublisher()
    with ServerThread(tmp_path / "sb", {"import_publisher": pub}) as server:
        import httpx

        with httpx.Client(base_url=server.base_url) as c:
            seed(c, contents=[{**md("self"), "identifier": "do_self", "status": "Live"}])
            url = f"{server.base_url}/content/v4/read/do_self"
            r = c.post("/content/v4/import", json={"request": {"content": [{"source": url, "metadata": {}}]}})
            assert r.status_code == 200, r.text
    (event,) = pub.events()
    assert event["object"]["id"] == "do_self" and event["edata"]["metadata"]["code"] == "self"


def test_questionset_import(client: TestClient, publisher: InMemoryPublisher, sources: Sources) -> None:
    qs = {
        "name": "QS",
        "code": "qs1",
        "mimeType": "application/vnd.sunbird.questionset",
        "framework": "NCF",
        "status": "Live",
        "objectType": "QuestionSet",
        "channel": "ch1",
        "downloadUrl": "https://x/qs.ecar",
        "versionKey": "9",
    }
    url = sources.add("/api/questionset/v1/read/do_qs1", "questionset", qs)
    status, body = post(client, "/questionset/v1/import", {"request": {"questionset": {"source": url}}})
    assert status == 200, body
    assert body["id"] == "api.questionset.import"
    assert body["ver"] == "3.0", "inquiry-api-service answers in its Response's default version"
    (event,) = publisher.events(QS_TOPIC)
    assert publisher.records[0][1] == "do_qs1"
    assert event["edata"]["objectType"] == "QuestionSet"
    assert event["edata"]["metadata"]["downloadUrl"] == "https://x/qs.ecar", "question sets remove nothing"
    assert event["edata"]["repository"] == url
    assert post(client, "/questionset/v4/import", {"request": {"questionset": [{"source": url}]}})[0] == 200


# -- validation rules ---------------------------------------------------------------------------------------

INVALID = "Invalid Request! Please Provide Valid Request."


@pytest.mark.parametrize(
    "body",
    [
        {"request": {"content": []}},
        {"request": {}},
        {"request": {"content": "x"}},
        {"request": {"content": [1]}},
        {"request": {"content": [{"metadata": "x"}]}},
        {"request": {"questionset": [{"metadata": md()}]}},  # the content API reads request.content
        {},
        {"request": None},
    ],
)
def test_empty_or_malformed_request(client: TestClient, publisher: InMemoryPublisher, body: Any) -> None:
    assert_error(post(client, "/content/v4/import", body), 400, "ERR_INVALID_IMPORT_REQUEST", INVALID)
    assert publisher.records == []


def test_request_limit(client: TestClient, publisher: InMemoryPublisher) -> None:
    objects = [{"metadata": md(f"c{i}")} for i in range(201)]
    assert_error(
        post(client, "/content/v4/import", {"request": {"content": objects}}),
        400,
        "ERR_REQUEST_LIMIT_EXCEED",
        "Request Limit Exceeded. Maximum Allowed Objects In Single Request is 200",
    )
    assert publisher.records == []
    assert post(client, "/content/v4/import", {"request": {"content": objects[:200]}})[0] == 200
    assert len(publisher.records) == 200


def test_request_limit_from_settings(tmp_path: Path) -> None:
    pub = InMemoryPublisher()
    with sandbox_client(tmp_path, {"import_publisher": pub, "import.request_size_limit": 2}) as c:
        objects = [{"metadata": md(f"c{i}")} for i in range(3)]
        errmsg = assert_error(
            post(c, "/content/v4/import", {"request": {"content": objects}}), 400, "ERR_REQUEST_LIMIT_EXCEED"
        )
        assert errmsg.endswith("is 2")


def test_questionset_without_source(client: TestClient, publisher: InMemoryPublisher) -> None:
    qs = {"name": "q", "code": "q", "mimeType": "m", "framework": "f", "channel": "c"}
    status, body = post(client, "/questionset/v4/import", {"request": {"questionset": [{"metadata": qs}]}})
    assert status == 200, body
    (event,) = publisher.events(QS_TOPIC)
    ed = event["edata"]
    assert event["object"]["id"].startswith("do_") and ed["identifier"] == event["object"]["id"]
    assert "repository" not in ed and ed["objectType"] == "QuestionSet" and ed["originData"] == {}
    assert ed["metadata"] == {**qs, "processId": body["result"]["processId"], "objectType": "QuestionSet"}


def test_unreadable_source(client: TestClient, publisher: InMemoryPublisher, sources: Sources) -> None:
    good = sources.add("/content/v4/read/do_ok", "content", md("ok"))
    objs = [{"source": good}, {"source": sources.base + "/content/v4/read/do_missing"}]
    errmsg = assert_error(
        post(client, "/content/v4/import", {"request": {"content": objs}}), 400, "ERR_READ_SOURCE"
    )
    assert (
        errmsg
        == "Received Invalid Response While Reading Data From Source. Response Code is : RESOURCE_NOT_FOUND"
    )
    # an unreachable source too
    objs = [{"source": "http://127.0.0.1:9/content/v4/read/do_x"}]
    assert_error(post(client, "/content/v4/import", {"request": {"content": objs}}), 400, "ERR_READ_SOURCE")
    assert publisher.records == []


def test_source_status(client: TestClient, publisher: InMemoryPublisher, sources: Sources) -> None:
    qs = {"name": "QS", "code": "q", "mimeType": "m", "framework": "f", "objectType": "QuestionSet"}
    live = sources.add("/questionset/v1/read/do_live", "questionset", {**qs, "status": "Live"})
    draft = sources.add("/questionset/v1/read/do_draft", "questionset", {**qs, "status": "Draft"})
    body = {"request": {"questionset": [{"source": live}, {"source": draft}]}}
    assert_error(
        post(client, "/questionset/v4/import", body),
        400,
        "ERR_SOURCE_STATUS_VALIDATION",
        "Source Object Status Not Qualified For Import Operation. Please Provide Valid Source With Status "
        "[Live, Unlisted]",
    )
    assert publisher.records == []
    # contents: any source status
    draft_content = sources.add("/content/v4/read/do_d", "content", md("d", status="Draft"))
    assert post(client, "/content/v4/import", {"request": {"content": [{"source": draft_content}]}})[0] == 200


def test_source_status_is_checked_only_when_the_source_returned_metadata(
    client: TestClient, publisher: InMemoryPublisher, sources: Sources
) -> None:
    # a 200 without result.questionset: no metadata, so no status; the request's metadata alone
    sources.answers["/questionset/v1/read/do_bare"] = (200, {"responseCode": "OK", "result": {}})
    url = sources.base + "/questionset/v1/read/do_bare"
    qs = {"name": "QS", "code": "q", "mimeType": "m", "framework": "f", "channel": "c"}
    body = {"request": {"questionset": [{"source": url, "metadata": qs}]}}
    assert post(client, "/questionset/v1/import", body)[0] == 200
    (event,) = publisher.events(QS_TOPIC)
    assert event["object"]["id"] == "do_bare" and event["edata"]["repository"] == url
    assert "source" not in event["edata"]["metadata"] and event["edata"]["metadata"]["name"] == "QS"
    # nor any metadata from the request: the required props refuse it, not the status
    body = {"request": {"questionset": [{"source": url}]}}
    assert_error(post(client, "/questionset/v1/import", body), 400, "ERR_REQUIRED_PROPS_VALIDATION")


def test_required_props(client: TestClient, publisher: InMemoryPublisher) -> None:
    objs = [
        {"metadata": md("ok")},
        {"metadata": md("bad1", artifactUrl=None)},
        {"metadata": md("bad2", framework=None, contentType=None)},
        {"metadata": md("bad3", channel=None)},
    ]
    errmsg = assert_error(
        post(client, "/content/v4/import", {"request": {"content": objs}}),
        400,
        "ERR_REQUIRED_PROPS_VALIDATION",
    )
    assert errmsg == (
        'Validation Failed! Mandatory Properties Are ["name","code","mimeType","contentType","artifactUrl",'
        '"framework","channel"] | Required Property\'s Missing For [bad1, bad2, bad3]'
    )
    assert publisher.records == [], "all or nothing"
    # objects without a code are named by nothing
    errmsg = assert_error(
        post(client, "/content/v4/import", {"request": {"content": [{"metadata": {"name": "x"}}]}}),
        400,
        "ERR_REQUIRED_PROPS_VALIDATION",
    )
    assert "Missing For" not in errmsg


def test_required_props_can_come_from_the_source(
    client: TestClient, publisher: InMemoryPublisher, sources: Sources
) -> None:
    url = sources.add("/content/v4/read/do_full", "content", md("full"))
    assert (
        post(client, "/content/v4/import", {"request": {"content": [{"source": url, "metadata": {}}]}})[0]
        == 200
    )


def test_required_props_missing_after_removal(tmp_path: Path) -> None:
    pub = InMemoryPublisher()
    settings = {"import_publisher": pub, "import": {"content": {"required_props": ["name", "downloadUrl"]}}}
    with sandbox_client(tmp_path, settings) as c:
        body = {"request": {"content": [{"metadata": md("x", downloadUrl="d")}]}}
        assert_error(post(c, "/content/v4/import", body), 400, "ERR_REQUIRED_PROPS_VALIDATION")
    assert pub.records == []


def test_stage(client: TestClient, publisher: InMemoryPublisher) -> None:
    objs = [{"metadata": md("a"), "stage": "publish"}, {"metadata": md("b"), "stage": "deploy"}]
    assert_error(
        post(client, "/content/v4/import", {"request": {"content": objs}}),
        400,
        "ERR_OBJECT_STAGE_VALIDATION",
        "Object Stage Validation Failed! Valid Object Stages Are [create, upload, review, publish]",
    )
    assert publisher.records == []


def test_required_props_are_checked_before_stages(client: TestClient) -> None:
    objs = [{"metadata": md("a"), "stage": "deploy"}, {"metadata": md("b", name=None)}]
    assert_error(
        post(client, "/content/v4/import", {"request": {"content": objs}}),
        400,
        "ERR_REQUIRED_PROPS_VALIDATION",
    )


def test_malformed_json_is_the_frameworks_page(client: TestClient) -> None:
    r = client.post("/content/v4/import", content=b"{not json")
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")


def test_without_kafka(tmp_path: Path) -> None:
    with sandbox_client(tmp_path) as c:
        errmsg = assert_error(
            post(c, "/content/v4/import", {"request": {"content": [{"metadata": md()}]}}),
            500,
            "ERR_SYSTEM_EXCEPTION",
        )
        assert "Kafka is not configured" in errmsg
        # validation still answers first
        assert_error(
            post(c, "/content/v4/import", {"request": {"content": []}}), 400, "ERR_INVALID_IMPORT_REQUEST"
        )


def test_publish_failure(client: TestClient, publisher: InMemoryPublisher) -> None:
    publisher.fail = "broker down"
    errmsg = assert_error(
        post(client, "/content/v4/import", {"request": {"content": [{"metadata": md()}]}}),
        500,
        "ERR_SYSTEM_EXCEPTION",
    )
    assert "broker down" in errmsg


def test_requests_are_logged_and_faultable(client: TestClient, publisher: InMemoryPublisher) -> None:
    client.post("/_sandbox/faults", json={"method": "POST", "path": "*/import", "status": 503, "times": 1})
    assert post(client, "/content/v4/import", {"request": {"content": [{"metadata": md()}]}})[0] == 503
    assert publisher.records == []
    assert post(client, "/content/v4/import", {"request": {"content": [{"metadata": md()}]}})[0] == 200


def test_config_defaults_and_overrides() -> None:
    cfg = load_import_config()
    assert cfg.request_size_limit == 200
    assert cfg.content.required_props == (
        "name",
        "code",
        "mimeType",
        "contentType",
        "artifactUrl",
        "framework",
        "channel",
    )
    assert cfg.content.remove_props == ("downloadUrl", "variants", "previewUrl", "streamingUrl", "itemSets")
    assert cfg.content.valid_source_status == () and cfg.content.output_topic == CONTENT_TOPIC
    assert cfg.questionset.required_props == ("name", "code", "mimeType", "framework", "channel")
    assert cfg.questionset.remove_props == () and cfg.questionset.valid_source_status == ("Live", "Unlisted")
    assert cfg.questionset.output_topic == QS_TOPIC
    assert cfg.content.valid_stages == ("create", "upload", "review", "publish")
    cfg = load_import_config(
        {"import": {"content": {"output_topic": "t1"}}, "import.questionset.output_topic": "t2"}
    )
    assert cfg.content.output_topic == "t1" and cfg.questionset.output_topic == "t2"
    assert cfg.content.required_props  # the rest kept


def test_output_topic_from_settings(tmp_path: Path) -> None:
    pub = InMemoryPublisher()
    with sandbox_client(tmp_path, {"import_publisher": pub, "import.content.output_topic": "my.topic"}) as c:
        assert post(c, "/content/v4/import", {"request": {"content": [{"metadata": md()}]}})[0] == 200
    assert pub.records[0][0] == "my.topic"

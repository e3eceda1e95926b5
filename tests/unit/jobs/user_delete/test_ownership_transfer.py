"""user-delete's release-8 shape: the config shapes, the object.type rule, ownership transfers (validity, the
request, how program-service's answer is read, what the logs carry), against an in-process stand-in."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.core.errors import ConfigError, PermanentError
from cokreat_jobs.core.event import reading_topic
from cokreat_jobs.core.response import HttpResponse
from cokreat_jobs.flink.pipeline import topic_pattern
from cokreat_jobs.jobs.user_delete.job import DEFINITION, user_key
from cokreat_jobs.jobs.user_delete.logic import (
    DEFAULT_TRANSFER_TOPIC,
    UserDeletion,
    input_shape,
    interpret_transfer,
    transfer_body,
    transfer_is_transient,
)
from cokreat_jobs.ops.replay import input_topic_of

R8 = ("kafka.input.user_delete_topic=prod.delete.user",)
NAMES = ("Annapurna", "Leelavathi", "Bhaskaracharya", "Ngozikaur")


def cfg_of(*overrides: str) -> JobConfig:
    return load_config("user-delete", overrides=["job.env=qa", *overrides], env={})


def transfer(**to: Any) -> dict[str, Any]:
    to_profile = {
        "userId": "to-9f1",
        "firstName": NAMES[2],
        "lastName": NAMES[3],
        "roles": ["CONTENT_CREATOR"],
        **to,
    }
    return {
        "eid": "BE_JOB_REQUEST",
        "mid": "LP.t.1",
        "actor": {"id": "ownership-transfer", "type": "System"},
        "object": {"id": "from-7c2", "type": "User"},
        "edata": {
            "action": "ownership-transfer",
            "organisationId": "org-1",
            "fromUserProfile": {
                "userId": "from-7c2",
                "firstName": NAMES[0],
                "lastName": NAMES[1],
                "roles": ["x"],
            },
            "toUserProfile": to_profile,
            "assetInformation": {"objectType": "Program", "identifier": "do_1"},
            "iteration": 1,
        },
    }


def deletion(uid: str = "u-1", object_type: Any = "User") -> dict[str, Any]:
    return {
        "mid": "LP.d",
        "object": {"id": uid, "type": object_type},
        "edata": {"action": "delete-user", "userId": uid},
    }


# --- config shapes ---------------------------------------------------------------------------------------


def test_release_7_shape_reads_kafka_input_topic_only() -> None:
    shape = input_shape(cfg_of())
    assert (shape.release, shape.topics) == (7, ["qa.delete.user"])
    assert DEFINITION.topics(cfg_of()) == ["qa.delete.user"]


def test_release_8_keys_win_over_the_job_env_default() -> None:
    cfg = cfg_of(*R8)
    shape = input_shape(cfg)
    assert shape.release == 8
    # never the packaged ${job.env}.delete.user: the transfer topic defaults to the reference's value
    assert DEFINITION.topics(cfg) == ["prod.delete.user", DEFAULT_TRANSFER_TOPIC]
    both = cfg_of(*R8, "kafka.input.ownership_transfer_topic=prod.user.ownership.transfer")
    assert DEFINITION.topics(both) == ["prod.delete.user", "prod.user.ownership.transfer"]


def test_release_8_without_the_delete_topic_is_refused() -> None:
    cfg = cfg_of("kafka.input.ownership_transfer_topic=prod.user.ownership.transfer")
    with pytest.raises(ConfigError, match="kafka.input.user_delete_topic"):
        DEFINITION.topics(cfg)
    with pytest.raises(ConfigError, match="kafka.input.user_delete_topic"):
        UserDeletion.from_config(cfg)
    with pytest.raises(ConfigError, match="user_delete_topic is missing or blank"):
        input_shape(cfg_of("kafka.input.user_delete_topic= "))


def test_one_source_pattern_reads_exactly_both_topics() -> None:
    import re

    pattern = topic_pattern(["prod.delete.user", "prod.user.ownership.transfer", "prod.delete.user"])
    assert re.fullmatch(pattern, "prod.delete.user") and re.fullmatch(pattern, "prod.user.ownership.transfer")
    assert not re.fullmatch(pattern, "prodXdelete.user") and not re.fullmatch(pattern, "prod.delete.user2")


def test_replay_sends_each_event_back_to_its_actions_topic() -> None:
    topic_of = input_topic_of("user-delete", cfg_of(*R8))
    assert topic_of(transfer()) == DEFAULT_TRANSFER_TOPIC
    assert topic_of(deletion()) == "prod.delete.user"
    assert input_topic_of("user-delete", cfg_of())(transfer()) == "qa.delete.user"


def test_the_key_of_a_transfer_is_the_giving_user() -> None:
    assert user_key(transfer()) == "from-7c2" and user_key(deletion("u-5")) == "u-5"


# --- reading program-service's answer ---------------------------------------------------------------------


def resp(status: int, body: Any) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, {"Content-Type": "application/json"}, raw)


PUBLISH_FAILED = {"id": "api.user.transfer", "params": {"err": "ERR_DELETING_USER_FAILED"}, "result": {}}
OK = {"params": {"status": "successful"}, "responseCode": "OK", "result": {}}


@pytest.mark.parametrize(
    ("status", "body", "transient"),
    [
        (200, OK, False),
        (400, PUBLISH_FAILED, True),  # program-service could not publish to Kafka
        (400, {"params": {"err": "SOMETHING_ELSE"}}, False),
        (404, b"<pre>Cannot POST /program/v1/user/transfer</pre>", False),
        (413, b"PayloadTooLargeError", False),
        (429, {}, True),
        (500, {}, True),
        (502, b"<html>bad gateway</html>", True),
    ],
)
def test_transfer_answer_classification(status: int, body: Any, transient: bool) -> None:
    assert transfer_is_transient(resp(status, body)) is transient


def test_interpret_transfer() -> None:
    assert interpret_transfer(resp(200, OK)) == "transferred"
    with pytest.raises(PermanentError, match="HTTP 200"):
        interpret_transfer(resp(200, {"responseCode": "SERVER_ERROR"}))
    with pytest.raises(PermanentError, match="release-8.0.0"):
        interpret_transfer(resp(404, b"Cannot POST"))


def test_the_request_body_is_the_whole_event() -> None:
    event = transfer()
    assert transfer_body(event) == {"request": event}


# --- the processor against a stand-in program-service -----------------------------------------------------


class Service:
    """Answers the transfer from a script (one answer a call, the last repeated) and any deletion with OK."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers) or [(200, OK)]
        self.transfers: list[Any] = []
        self.deletes: list[str] = []

    async def post(self, request: web.Request) -> web.StreamResponse:
        self.transfers.append(await request.json())
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type="text/html")
        return web.json_response(body, status=status)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        self.deletes.append(request.match_info["uid"])
        return web.json_response({"responseCode": "OK", "result": {"response": "done"}})


def run(svc: Service, events: list[tuple[str | None, dict[str, Any]]], *overrides: str) -> list[Any]:
    async def go() -> list[Any]:
        app = web.Application()
        app.router.add_post("/p/program/v1/user/transfer", svc.post)
        app.router.add_delete("/p/program/v1/user/{uid}", svc.delete)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        cfg = cfg_of(
            f"program-service-baseUrl=http://127.0.0.1:{port}/p", "http.retry.backoff_ms=1", *overrides
        )
        job = UserDeletion.from_config(cfg)
        out = []
        try:
            for topic, e in events:
                with reading_topic(topic):
                    out.append(await job.process(copy.deepcopy(e)))
            return out
        finally:
            await job.close()
            await runner.cleanup()

    return asyncio.run(go())


TRANSFER_TOPIC = ("kafka.input.ownership_transfer_topic=prod.transfer",)


def kinds(out: list[Any]) -> list[tuple[str, str]]:
    return [(o.kind, o.reason) for o in out]


def test_a_valid_transfer_posts_the_whole_event() -> None:
    svc = Service()
    out = run(svc, [("prod.transfer", transfer())], *R8, *TRANSFER_TOPIC)
    assert kinds(out) == [("success", "")] and out[0].detail == {"result": "transferred"}
    assert svc.transfers == [{"request": transfer()}]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["edata"]["fromUserProfile"].update(userId=" "), "edata.fromUserProfile.userId is blank"),
        (lambda e: e["edata"].pop("fromUserProfile"), "edata.fromUserProfile.userId is blank"),
        (lambda e: e["edata"]["toUserProfile"].update(userId=""), "edata.toUserProfile.userId is blank"),
        (
            lambda e: e["edata"]["toUserProfile"].update(firstName=""),
            "edata.toUserProfile.firstName is blank",
        ),
        (lambda e: e["edata"]["toUserProfile"].pop("lastName"), "edata.toUserProfile.lastName is blank"),
        (lambda e: e["edata"]["toUserProfile"].update(roles=[]), "edata.toUserProfile.roles is empty"),
        (lambda e: e["edata"]["toUserProfile"].pop("roles"), "edata.toUserProfile.roles is empty"),
        (lambda e: e["object"].update(type="Content"), "object.type is not User"),
        (lambda e: e.pop("object"), "object.type is not User"),
    ],
)
def test_invalid_transfers_are_skipped_and_never_sent(
    mutate: Callable[[dict[str, Any]], Any], reason: str
) -> None:
    svc = Service()
    event = transfer()
    mutate(event)
    assert kinds(run(svc, [("prod.transfer", event)], *R8, *TRANSFER_TOPIC)) == [("skipped", reason)]
    assert svc.transfers == []


def test_wrong_types_fail_as_invalid_fields() -> None:
    svc = Service()
    events = [transfer(roles="CONTENT_CREATOR"), transfer(firstName=7)]
    out = run(svc, [("prod.transfer", e) for e in events], *R8, *TRANSFER_TOPIC)
    assert kinds(out) == [("failed", "invalid-field")] * 2 and svc.transfers == []


def test_object_type_rule_follows_the_shape() -> None:
    svc = Service()
    events = [deletion("a", "user"), deletion("b", "USER"), deletion("c", "Content"), deletion("d", None)]
    r8 = run(svc, [("prod.delete.user", e) for e in events], *R8)
    assert kinds(r8) == [("success", ""), ("success", ""), ("skipped", "object.type is not User")] + [
        ("skipped", "object.type is not User")
    ]
    assert svc.deletes == ["a", "b"]
    # release-7 never looked at object.type
    svc7 = Service()
    assert [o.kind for o in run(svc7, [("qa.delete.user", e) for e in events])] == ["success"] * 4


def test_each_topic_carries_its_own_action() -> None:
    svc = Service()
    out = run(
        svc,
        [
            # program-service republishes an accepted transfer to the user-delete topic: not sent again
            ("prod.delete.user", transfer()),
            ("prod.transfer", deletion("z")),
            (None, transfer()),  # topic unknown (outside Flink): by action
        ],
        *R8,
        *TRANSFER_TOPIC,
    )
    assert kinds(out) == [
        ("skipped", "a ownership-transfer event read from the user-delete topic"),
        ("skipped", "a delete-user event read from the ownership-transfer topic"),
        ("success", ""),
    ]
    assert len(svc.transfers) == 1 and svc.deletes == []


def test_release_7_skips_transfers_as_before() -> None:
    svc = Service()
    assert kinds(run(svc, [("qa.delete.user", transfer())])) == [("skipped", "not a delete-user event")]
    assert kinds(run(svc, [(None, deletion("q", "x"))], *R8)) == [("skipped", "object.type is not User")]
    assert svc.transfers == []


def test_answers_are_classified_retried_and_failed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    flaky = Service((503, {}), (400, PUBLISH_FAILED), (200, OK))
    assert kinds(
        run(flaky, [("prod.transfer", transfer())], *R8, *TRANSFER_TOPIC, "http.retry.max_attempts=3")
    ) == [("success", "")]
    assert len(flaky.transfers) == 3
    down = Service((400, PUBLISH_FAILED))
    out = run(down, [("prod.transfer", transfer())], *R8, *TRANSFER_TOPIC, "http.retry.max_attempts=2")
    assert kinds(out) == [("failed", "retries-exhausted")] and len(down.transfers) == 2
    old = Service((404, b"<pre>Cannot POST /program/v1/user/transfer</pre>"))
    out = run(old, [("prod.transfer", transfer())], *R8, *TRANSFER_TOPIC, "http.retry.max_attempts=3")
    assert kinds(out) == [("failed", "permanent")] and len(old.transfers) == 1
    record = out[0].failed_record
    assert record["jobName"] == "user-delete" and record["edata"]["iteration"] == 2
    assert "release-8.0.0" in record["failInfo"]["error"]
    # the failed record keeps the event (replayable), but no log line carries an id or a name
    assert record["edata"]["toUserProfile"]["firstName"] == NAMES[2]
    lines = [r for r in caplog.records if r.name.startswith("cokreat_jobs")]
    text = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in lines)
    assert lines
    for secret in (*NAMES, "from-7c2", "to-9f1"):
        assert secret not in text


def test_error_texts_have_ids_and_names_taken_out() -> None:
    echo = {"params": {"err": "X"}, "result": {"response": f"cannot move {NAMES[0]} {NAMES[3]} to-9f1"}}
    out = run(Service((422, echo)), [("prod.transfer", transfer())], *R8, *TRANSFER_TOPIC)
    error = out[0].failed_record["failInfo"]["error"]
    assert "HTTP 422" in error and "<user>" in error
    for secret in (*NAMES, "to-9f1"):
        assert secret not in error

"""`cokreat-jobs import upload|status`: CSV parsing, the pre-check by line, batching, status aggregation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cokreat_jobs.cli.main import main
from cokreat_jobs.dev.sandbox.imports import InMemoryPublisher
from cokreat_jobs.dev.sandbox.server import ServerThread
from cokreat_jobs.ops.bulk import status as st
from cokreat_jobs.ops.bulk import upload as up

HEADER = "name,code,mimeType,contentType,primaryCategory,artifactUrl,framework,lastPublishedBy"


def good(i: int, extra: str = "") -> str:
    return (
        f"Content {i},code-{i},application/pdf,Resource,Learning Resource,"
        f"https://example.org/{i}.pdf,NCF,user-1{extra}"
    )


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# -- CSV -----------------------------------------------------------------------------------------------------


def test_read_csv_columns_defaults_and_lines(tmp_path: Path) -> None:
    text = (
        "\ufeff"
        + HEADER
        + ",stage,collectionId,unitId,keywords,channel\n"
        + good(1, ",publish,,,,")
        + "\n"
        + "\n"  # blank row: dropped, lines still counted
        + good(2, ',review,col1,unit1,"[""a"",""b""]",ch2')
        + "\n"
        + '"Multi\nline name",code-3,application/pdf,Resource,LR,https://e.org/3.pdf,NCF,u,,,,,\n'
    )
    rows, problems = up.read_csv(
        write(tmp_path, text), channel="ch1", stage="upload", collection="c0", unit="u0"
    )
    assert problems == []
    assert [r.line for r in rows] == [2, 4, 5]
    r1, r2, r3 = rows
    assert r1.metadata["channel"] == "ch1" and r1.metadata["objectType"] == "Content"
    assert r1.stage == "publish" and r1.collection == [{"identifier": "c0", "unitId": "u0"}]
    assert "stage" not in r1.metadata and "collectionId" not in r1.metadata
    assert r2.metadata["keywords"] == ["a", "b"] and r2.metadata["channel"] == "ch2"
    assert r2.collection == [{"identifier": "col1", "unitId": "unit1"}] and r2.stage == "review"
    assert r3.metadata["name"] == "Multi\nline name" and r3.stage == "upload"
    obj = r2.import_object()
    assert obj == {"metadata": r2.metadata, "stage": "review", "collection": r2.collection}


def test_read_csv_problems(tmp_path: Path) -> None:
    text = "name,code,name\nA,b,c,d,e\nA,b,c\nx,y,z\n"
    rows, problems = up.read_csv(write(tmp_path, text + "q,w,e\n"))
    assert str(problems[0]) == "line 1: columns named twice: name"
    assert problems[1].line == 2 and problems[1].kind == "csv"
    text = "name,code,collectionId\nA,b,c1\n"
    _rows, problems = up.read_csv(write(tmp_path, text))
    assert [str(p) for p in problems] == ["line 2: a collection needs both collectionId and unitId"]
    _rows, problems = up.read_csv(write(tmp_path, ""))
    assert problems[0].kind == "csv"


# -- pre-check -----------------------------------------------------------------------------------------------


def test_precheck_reports_by_line(tmp_path: Path) -> None:
    text = "\n".join(
        [
            HEADER + ",stage,objectType",
            good(1, ",publish,"),  # fine
            good(2, ",deploy,"),  # the API refuses the stage
            "Content 3,code-3,application/pdf,Resource,LR,,NCF,u,,",  # the API: artifactUrl missing
            "Content 4,code-4,application/pdf,Resource,,https://e.org/4.pdf,NCF,,,",  # the job: mandatory
            good(5, ",,Asset"),  # the job: object type
            "Content 6,code-6,application/pdf,Resource,LR,https://e.org/6.pdf,,u,,",  # API: framework
        ]
    )
    rows, problems = up.read_csv(write(tmp_path, text + "\n"), channel="ch1")
    assert problems == []
    found = up.precheck(rows)
    by_line = {p.line: p for p in found}
    assert set(by_line) == {3, 4, 5, 6, 7}
    assert by_line[3].kind == "refused" and "stage 'deploy'" in by_line[3].message
    assert by_line[4].kind == "refused" and "artifactUrl" in by_line[4].message
    assert by_line[5].kind == "skipped"
    assert "mandatory-fields-missing: primaryCategory, lastPublishedBy" in by_line[5].message
    assert by_line[6].kind == "skipped" and "object-type-not-allowed" in by_line[6].message
    assert by_line[7].kind == "refused" and "framework" in by_line[7].message


def test_precheck_without_a_channel_the_import_api_refuses(tmp_path: Path) -> None:
    # the shipped content-service config requires channel (import.content.required_props)
    rows, _ = up.read_csv(write(tmp_path, HEADER + "\n" + good(1) + "\n"))
    (p,) = up.precheck(rows)
    assert p.line == 2 and p.kind == "refused" and p.message.endswith("required channel missing")


def test_precheck_a_row_without_object_type_gets_the_apis(tmp_path: Path) -> None:
    # the import API sets a blank objectType to Content: the job does not skip the row for it
    rows, _ = up.read_csv(write(tmp_path, HEADER + "\n" + good(1) + "\n"), channel="ch1", object_type="")
    assert "objectType" not in rows[0].metadata
    assert up.precheck(rows) == []


def test_precheck_rows_with_a_source_only_check_the_stage(tmp_path: Path) -> None:
    text = "source,stage,channel\nhttps://x/content/v1/read/do_1,publish,c\nhttps://x/content/v1/read/do_2,go,c\n"
    rows, _ = up.read_csv(write(tmp_path, text))
    assert [p.line for p in up.precheck(rows)] == [3]


def test_batches() -> None:
    assert up.batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert up.batches([], 3) == []
    with pytest.raises(ValueError):
        up.batches([1], 0)


def test_parse_headers() -> None:
    assert up.parse_headers(["Authorization: Bearer x:y", "X-Channel-Id:ch"]) == {
        "Authorization": "Bearer x:y",
        "X-Channel-Id": "ch",
    }
    with pytest.raises(ValueError):
        up.parse_headers(["nocolon"])


# -- upload against a sandbox --------------------------------------------------------------------------------


@pytest.fixture()
def sandbox(tmp_path: Path) -> Iterator[tuple[ServerThread, InMemoryPublisher]]:
    pub = InMemoryPublisher()
    with ServerThread(tmp_path / "sb", {"import_publisher": pub, "import.request_size_limit": 3}) as server:
        yield server, pub


def requests_log(server: ServerThread) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(server.base_url + "/_sandbox/requests") as r:
        return list(json.loads(r.read())["requests"])


def test_upload_command_batches_under_one_process_id(
    tmp_path: Path, sandbox: tuple[ServerThread, InMemoryPublisher]
) -> None:
    server, pub = sandbox
    csv_file = write(tmp_path, HEADER + "\n" + "\n".join(good(i) for i in range(7)) + "\n")
    result = CliRunner().invoke(
        main,
        [
            "import",
            "upload",
            str(csv_file),
            "--to",
            server.base_url,
            "--channel",
            "ch1",
            "--stage",
            "publish",
            "--collection",
            "col1",
            "--unit",
            "u1",
            "--header",
            "X-Test: yes",
            "--batch-size",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    pid = result.stdout.strip()
    assert len(pid) == 36 and "\n" not in pid
    assert "7 contents sent" in result.stderr
    events = pub.events()
    assert len(events) == 7
    assert {e["edata"]["metadata"]["processId"] for e in events} == {pid}
    assert {e["edata"]["stage"] for e in events} == {"publish"}
    assert events[0]["edata"]["collection"] == [{"identifier": "col1", "unitId": "u1"}]
    imports = [r for r in requests_log(server) if r["path"] == "/content/v4/import"]
    assert [len(r["body"]["request"]["content"]) for r in imports] == [3, 3, 1]
    assert all(r["headers"].get("x-test") == "yes" for r in imports)


def test_upload_command_sends_nothing_when_a_row_is_bad(
    tmp_path: Path, sandbox: tuple[ServerThread, InMemoryPublisher]
) -> None:
    server, pub = sandbox
    text = HEADER + "\n" + good(1) + "\n" + "Content 2,code-2,application/pdf,Resource,LR,,NCF,u\n"
    result = CliRunner().invoke(
        main, ["import", "upload", str(write(tmp_path, text)), "--to", server.base_url, "--channel", "c"]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "line 3: the import API refuses it: required artifactUrl missing" in result.stderr
    assert "nothing sent" in result.stderr
    assert pub.records == [] and not [r for r in requests_log(server) if r["path"].endswith("/import")]


def test_upload_command_reports_a_refused_batch(
    tmp_path: Path, sandbox: tuple[ServerThread, InMemoryPublisher]
) -> None:
    server, pub = sandbox
    pub.fail = "no broker"
    csv_file = write(tmp_path, HEADER + "\n" + good(1) + "\n")
    result = CliRunner().invoke(
        main, ["import", "upload", str(csv_file), "--to", server.base_url, "--channel", "c"]
    )
    assert result.exit_code == 2
    assert (
        "batch 1 of 1 (lines 2-2) not imported" in result.stderr and "ERR_SYSTEM_EXCEPTION" in result.stderr
    )


# -- status --------------------------------------------------------------------------------------------------


def test_aggregate_counts_an_image_and_its_original_once() -> None:
    hits = [
        {"identifier": "do_1", "name": "One", "status": "Live", "objectType": "Content"},
        {"identifier": "do_1", "name": "One (edited)", "status": "Draft", "objectType": "Content"},
        {"identifier": "do_2", "name": "Two", "status": "Failed", "importError": "bad artifact"},
        {"identifier": "do_3.img", "name": "Three", "status": "Review", "objectType": "ContentImage"},
        {"identifier": "do_3", "name": "Three", "status": "Live", "objectType": "Content"},
        {"identifier": "do_4", "name": "Four", "status": "Live"},
    ]
    contents = st.aggregate(hits)
    assert [(c.identifier, c.status) for c in contents] == [
        ("do_1", "Draft"),
        ("do_2", "Failed"),
        ("do_3", "Review"),
        ("do_4", "Live"),
    ]
    assert st.counts(contents) == {"Draft": 1, "Failed": 1, "Live": 1, "Review": 1}
    doc = st.report("p1", contents)
    assert doc["processId"] == "p1" and doc["counts"]["Failed"] == 1
    assert doc["contents"][1] == {
        "identifier": "do_2",
        "name": "Two",
        "status": "Failed",
        "importError": "bad artifact",
    }


def test_is_final_per_stage() -> None:
    def c(status: str, artifact: str | None = None) -> st.Content:
        return st.Content("x", "n", status, None, artifact)

    assert st.is_final(c("Live")) and st.is_final(c("Failed"))
    assert not st.is_final(c("Review")) and not st.is_final(c("Processing"))
    assert st.is_final(c("Review"), "review") and not st.is_final(c("Draft"), "review")
    assert st.is_final(c("Draft", "http://a"), "upload") and not st.is_final(c("Draft"), "upload")
    assert st.is_final(c("Draft"), "create") and st.is_final(c("Failed"), "create")
    assert not st.done([c("Live")], "publish", expect=2) and st.done([c("Live")], "publish", expect=1)
    assert not st.done([], "publish", None)


def test_status_pages_through_search(tmp_path: Path) -> None:
    from cokreat_jobs.dev.sandbox.testing import seed

    with ServerThread(tmp_path / "sb") as server:
        import httpx

        with httpx.Client(base_url=server.base_url) as client:
            contents = [
                {"identifier": f"do_{i:03d}", "name": f"C{i}", "status": "Live", "processId": "p1"}
                for i in range(7)
            ]
            contents += [
                {
                    "identifier": "do_003.img",
                    "status": "Draft",
                    "name": "C3 edit",
                    "processId": "p1",
                    "objectType": "ContentImage",
                }
            ]
            contents += [{"identifier": "do_f", "status": "Failed", "importError": "oops", "processId": "p1"}]
            contents += [{"identifier": "do_other", "status": "Live", "processId": "p2"}]
            seed(client, contents=contents)
            hits = st.fetch_hits(server.base_url, "p1", page_size=3)
            assert len(hits) == 9
            runner = CliRunner()
            result = runner.invoke(
                main, ["import", "status", "p1", "--search", server.base_url, "--json", "--expect", "10"]
            )
            assert result.exit_code == 0, result.output
            doc = json.loads(result.stdout)
            assert doc["processId"] == "p1"
            assert doc["counts"] == {"Draft": 1, "Failed": 1, "Live": 6}
            assert len(doc["contents"]) == 8
            assert {"identifier": "do_f", "name": None, "status": "Failed", "importError": "oops"} in doc[
                "contents"
            ]
            # the table
            result = runner.invoke(
                main, ["import", "status", "p1", "--search", server.base_url, "--expect", "10"]
            )
            assert result.exit_code == 0 and "not found yet: 2" in result.stdout and "oops" in result.stdout
            # --watch: not every content is final (a Draft after publish) -> timeout, exit 1
            result = runner.invoke(
                main,
                [
                    "import",
                    "status",
                    "p1",
                    "--search",
                    server.base_url,
                    "--watch",
                    "--json",
                    "--timeout",
                    "1",
                    "--interval",
                    "0.2",
                ],
            )
            assert result.exit_code == 1 and "timed out" in result.stderr
            # at stage upload... the Draft image has no artifact; at stage create every content is final
            result = runner.invoke(
                main,
                [
                    "import",
                    "status",
                    "p1",
                    "--search",
                    server.base_url,
                    "--watch",
                    "--json",
                    "--stage",
                    "create",
                    "--timeout",
                    "5",
                ],
            )
            assert result.exit_code == 0, result.output
            assert json.loads(result.stdout)["counts"]["Live"] == 6

"""`make demo`, auto-creator-v2's part: a question-set approval through the front door, then what was written.

A question set with a few questions (one section) is seeded in the sandbox's source repository, with a
course whose unit it must join. The approval is `POST {sandbox}/questionset/v1/import` naming the source and
the unit, as the consumption side receives it; the sandbox's import API validates it (a second request, for a
set still in Draft at the source, shows a refusal) and publishes the event to auto-creator-v2's input topic.
The job then runs on the MiniCluster against the stack's sqlite graph and external stores; the part prints
the graph nodes, the external records and the unit's membership.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync, read_record_sync
from cokreat_jobs.dev.demo.main import Expected, drain, summary_table
from cokreat_jobs.dev.samples.question_sets import question_set
from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient

__all__ = ["question_set_demo"]

CHANNEL = "demo-channel"
N_QUESTIONS = 4
HIERARCHY = ("dev_hierarchy_store", "questionset_hierarchy")
QUESTIONS = ("dev_question_store", "question_data")


def _sqlite_path(url: str) -> str:
    return url[len("sqlite:///") :] if url.startswith("sqlite:///") else url


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"raw": text[:300].decode("utf-8", "replace")}


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for child in node.get("children") or []:
        yield child
        yield from _walk(child)


def _short(url: str, base: str) -> str:
    if not url:
        return "-"
    return url.replace(base, "…", 1) if url.startswith(base) else url


def question_set_demo(console: Console, endpoints: dict[str, Any], workdir: Path) -> bool:
    console.rule("[bold]auto-creator-v2 (question set through questionset/v1/import)")
    base = str(endpoints["sandbox"]).rstrip("/")
    graph = _sqlite_path(str(endpoints["graph_store"]))
    external = _sqlite_path(str(endpoints["external_store"]))
    sandbox = SandboxClient(base)
    tag = uuid.uuid4().hex[:4]
    qs_id = f"do_demo_{tag}_qset"
    obj, qids = question_set(qs_id, N_QUESTIONS, nested=True)
    obj["metadata"].update(name="Fractions practice", channel=CHANNEL)
    draft, _ = question_set(f"do_demo_{tag}_draft", 1)
    draft["metadata"]["status"] = "Draft"
    course = f"do_demo_{tag}_course"
    unit = f"{course}_unit1"
    sandbox.seed(
        source_objects=[obj, draft],
        collections=[
            {
                "identifier": course,
                "name": "Demo Maths Course",
                "channel": CHANNEL,
                "units": [unit, f"{course}_unit2"],
            }
        ],
    )
    console.print(
        f"seeded in the source repository: question set {qs_id} ({N_QUESTIONS} questions, one section) and "
        f"a Draft set; in the sandbox: course {course} with 2 units"
    )

    def approve(source_id: str) -> tuple[int, dict[str, Any]]:
        return _post(
            f"{base}/questionset/v1/import",
            {
                "request": {
                    "questionset": {
                        "source": f"{base}/questionset/v1/read/{source_id}",
                        "metadata": {"framework": "NCF", "channel": CHANNEL},
                        "collection": [{"identifier": course, "unitId": unit}],
                    }
                }
            },
        )

    status, answer = approve(f"do_demo_{tag}_draft")
    params = answer.get("params") or {}
    refused = status == 400 and params.get("err") == "ERR_SOURCE_STATUS_VALIDATION"
    console.print(
        f"POST /questionset/v1/import (a set still Draft at the source): {status} {params.get('err')}"
        f" — {params.get('errmsg')} {'[green]✓ refused[/]' if refused else '[red]✗[/]'}"
    )
    status, answer = approve(qs_id)
    process_id = (answer.get("result") or {}).get("processId")
    accepted = status == 200 and bool(process_id)
    console.print(
        f"POST /questionset/v1/import ({qs_id} into {unit}): {status}, processId {process_id} "
        f"{'[green]✓ event published to sunbirddev.object.import.request[/]' if accepted else '[red]✗[/]'}"
    )
    if not accepted:
        console.print(f"[red]the import API refused the approval: {answer}[/]")
        return False

    expected = Expected(total=1, success=1, skipped=0, failed=0)
    run = LocalJobRun(
        "auto-creator-v2",
        [
            "auto_creator_v2.link_wait_backoff_ms=100",
            f"auto_creator_v2.temp_file_location={workdir / 'acv2-tmp'}",
            "task.checkpointing.interval=2000",
        ],
        log_file=workdir / "auto-creator-v2.log",
    )
    run.start()
    console.print(f"job running; Flink REST API: http://127.0.0.1:{run.rest_port}  job log: {run.log_file}")
    try:
        counters = drain(console, run, expected, timeout=300)
    finally:
        run.stop()

    all_ok = True
    table = Table(title=f"auto-creator-v2: what was written for {qs_id}")
    for col in ("object", "graph node", "external record", "downloadUrl / unit", ""):
        table.add_column(col, overflow="fold")

    node = read_node_sync(graph, qs_id)
    record = read_record_sync(external, *HIERARCHY, {"identifier": qs_id})
    tree = json.loads(record["hierarchy"]) if record and isinstance(record.get("hierarchy"), str) else {}
    in_tree = [n for n in _walk(tree) if n.get("objectType") == "Question"]
    sections = [n for n in _walk(tree) if n.get("objectType") == "QuestionSet"]
    ok = (
        node is not None
        and node.get("IL_FUNC_OBJECT_TYPE") == "QuestionSet"
        and node.get("origin") == qs_id
        and str(node.get("downloadUrl", "")).startswith(f"{base}/_files/questionset/{qs_id}/")
        and {n.get("identifier") for n in in_tree} == set(qids)
    )
    all_ok &= ok
    table.add_row(
        f"QuestionSet {qs_id}",
        f"{node.get('status')}, origin {node.get('origin')}, channel {node.get('channel')}"
        if node
        else "absent",
        f"{HIERARCHY[1]}: {len(in_tree)} questions in {len(sections)} section(s)" if record else "absent",
        _short(str((node or {}).get("downloadUrl", "")), base),
        "[green]✓[/]" if ok else "[red]✗[/]",
    )
    for qid in qids:
        q = read_node_sync(graph, qid)
        qrec = read_record_sync(external, *QUESTIONS, {"identifier": qid})
        body = str((qrec or {}).get("body") or "")
        ok = (
            q is not None
            and q.get("IL_FUNC_OBJECT_TYPE") == "Question"
            and body.startswith("<p>What is")
            and str(q.get("downloadUrl", "")).startswith(f"{base}/_files/question/{qid}/")
        )
        all_ok &= ok
        table.add_row(
            f"Question {qid}",
            f"{q.get('status')}, {q.get('primaryCategory')}" if q else "absent",
            f"body {body}" if qrec else "absent",
            _short(str((q or {}).get("downloadUrl", "")), base),
            "[green]✓[/]" if ok else "[red]✗[/]",
        )
    course_tree = sandbox._call("GET", f"/_sandbox/hierarchies/{course}")
    membership = {
        u["identifier"]: [c["identifier"] for c in u.get("children") or []]
        for u in course_tree.get("children") or []
    }
    linked = membership.get(unit, [])
    elsewhere = [u for u, kids in membership.items() if u != unit and qs_id in kids]
    ok = linked.count(qs_id) == 1 and not elsewhere
    all_ok &= ok
    table.add_row(
        f"Collection {course}",
        "",
        "",
        f"{unit}: {', '.join(linked) or '-'}" + (f"; also in {', '.join(elsewhere)}" if elsewhere else ""),
        "[green]✓[/]" if ok else "[red]✗[/]",
    )
    console.print(table)
    summary, counted_ok = summary_table("auto-creator-v2: outcomes", counters, expected)
    console.print(summary)
    leftovers = list((workdir / "acv2-tmp").rglob("*")) if (workdir / "acv2-tmp").exists() else []
    leftovers = [p for p in leftovers if p.is_file()]
    console.print(f"temp files left: {len(leftovers)} (expected 0)")
    return all_ok and counted_ok and refused and not leftovers

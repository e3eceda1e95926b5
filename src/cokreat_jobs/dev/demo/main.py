"""`make demo`: the local stack, the jobs on sample batches, a live view while they drain, then what happened.

Each job's part produces a batch whose outcomes it knows in advance, runs the job on the MiniCluster,
shows progress from the job's own counters, and prints a summary that sets what the job counted beside
what the batch held, and what the failed topic holds.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.dev.stack.local import layout, stack_down, stack_up
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient
from cokreat_jobs.ops.kafka_io import consume_records, produce_records


@dataclass
class Expected:
    """What a demo batch must come to."""

    total: int
    success: int
    skipped: int
    failed: int
    notes: dict[str, Any] = field(default_factory=dict)


def drain(console: Console, run: LocalJobRun, expected: Expected, timeout: float = 600) -> dict[str, int]:
    """A progress bar fed by the job's counters until every event of the batch has an outcome."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(run.job, total=expected.total, detail="")

        def show(c: dict[str, int]) -> None:
            done = c["success"] + c["skipped"] + c["failed"]
            progress.update(
                task,
                completed=min(done, expected.total),
                detail=f"ok {c['success']} · skipped {c['skipped']} · failed {c['failed']}"
                f" · retried {c['error']}",
            )

        return run.wait_for_total(expected.total, timeout, on_progress=show)


def summary_table(title: str, counters: dict[str, int], expected: Expected) -> tuple[Table, bool]:
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("in the batch", justify="right")
    table.add_column("counted by the job", justify="right")
    table.add_column("", justify="center")
    ok = True
    for name in ("total", "success", "skipped", "failed"):
        want = getattr(expected, name)
        got = counters[name]
        ok &= want == got
        table.add_row(name, str(want), str(got), "[green]✓[/]" if want == got else "[red]✗[/]")
    table.add_row("retried calls", "", str(counters["error"]), "")
    return table, ok


def failed_topic_table(records: list[dict[str, Any]]) -> Table:
    table = Table(title="failed topic")
    table.add_column("reason")
    table.add_column("count", justify="right")
    table.add_column("example")
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_reason.setdefault(r.get("failInfo", {}).get("reason", "?"), []).append(r)
    for reason, recs in sorted(by_reason.items()):
        example = recs[0].get("failInfo", {}).get("error", "").split(" : : ")[0]
        table.add_row(reason, str(len(recs)), example[:80])
    return table


# ---- user-delete ----------------------------------------------------------------------------------------


def user_delete_batch(rng: random.Random) -> tuple[list[bytes], list[Any], Expected]:
    users = [f"demo-user-{i:03d}" for i in range(200)]
    admins = ["demo-admin-1", "demo-admin-2"]
    unknown = [f"never-existed-{i}" for i in range(20)]

    def ev(uid: Any, action: str = "delete-user") -> bytes:
        return json.dumps(
            {
                "eid": "BE_JOB_REQUEST",
                "mid": f"LP.{uuid.uuid4()}",
                "object": {"id": uid, "type": "User"},
                "edata": {"action": action, "userId": uid},
            }
        ).encode()

    records = [ev(u) for u in users + admins + unknown]
    invalid = [ev("demo-user-000", action="block-user"), ev(""), ev(42)]
    malformed = [b"this is not json", b"\xff\xfe not utf-8", b'["a", "list"]']
    records += invalid + malformed
    rng.shuffle(records)
    seed = users + [{"id": a, "roles": ["admin"]} for a in admins]
    expected = Expected(
        total=len(records),
        success=len(users) + len(unknown),
        skipped=2,
        failed=len(admins) + 1 + len(malformed),
        notes={"deleted": len(users), "not found": len(unknown)},
    )
    return records, seed, expected


TRANSFER_TOPIC = "sunbirddev.user.ownership.transfer"


def transfer_batch() -> tuple[list[bytes], Expected]:
    """Ownership transfers (release-8): three valid, one whose receiving user has no last name (skipped)."""

    def ev(n: int, last_name: str = "Rao") -> bytes:
        to = {
            "userId": f"demo-to-{n}",
            "firstName": "Asha",
            "lastName": last_name,
            "roles": ["CONTENT_CREATOR"],
        }
        return json.dumps(
            {
                "eid": "BE_JOB_REQUEST",
                "mid": f"OT.demo.{n}.{uuid.uuid4()}",
                "object": {"id": f"demo-from-{n}", "type": "User"},
                "edata": {
                    "action": "ownership-transfer",
                    "fromUserProfile": {"userId": f"demo-from-{n}", "roles": ["CONTENT_CREATOR"]},
                    "toUserProfile": to,
                },
            }
        ).encode()

    records = [ev(1), ev(2), ev(3), ev(4, last_name="")]
    return records, Expected(total=4, success=3, skipped=1, failed=0)


def user_delete_demo(console: Console, endpoints: dict[str, Any], workdir: Path) -> bool:
    console.rule("[bold]user-delete")
    sandbox = SandboxClient(endpoints["sandbox"])
    records, seed, deletions = user_delete_batch(random.Random(1))
    transfers, moved = transfer_batch()
    expected = Expected(
        total=deletions.total + moved.total,
        success=deletions.success + moved.success,
        skipped=deletions.skipped + moved.skipped,
        failed=deletions.failed,
    )
    sandbox.seed(users=seed)
    before = len([t for t in sandbox.transfers() if str(t.get("mid", "")).startswith("OT.demo.")])
    # program-service has bad moments: some 503s that the job retries
    sandbox.add_fault(method="DELETE", path="/program/v1/user/*", status=503, rate=0.05)
    topic = "sunbirddev.delete.user"
    failed_topic = "sunbirddev.delete.user.failed"
    console.print(
        f"seeded {len(seed)} users in the sandbox; producing {deletions.total} events to {topic} "
        f"(deletions of seeded users, unknown users, admins, invalid and malformed events) and "
        f"{moved.total} ownership transfers to {TRANSFER_TOPIC} (one invalid)"
    )
    produce_records(endpoints["kafka"], topic, records)
    produce_records(endpoints["kafka"], TRANSFER_TOPIC, transfers)
    # release-8's config shape: both topics, one source
    r8 = [f"kafka.input.user_delete_topic={topic}", f"kafka.input.ownership_transfer_topic={TRANSFER_TOPIC}"]
    run = LocalJobRun(
        "user-delete", ["task.checkpointing.interval=5000", *r8], log_file=workdir / "user-delete.log"
    )
    run.start()
    console.print(
        f"job running; Flink REST API: http://127.0.0.1:{run.rest_port}  sandbox: {endpoints['sandbox']}"
        f"  job log: {run.log_file}"
    )
    try:
        counters = drain(console, run, expected)
    finally:
        run.stop()
        sandbox.clear_faults()
    table, ok = summary_table("user-delete: outcomes", counters, expected)
    console.print(table)
    failed = [
        json.loads(v)
        for v in consume_records(
            endpoints["kafka"], failed_topic, from_beginning=True, timeout=10, max_records=expected.failed
        )
    ]
    console.print(failed_topic_table(failed))
    remaining = [u for u in sandbox.users() if str(u).startswith("demo-user-")]
    sent = len([t for t in sandbox.transfers() if str(t.get("mid", "")).startswith("OT.demo.")]) - before
    console.print(
        f"seeded users still present after the run: {len(remaining)} (expected 0); "
        f"failed-topic records: {len(failed)} (expected {expected.failed}); "
        f"transfers program-service accepted: {sent} (expected {moved.success})"
    )
    return ok and not remaining and len(failed) == expected.failed and sent == moved.success


# ---- the whole demo --------------------------------------------------------------------------------------

Part = Callable[[Console, dict[str, Any], Path], bool]


def parts() -> list[tuple[str, Part]]:
    # imported here: the part modules import this one for its helpers
    from cokreat_jobs.dev.demo.content import content_auto_creator_demo
    from cokreat_jobs.dev.demo.frontdoor import bulk_upload_demo
    from cokreat_jobs.dev.demo.questionset import question_set_demo

    return [
        ("user-delete", user_delete_demo),
        ("content-auto-creator", content_auto_creator_demo),
        ("front door (bulk upload)", bulk_upload_demo),
        ("question set (acv2)", question_set_demo),
    ]


def run_demo() -> int:
    console = Console()
    started = time.monotonic()
    console.rule("[bold]coKreat jobs demo")
    console.print("starting the local stack (Kafka broker + sandbox), fresh state under .stack/ ...")
    endpoints, _ = stack_up(fresh=True)
    console.print(f"kafka {endpoints['kafka']} · sandbox {endpoints['sandbox']} · logs {layout().logs}")
    results: dict[str, bool] = {}
    try:
        for name, part in parts():
            try:
                results[name] = part(console, endpoints, layout().logs)
            except Exception as e:  # one part's trouble must not hide the others' results
                console.print(f"[red]{name} demo failed: {e}[/]")
                results[name] = False
    finally:
        console.print("stopping the stack ...")
        stack_down()
    console.rule("[bold]result")
    for name, ok in results.items():
        console.print(f"{name:24} {'[green]as expected[/]' if ok else '[red]NOT as expected[/]'}")
    console.print(f"demo took {time.monotonic() - started:.0f} s")
    return 0 if results and all(results.values()) else 1


__all__ = ["Expected", "drain", "failed_topic_table", "run_demo", "summary_table", "Counter"]

"""`make demo`, the front door: a bulk upload from a CSV through the import API, watched live until Live.

Ten contents (pdf, mp4 and html) whose files are written into the storage folder the sandbox serves. The
first CSV has a row without `lastPublishedBy`: `cokreat-jobs import upload` refuses the file before sending
anything and names the line; the corrected CSV goes to `{sandbox}/content/v4/import`, which publishes one
event per row to content-auto-creator's topic. The job runs, and the part watches the import with the code of
`cokreat-jobs import status PID --expect N --watch` until every content is Live.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cokreat_jobs.dev.demo.content import HTML, MP4, PDF, storage_dir, zip_bytes
from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.ops.bulk import status as status_mod

__all__ = ["bulk_upload_demo"]

CHANNEL = "demo-channel"
COLUMNS = [
    "name",
    "code",
    "mimeType",
    "contentType",
    "primaryCategory",
    "artifactUrl",
    "framework",
    "lastPublishedBy",
    "stage",
]


def _rows(src: str, tag: str) -> list[dict[str, str]]:
    contents = [
        ("Counting to ten", PDF, "counting.pdf"),
        ("Shapes around us", PDF, "shapes.pdf"),
        ("Telling the time", PDF, "time.pdf"),
        ("Money and change", PDF, "money.pdf"),
        ("Plants need water", MP4, "plants.mp4"),
        ("How bees help", MP4, "bees.mp4"),
        ("Our solar system", MP4, "planets.mp4"),
        ("Map reading game", HTML, "maps.zip"),
        ("Spelling bee", HTML, "spelling.zip"),
        ("Weather station", HTML, "weather.zip"),
    ]
    return [
        {
            "name": name,
            "code": f"bulk-{tag}-{i:02d}",
            "mimeType": mime,
            "contentType": "Resource",
            "primaryCategory": "Learning Resource",
            "artifactUrl": f"{src}/{file}",
            "framework": "NCF",
            "lastPublishedBy": "demo-uploader",
            "stage": "publish",
        }
        for i, (name, mime, file) in enumerate(contents, start=1)
    ]


def _write_files(folder: Path, rows: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows:
        file = row["artifactUrl"].rsplit("/", 1)[-1]
        if row["mimeType"] == PDF:
            data = b"%PDF-1.4 " + row["name"].encode() + b"\n" + b"p" * 3000
        elif row["mimeType"] == MP4:
            data = b"\x00\x00\x00\x18ftypmp42" + b"v" * 12_000
        else:
            data = zip_bytes({"index.html": f"<html><body>{row['name']}</body></html>".encode()})
        (folder / file).write_bytes(data)


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _upload(csv_file: Path, base: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "cokreat_jobs.cli.main", "import", "upload", str(csv_file), "--to", base]
    return subprocess.run(
        [*argv, "--channel", CHANNEL], capture_output=True, text=True, timeout=120, check=False
    )


def _upload_and_watch(
    console: Console, base: str, rows: list[dict[str, str]], folder: Path
) -> tuple[bool, str, list[status_mod.Content], bool] | None:
    """The refused CSV, the corrected one, then `import status --watch`; None when the upload failed."""
    broken = [dict(r) for r in rows]
    broken[3]["lastPublishedBy"] = ""  # a mandatory field of content-auto-creator left empty
    first = folder / "contents.csv"
    _write_csv(first, broken)
    console.print(f"$ cokreat-jobs import upload {first.name} --to {base} --channel {CHANNEL}")
    up = _upload(first, base)
    console.print(up.stderr.rstrip(), markup=False, highlight=False)
    refused = up.returncode == 1 and "line 5" in up.stderr and "lastPublishedBy" in up.stderr
    console.print(
        f"exit {up.returncode}: "
        + ("[green]✓ refused before sending anything[/]" if refused else "[red]✗ not refused as expected[/]")
    )

    fixed = folder / "contents-fixed.csv"
    _write_csv(fixed, rows)
    console.print(f"$ cokreat-jobs import upload {fixed.name} --to {base} --channel {CHANNEL}")
    up = _upload(fixed, base)
    console.print(up.stderr.rstrip(), markup=False, highlight=False)
    process_id = up.stdout.strip()
    console.print(f"exit {up.returncode}; processId {process_id}", highlight=False)
    if up.returncode != 0 or not process_id:
        console.print("[red]the upload was not accepted[/]")
        return None

    expect = len(rows)
    console.print(f"$ cokreat-jobs import status {process_id} --expect {expect} --watch", highlight=False)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"import {process_id[:8]}", total=expect, counts="")

        def update(found: list[status_mod.Content]) -> None:
            final = sum(status_mod.is_final(c, "publish") for c in found)
            text = ", ".join(f"{k} {v}" for k, v in status_mod.counts(found).items())
            if len(found) < expect:
                text += f", not found {expect - len(found)}"
            bar.update(task, completed=final, total=max(expect, len(found)), counts=text)

        contents, finished = status_mod.watch(
            base, process_id, stage="publish", expect=expect, timeout=300, interval=1.0, on_update=update
        )
    return refused, process_id, contents, finished


def bulk_upload_demo(console: Console, endpoints: dict[str, Any], workdir: Path) -> bool:
    console.rule("[bold]front door: bulk upload from a CSV (content/v4/import -> content-auto-creator)")
    base = str(endpoints["sandbox"]).rstrip("/")
    tag = uuid.uuid4().hex[:4]
    src = f"{base}/_files/source/bulk-{tag}"
    rows = _rows(src, tag)
    _write_files(storage_dir(endpoints) / "source" / f"bulk-{tag}", rows)
    folder = Path(tempfile.mkdtemp(prefix="bulk-upload-", dir=workdir))

    temp = Path(tempfile.mkdtemp(prefix="bulk-job-", dir=workdir))
    run = LocalJobRun(
        "content-auto-creator",
        [
            f'content_auto_creator.artifact_upload_allowed_source=["{base}/_files/source/"]',
            f"content_auto_creator.temp_file_location={temp}",
            "task.checkpointing.interval=2000",
        ],
        log_file=workdir / "content-auto-creator-bulk.log",
    )
    run.start()
    console.print(
        f"content-auto-creator is running and waiting for imports; Flink REST API: "
        f"http://127.0.0.1:{run.rest_port}  job log: {run.log_file}"
    )
    try:
        outcome = _upload_and_watch(console, base, rows, folder)
    finally:
        run.stop()
    if outcome is None:
        return False
    refused, process_id, contents, finished = outcome
    expect = len(rows)
    console.print(status_mod.status_table(process_id, contents, expect))
    live = [c for c in contents if c.status == "Live"]
    ours = [c for c in live if (c.artifact_url or "").startswith(f"{base}/_files/content/{c.identifier}/")]
    console.print(
        f"Live: {len(live)} of {expect}; artifacts re-hosted in our storage: {len(ours)}"
        + ("" if finished else " [red](timed out)[/]")
    )
    return refused and finished and len(live) == expect == len(contents)

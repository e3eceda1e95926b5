"""`cokreat-jobs import upload FILE.csv --to BASE_URL`: bulk upload of contents through `content/v4/import`.

One CSV row per content; columns are metadata fields, plus `source`, `stage`, `collectionId` and `unitId`.
Before anything is sent every row is checked the way the import API and content-auto-creator will check it:
rows the API would refuse (its required props, its stages) and rows the job would skip (its mandatory fields,
its other skip rules) are reported by line, and nothing is sent. Otherwise the rows go in batches within the
API's request limit, all under one processId, which is printed.
"""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cokreat_jobs.core.errors import InvalidField
from cokreat_jobs.core.event import Event
from cokreat_jobs.jobs.content_auto_creator.settings import Settings as JobSettings
from cokreat_jobs.jobs.content_auto_creator.validation import check_event
from cokreat_jobs.sunbird.imports import (
    ImportConfig,
    TypeConfig,
    build_event,
    load_import_config,
    missing_required,
    prepare_object,
    stage_valid,
)

__all__ = [
    "Problem",
    "Row",
    "UploadError",
    "batches",
    "job_settings",
    "parse_headers",
    "precheck",
    "read_csv",
    "send",
]

RESERVED_COLUMNS = ("source", "stage", "collectionId", "unitId")
IMPORT_PATH = "/content/v4/import"


class UploadError(RuntimeError):
    pass


@dataclass
class Row:
    line: int
    """The CSV line the row starts on (the header is line 1)."""
    metadata: dict[str, Any]
    source: str = ""
    stage: str = ""
    collection: list[dict[str, str]] = field(default_factory=list)

    def import_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"metadata": dict(self.metadata)}
        if self.source:
            obj["source"] = self.source
        if self.stage:
            obj["stage"] = self.stage
        if self.collection:
            obj["collection"] = [dict(c) for c in self.collection]
        return obj


@dataclass(frozen=True)
class Problem:
    line: int
    kind: str
    """`refused` (the import API would answer 400), `skipped` (content-auto-creator would skip the event),
    `invalid` (the job would fail the event), or `csv` (the row itself is wrong)."""
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _cell(value: str) -> Any:
    text = value.strip()
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def read_csv(
    path: str | Path,
    *,
    channel: str | None = None,
    stage: str | None = None,
    collection: str | None = None,
    unit: str | None = None,
    object_type: str = "Content",
) -> tuple[list[Row], list[Problem]]:
    """The rows of the file (blank rows dropped) and the problems of the file itself.

    Cells are trimmed; empty cells are left out; a cell holding a JSON list or object is parsed. `channel`
    and `object_type` fill `metadata.channel` / `metadata.objectType` where the row has none; `stage`,
    `collection` and `unit` are the defaults of the `stage`, `collectionId` and `unitId` columns.
    """
    rows: list[Row] = []
    problems: list[Problem] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return [], [Problem(1, "csv", "the file is empty (no header row)")]
        names = [h.strip() for h in header]
        if not any(names):
            problems.append(Problem(1, "csv", "the header row names no column"))
        dupes = sorted({n for n in names if n and names.count(n) > 1})
        if dupes:
            problems.append(Problem(1, "csv", f"columns named twice: {', '.join(dupes)}"))
        previous_end = reader.line_num
        for cells in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(names) and any(c.strip() for c in cells[len(names) :]):
                problems.append(Problem(line, "csv", f"{len(cells)} cells for {len(names)} columns"))
                continue
            values = {n: c for n, c in zip(names, cells, strict=False) if n and c.strip()}
            metadata = {k: _cell(v) for k, v in values.items() if k not in RESERVED_COLUMNS}
            if channel and "channel" not in metadata:
                metadata["channel"] = channel
            if object_type and "objectType" not in metadata:
                metadata["objectType"] = object_type
            row_collection = values.get("collectionId", "").strip() or (collection or "")
            row_unit = values.get("unitId", "").strip() or (unit or "")
            coll: list[dict[str, str]] = []
            if row_collection and row_unit:
                coll = [{"identifier": row_collection, "unitId": row_unit}]
            elif row_collection or row_unit:
                problems.append(Problem(line, "csv", "a collection needs both collectionId and unitId"))
            rows.append(
                Row(
                    line=line,
                    metadata=metadata,
                    source=values.get("source", "").strip(),
                    stage=values.get("stage", "").strip() or (stage or ""),
                    collection=coll,
                )
            )
    return rows, problems


def job_settings() -> JobSettings:
    """content-auto-creator's settings as `cokreat-jobs run content-auto-creator` would load them."""
    from cokreat_jobs.core.config import load_config

    return JobSettings.from_config(load_config("content-auto-creator"))


def check_row(row: Row, tc: TypeConfig, env: str, settings: JobSettings) -> list[Problem]:
    """What the import API and then content-auto-creator would say about this row (empty: nothing)."""
    problems: list[Problem] = []
    prepared = prepare_object(row.import_object(), None, "precheck", tc)
    if not stage_valid(prepared["stage"], tc):
        problems.append(
            Problem(
                row.line,
                "refused",
                f"the import API refuses it: stage {prepared['stage']!r} is not one of "
                f"{', '.join(tc.valid_stages)}",
            )
        )
    if row.source:
        # The metadata comes from the source when the API reads it: only the stage can be told now.
        return problems
    missing = missing_required(prepared["metadata"], tc, prepared["defaulted"])
    if missing:
        problems.append(
            Problem(row.line, "refused", f"the import API refuses it: required {', '.join(missing)} missing")
        )
    if problems:
        return problems
    event = build_event(prepared, env, identifier="do_precheck")
    try:
        skip = check_event(Event(event), settings)
    except InvalidField as exc:
        return [Problem(row.line, "invalid", f"content-auto-creator would fail it: {exc}")]
    if skip is not None:
        detail = ""
        if skip.reason == "mandatory-fields-missing":
            detail = ": " + ", ".join(skip.detail.get("missing", []))
        elif skip.detail:
            detail = ": " + ", ".join(f"{k}={v}" for k, v in skip.detail.items())
        problems.append(
            Problem(row.line, "skipped", f"content-auto-creator would skip it ({skip.reason}{detail})")
        )
    return problems


def precheck(
    rows: Sequence[Row], cfg: ImportConfig | None = None, settings: JobSettings | None = None
) -> list[Problem]:
    cfg = cfg or load_import_config()
    settings = settings or job_settings()
    out: list[Problem] = []
    for row in rows:
        out += check_row(row, cfg.content, cfg.env, settings)
    return out


def batches(items: Sequence[Any], size: int) -> list[list[Any]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def parse_headers(values: Iterable[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"header {value!r} is not 'Name: value'")
        headers[name.strip()] = rest.strip()
    return headers


def import_url(base_url: str) -> str:
    return base_url.rstrip("/") + IMPORT_PATH


def post_batch(
    url: str,
    objects: list[dict[str, Any]],
    process_id: str,
    headers: Mapping[str, str],
    timeout: float = 120.0,
) -> dict[str, Any]:
    body = json.dumps({"request": {"content": objects, "processId": process_id}}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            answer = json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            params = json.loads(text).get("params") or {}
            reason = f"{params.get('err')}: {params.get('errmsg')}"
        except (ValueError, AttributeError):
            reason = text[:500]
        raise UploadError(f"{url} answered {exc.code}: {reason}") from exc
    except (OSError, ValueError) as exc:
        raise UploadError(f"{url}: {exc}") from exc
    return answer if isinstance(answer, dict) else {}


@dataclass
class SendResult:
    process_id: str
    """The processId of the upload (the first batch's, when the server chose its own)."""
    sent: int
    batches: int
    process_ids: list[str]
    """Each batch's processId as the server answered it (all the same unless the server ignores ours)."""


def send(
    base_url: str,
    rows: Sequence[Row],
    *,
    process_id: str | None = None,
    batch_size: int = 200,
    headers: Mapping[str, str] | None = None,
    on_batch: Any = None,
) -> SendResult:
    """Send the rows in batches under one processId; raises UploadError naming the lines not sent."""
    process_id = process_id or str(uuid.uuid4())
    url = import_url(base_url)
    pids: list[str] = []
    sent = 0
    parts = batches(list(rows), batch_size)
    for n, part in enumerate(parts, start=1):
        try:
            answer = post_batch(url, [r.import_object() for r in part], process_id, headers or {})
        except UploadError as exc:
            raise UploadError(
                f"batch {n} of {len(parts)} (lines {part[0].line}-{part[-1].line}) not imported: {exc}"
                + (f"; lines up to {part[0].line - 1} were imported under {process_id}" if sent else "")
            ) from exc
        result = answer["result"] if isinstance(answer.get("result"), dict) else {}
        pids.append(str(result.get("processId") or process_id))
        sent += len(part)
        if on_batch is not None:
            on_batch(n, len(parts), sent)
    return SendResult(pids[0] if pids else process_id, sent, len(parts), pids)

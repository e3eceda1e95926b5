"""Failed-topic records (INTERFACE.md "Failed-topic records").

A failed event is the original event plus ``jobName`` and ``failInfo`` = ``{"error": "<message> : :
List(<frames>)", "reason": "<code>"}`` with ``edata.iteration`` incremented, the shape the Scala
``FailedEventHelper`` wrote (there: the message, then up to 20 parts of the Java stack trace as a Scala
``List``). ``replay`` sends it back to the input topic while ``edata.iteration <= maxIteration``.

An input record that is not a JSON object becomes a malformed record carrying its raw text (or base64),
size and Kafka coordinates, for a person to read.
"""

from __future__ import annotations

import base64
import copy
import json
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from cokreat_jobs.core.redaction import redact

__all__ = ["MAX_FRAMES", "RAW_LIMIT", "dumps", "error_text", "failed_event", "loads", "malformed_record"]

MAX_FRAMES = 20
RAW_LIMIT = 64 * 1024


def _stack_parts(error: BaseException) -> list[str]:
    # Java's printStackTrace order: the exception, its frames innermost-first, then each "Caused by".
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    prefix = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{prefix}{type(current).__qualname__}: {current}")
        frames = traceback.extract_tb(current.__traceback__) if current.__traceback__ else []
        parts.extend(f"at {f.name}({f.filename}:{f.lineno})" for f in reversed(frames))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        prefix = "Caused by: "
    return parts


def error_text(
    error: BaseException | str,
    max_frames: int = MAX_FRAMES,
    scrub: Callable[[str], str] | None = None,
) -> str:
    """``"<message> : : List(<up to max_frames parts>)"``, as the Scala jobs formatted ``failInfo.error``,
    redacted of secrets (``core/redaction.py``); ``scrub``, when given, is applied to the whole text first
    (user-delete takes the user id out with it, from the message and every cause)."""
    if isinstance(error, BaseException):
        message = str(error) or type(error).__qualname__
        parts = _stack_parts(error)
        if len(parts) > max_frames:
            # Keep the exception line (the most telling part) and the frames nearest the failure.
            parts = [parts[0], *parts[1:][: max_frames - 1]]
    else:
        message = error
        parts = []
    text = f"{message} : : List({', '.join(parts)})"
    return redact(scrub(text) if scrub is not None else text)


def failed_event(
    event: dict[str, Any],
    job_name: str,
    error: BaseException | str,
    reason: str,
    increment_iteration: bool = True,
    scrub: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """A copy of ``event`` with ``jobName``, ``failInfo`` and, by default, ``edata.iteration`` incremented.

    An absent iteration counts as 1 (so it becomes 2). ``edata`` is created when absent or null, so even such
    an event carries the count that stops replay; a non-object ``edata``, or an iteration that is not a whole
    number, is left as it was (replay counts those as malformed rather than looping on them).

    ``failInfo.error`` is redacted (and scrubbed with ``scrub``, see :func:`error_text`); the event itself is
    copied as it was, so that it replays unchanged.
    """
    record = copy.deepcopy(event)
    if increment_iteration:
        edata = record.get("edata")
        if edata is None:
            edata = record["edata"] = {}
        if isinstance(edata, dict):
            iteration = edata.get("iteration")
            if iteration is None:
                edata["iteration"] = 2
            elif isinstance(iteration, int) and not isinstance(iteration, bool):
                edata["iteration"] = iteration + 1
            elif isinstance(iteration, float) and iteration.is_integer():
                edata["iteration"] = int(iteration) + 1
            elif isinstance(iteration, str) and iteration.strip().isdigit():
                edata["iteration"] = int(iteration.strip()) + 1
    record["jobName"] = job_name
    record["failInfo"] = {"error": error_text(error, scrub=scrub), "reason": reason}
    return record


def malformed_record(
    raw: bytes | bytearray | memoryview | str | None,
    job_name: str,
    reason_message: str | BaseException,
    topic: str,
    partition: int,
    offset: int,
    limit: int = RAW_LIMIT,
) -> dict[str, Any]:
    """The failed-topic record for an input record that is not a usable JSON object.

    ``raw`` is the record's first ``limit`` bytes: as text when the whole record is valid UTF-8 (a character
    cut by the limit is dropped), else base64.
    """
    if raw is None:
        data = b""
    elif isinstance(raw, str):
        data = raw.encode("utf-8", "surrogatepass")
    else:
        data = bytes(raw)
    head = data[:limit]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(head).decode("ascii"), "base64"
    else:
        text, encoding = head.decode("utf-8", "ignore"), "utf-8"
    return {
        "jobName": job_name,
        "failInfo": {"error": error_text(reason_message), "reason": "malformed"},
        "raw": text,
        "rawEncoding": encoding,
        "rawSize": len(data),
        "rawTruncated": len(data) > limit,
        "source": {"topic": topic, "partition": partition, "offset": offset},
    }


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes; falls back to the stdlib for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(obj, default=str)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)

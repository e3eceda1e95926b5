"""Failed-topic records (INTERFACE.md "Failed-topic records").

A failed event is the original event plus ``jobName`` and ``failInfo`` = ``{"error": "<message> : :
List(<frames>)", "reason": "<code>"}`` with ``edata.iteration`` incremented, the shape the Scala
``FailedEventHelper`` wrote (there: the message, then up to 20 parts of the Java stack trace as a Scala
``List``). ``replay`` sends it back to the input topic while ``edata.iteration <= maxIteration``.

An input record that is not a JSON object becomes a malformed record carrying its raw text (or base64),
size and Kafka coordinates, for a person to read.

:func:`failed_record_text` writes a failed record for the failed topic and never raises: a record that
cannot be serialised, or would be larger than the broker accepts (its default ``message.max.bytes`` is
1,048,588; an at-least-once sink that is refused a record fails the task on every replay), becomes the same
kind of raw-text record, with the reason it failed for.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from cokreat_jobs.core.redaction import redact

__all__ = [
    "ERROR_LIMIT",
    "FAILED_RECORD_LIMIT",
    "MAX_FRAMES",
    "MAX_ITERATION",
    "RAW_LIMIT",
    "dumps",
    "error_text",
    "failed_event",
    "failed_record_text",
    "loads",
    "malformed_record",
    "next_iteration",
    "raw_record",
]

MAX_FRAMES = 20
RAW_LIMIT = 64 * 1024
# The default of `kafka.failed.max_record_bytes`: below the broker's default message.max.bytes (1,048,588),
# with room for the key, headers and batch overhead the producer adds to the serialised value.
FAILED_RECORD_LIMIT = 1_000_000
# failInfo.error of a record that had to be cut (an error text can quote a whole service answer).
ERROR_LIMIT = 16 * 1024
# The largest iteration counted on: Scala's Int, as the reference read it. Anything beyond is no count of
# replays (and 2^64 and more cannot even be written by orjson).
MAX_ITERATION = 2**31 - 1


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
    an event carries the count that stops replay; a non-object ``edata`` is left as it was, and an iteration
    that is no count is handled as :func:`next_iteration` says (replay leaves those for a person rather than
    looping on them).

    ``failInfo.error`` is redacted (and scrubbed with ``scrub``, see :func:`error_text`); the event itself is
    copied as it was, so that it replays unchanged.
    """
    record = copy.deepcopy(event)
    if increment_iteration:
        edata = record.get("edata")
        if edata is None:
            edata = record["edata"] = {}
        if isinstance(edata, dict):
            edata["iteration"] = next_iteration(edata.get("iteration"))
    record["jobName"] = job_name
    record["failInfo"] = {"error": error_text(error, scrub=scrub), "reason": reason}
    return record


def _count(value: Any) -> int | None:
    """``value`` as a whole number of tries in [0, MAX_ITERATION), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer() or abs(value) >= MAX_ITERATION:
            return None
        n = int(value)
    elif isinstance(value, str):
        text = value.strip()
        # ASCII digits only, and few of them: int() of a 100,000-digit string is itself slow
        if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ITERATION)):
            return None
        n = int(text)
    else:
        return None
    return n if 0 <= n < MAX_ITERATION else None


def next_iteration(iteration: Any) -> Any:
    """The ``edata.iteration`` a failed record carries: the count + 1 (absent counts as 1).

    A count is a whole number in [0, MAX_ITERATION) (``2``, ``2.0``, ``"2"``). Any other value is no count:
    a negative number replayed and failed again would climb for ever, 2^64 and more cannot be written, and a
    non-finite float is no number in JSON. Such a value is kept when replay already leaves it alone (a value
    that is not an integer: ``1e20``, ``-1e19``, ``"99999999999999999999"``, ``true``), and written as its
    text when it is an integer or not finite (``-5`` -> ``"-5"``, ``2**64`` -> ``"18446744073709551616"``),
    so that replay (``ops/replay.py``, which moves integers only) leaves the record for a person.
    """
    if iteration is None:
        return 2
    n = _count(iteration)
    if n is not None:
        return n + 1
    if isinstance(iteration, int) and not isinstance(iteration, bool):
        return str(iteration)
    if isinstance(iteration, float) and not math.isfinite(iteration):
        return str(iteration)
    return iteration


def raw_record(
    raw: bytes | bytearray | memoryview | str | None,
    job_name: str,
    error: str | BaseException,
    reason: str,
    source: dict[str, Any] | None = None,
    limit: int = RAW_LIMIT,
) -> dict[str, Any]:
    """A failed-topic record that carries an input as raw text (the malformed-record shape, any reason).

    ``raw`` is cut to its first ``limit`` bytes: as text when the whole of it is valid UTF-8 (a character cut
    by the limit is dropped), else base64. ``source`` (topic, partition, offset) is written when known.
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
    record: dict[str, Any] = {
        "jobName": job_name,
        "failInfo": {
            "error": _writable(error_text(error) if isinstance(error, BaseException) else error),
            "reason": reason,
        },
        "raw": text,
        "rawEncoding": encoding,
        "rawSize": len(data),
        "rawTruncated": len(data) > limit,
    }
    if source is not None:
        record["source"] = source
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
    source = {"topic": topic, "partition": partition, "offset": offset}
    return raw_record(raw, job_name, error_text(reason_message), "malformed", source, limit)


def _writable(text: str) -> str:
    # a lone surrogate (an escape in the event that an error quotes) is the one thing orjson cannot write
    return text.encode("utf-8", "replace").decode("utf-8")


def _text_of(value: Any, limit: int) -> str:
    # never raises: a failInfo.error that is not a string (a processor's bug) is written as its repr
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    text = _writable(text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _fail_info(record: Any) -> tuple[str, str]:
    """The reason and error text of a failed record, whatever it holds ("permanent" when it has none)."""
    info = record.get("failInfo") if isinstance(record, dict) else None
    if not isinstance(info, dict):
        return "permanent", ""
    reason = info.get("reason")
    return (reason if isinstance(reason, str) and reason else "permanent"), _text_of(
        info.get("error", ""), ERROR_LIMIT
    )


def failed_record_text(
    record: dict[str, Any],
    job_name: str,
    raw: bytes | str | None = None,
    source: dict[str, Any] | None = None,
    max_bytes: int = FAILED_RECORD_LIMIT,
) -> str:
    """``record`` as failed-topic text: never raises, never longer than ``max_bytes`` bytes of UTF-8.

    The record as it is when it can be written and fits. Else, when a shorter ``failInfo.error`` makes it fit,
    so (it stays replayable). Else a raw-text record (:func:`raw_record`) with the record's reason, its error
    and why it could not be written whole: ``raw`` is the input's text when given (the event as read), else
    what can be written of the record, and ``source`` its Kafka coordinates when known.
    """
    why: str
    data: bytes | None = None
    try:
        written = orjson.dumps(record)
    except Exception as e:  # an integer beyond 64 bits, a lone surrogate, a value JSON has no form for
        why = f"the failed record cannot be written as JSON ({e})"
    else:
        if len(written) <= max_bytes:
            return written.decode("utf-8")
        data = written
        why = f"the failed record of {len(written)} bytes exceeds kafka.failed.max_record_bytes ({max_bytes})"
        try:
            info = record["failInfo"]
            if (
                isinstance(info, dict)
                and isinstance(info.get("error"), str)
                and len(info["error"]) > ERROR_LIMIT
            ):
                shorter = orjson.dumps(
                    {**record, "failInfo": {**info, "error": _text_of(info["error"], ERROR_LIMIT)}}
                )
                if len(shorter) <= max_bytes:
                    return shorter.decode("utf-8")
        except Exception:
            pass
    reason, error = _fail_info(record)
    if raw is None:
        try:
            raw = data if data is not None else dumps(record)
        except Exception:
            raw = _text_of(record, RAW_LIMIT)
    error = f"{error}; {why}" if error else why
    limit = RAW_LIMIT
    while True:
        try:
            cut = orjson.dumps(raw_record(raw, job_name, error, reason, source, limit))
        except Exception:  # a source or job name that cannot be written: the record without them
            try:
                cut = orjson.dumps(raw_record(raw, _text_of(job_name, 200), error, reason, None, limit))
            except Exception:
                cut = orjson.dumps(
                    {"jobName": "", "failInfo": {"error": why, "reason": "permanent"}, "raw": ""}
                )
        if len(cut) <= max_bytes or limit == 0:
            break
        # escapes can make the text longer than its bytes; a cap set very low leaves less room
        limit //= 2
        error = _text_of(error, max(200, limit))
    return cut.decode("utf-8")


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes; falls back to the stdlib for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(obj, default=str)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)

"""Structured logs: one JSON object a line, on the stdlib ``logging`` module.

Each line has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and ``msg``, then the fields
given to :func:`log_event` (``mid``, ``object_id``, ``job``, ``outcome``, ``duration_ms``, ...), then ``exc``
when an exception is attached. Messages, fields (nested ones too) and exception texts pass through the one
redaction of ``core/redaction.py``; personal ids are the callers' to hash with :func:`hash_id` before logging.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any

import orjson

from cokreat_jobs.core.redaction import redact, redact_data

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "ID_HASH_SALT_KEY",
    "IdHasher",
    "JsonFormatter",
    "configure_logging",
    "get_logger",
    "hash_id",
    "log_event",
    "redact",
]

_RESERVED = ("ts", "level", "logger", "msg", "exc")
_FIELDS_ATTR = "cokreat_fields"

# The salt of deployments that set none (and of every version before ``log.id_hash_salt``): public, since it
# is written here, so such hashes only keep an id out of plain sight: anyone with the logs can test an id.
_BUILTIN_SALT = b"cokreat-jobs/v1:"

ID_HASH_SALT_KEY = "log.id_hash_salt"


def hash_id(value: Any, salt: str | bytes | None = None) -> str:
    """A stable pseudonym for a personal id, 16 hex digits; ``""`` for None or "".

    With ``salt`` (the deployment's secret ``log.id_hash_salt``): HMAC-SHA256 keyed with it, which cannot be
    recomputed without the salt. Without: sha256 over the built-in salt and the id (the hashes of earlier
    versions), stable everywhere but checkable by anyone against a known id.
    """
    if value is None or value == "":
        return ""
    data = str(value).encode("utf-8", "surrogatepass")
    if salt:
        key = salt.encode("utf-8", "surrogatepass") if isinstance(salt, str) else salt
        return hmac.new(key, data, hashlib.sha256).hexdigest()[:16]
    return hashlib.sha256(_BUILTIN_SALT + data).hexdigest()[:16]


class IdHasher:
    """:func:`hash_id` with the deployment's salt, read once from ``log.id_hash_salt``.

    ``keyed`` says whether a salt was set. Unset or blank falls back to the built-in salt (README,
    user-delete): operators need hashes that join across restarts, subtasks and task managers, which a random
    per-process salt would not give, so the fallback is the stable built-in salt, said in a warning.
    """

    __slots__ = ("_salt",)

    def __init__(self, salt: str | bytes | None = None) -> None:
        self._salt = salt or None

    @classmethod
    def from_config(cls, cfg: JobConfig) -> IdHasher:
        return cls(cfg.get_str(ID_HASH_SALT_KEY, "").strip() or None)

    @property
    def keyed(self) -> bool:
        return self._salt is not None

    def __call__(self, value: Any) -> str:
        return hash_id(value, self._salt)

    def __repr__(self) -> str:  # never the salt itself
        return f"IdHasher(keyed={self.keyed})"


def _json_safe(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        fields = getattr(record, _FIELDS_ATTR, None)
        if fields:
            for key, value in fields.items():
                # A field never overwrites the line's own keys.
                entry[f"field_{key}" if key in _RESERVED else key] = redact_data(value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        try:
            return orjson.dumps(entry, default=_json_safe).decode("utf-8")
        except TypeError:  # e.g. an int beyond 64 bits: stringify the fields rather than lose the line
            return orjson.dumps({k: _json_safe(v) for k, v in entry.items()}).decode("utf-8")


def _iso_utc(created: float) -> str:
    secs = int(created)
    millis = int((created - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


_HANDLER_MARK = "_cokreat_json_handler"


def configure_logging(level: int | str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr by default) as JSON lines.

    Idempotent: calling it again replaces the handler it installed before, and leaves other handlers alone.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.getLevelName(level.upper()) if isinstance(level, str) else level)
    return handler


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def log_event(logger: logging.Logger, level: int | str, msg: str, /, **fields: Any) -> None:
    """Log ``msg`` with ``fields`` as top-level keys of the JSON line (``None`` fields are left out).

    ``exc_info`` is passed to logging (the traceback goes to ``exc``). Personal ids must be hashed by the
    caller (:func:`hash_id`); the message and text fields are redacted of secrets.
    """
    exc_info = fields.pop("exc_info", None)
    lvl = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(lvl, int):
        lvl = logging.INFO
    if not logger.isEnabledFor(lvl):
        return
    clean = {k: v for k, v in fields.items() if v is not None}
    logger.log(lvl, "%s", msg, exc_info=exc_info, extra={_FIELDS_ATTR: clean}, stacklevel=2)


_STDERR: IO[str] | None = None


def _stderr_fd() -> IO[str]:
    global _STDERR
    if _STDERR is None:
        try:
            _STDERR = open(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError:
            _STDERR = sys.stderr
    return _STDERR


def configure_job_logging(level: int | str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """JSON lines for the jobs' own loggers (``cokreat_jobs.*``) straight to stderr, not through the root.

    Inside a Flink Python worker the root logger ships every record over Beam's gRPC logging channel to the
    task manager; one line per event there exhausted a task manager's direct memory under load. The jobs'
    lines go to the worker's stderr instead, which Flink keeps beside the task manager's log.
    """
    logger = logging.getLogger("cokreat_jobs")
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            logger.removeHandler(handler)
    # PyFlink's worker patches sys.stderr.write to log each line over gRPC: write to file descriptor 2
    handler = logging.StreamHandler(_stderr_fd() if stream is None else stream)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.getLevelName(level.upper()) if isinstance(level, str) else level)
    return handler

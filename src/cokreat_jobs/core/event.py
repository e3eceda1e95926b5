"""Reading input events: parse a Kafka record into a JSON object, then read fields by dotted path.

The Scala jobs cast fields blindly (a ``ClassCastException`` restarted the whole job); here a field of the
wrong type raises :class:`InvalidField` naming the field, and a record that is not a usable JSON object raises
:class:`MalformedEvent`, so one bad event fails alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson

from cokreat_jobs.core.errors import InvalidField, MalformedEvent
from cokreat_jobs.core.values import type_name

__all__ = ["DEFAULT_MAX_DEPTH", "Event", "parse_record", "reading_topic", "record_topic"]

DEFAULT_MAX_DEPTH = 64

_BOM = b"\xef\xbb\xbf"

# The Kafka topic of the record being processed, for a job that reads several topics (user-delete's release-8
# shape): the pipeline's process stage sets it around each call of a processor; None when unknown (a processor
# called outside Flink, a keyed job's stage, which gets no record coordinates).
_RECORD_TOPIC: ContextVar[str | None] = ContextVar("cokreat_record_topic", default=None)


def record_topic() -> str | None:
    """The topic of the record being processed, or None when the caller did not say."""
    return _RECORD_TOPIC.get()


@contextmanager
def reading_topic(topic: str | None) -> Iterator[None]:
    """Within this block, :func:`record_topic` answers ``topic``."""
    token = _RECORD_TOPIC.set(topic)
    try:
        yield
    finally:
        _RECORD_TOPIC.reset(token)


_MISSING: Any = object()


def _too_deep(value: Any, max_depth: int) -> bool:
    # Iterative, so a hostile record cannot exhaust Python's recursion limit here either.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def parse_record(
    value: bytes | bytearray | memoryview | str | None,
    max_bytes: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> dict[str, Any]:
    """The record's JSON object, or :class:`MalformedEvent` saying why there is none.

    Refused: no value (a tombstone), more than ``max_bytes`` bytes, not UTF-8, not JSON, JSON that is not an
    object, and objects nested deeper than ``max_depth`` (later steps copy and serialise events recursively;
    orjson itself refuses to write past 254 levels). A leading UTF-8 byte-order mark is ignored, as Jackson
    ignored it.
    """
    if value is None:
        raise MalformedEvent("empty record (no value)")
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    else:
        data = bytes(value)
    size = len(data)
    if size > max_bytes:
        raise MalformedEvent(f"record of {size} bytes exceeds kafka.max_record_bytes ({max_bytes})")
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data.strip():
        raise MalformedEvent("empty record")
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as ue:
            raise MalformedEvent(f"record is not valid UTF-8 (byte {ue.start})") from None
        raise MalformedEvent(f"record is not valid JSON: {e}") from None
    except (RecursionError, MemoryError, ValueError) as e:
        raise MalformedEvent(f"record is not valid JSON: {type(e).__name__}") from None
    if not isinstance(parsed, dict):
        raise MalformedEvent(f"record is JSON but not an object (a {type_name(parsed)})")
    # Counting brackets is a fast upper bound of the depth: most events need no walk at all.
    if data.count(b"{") + data.count(b"[") > max_depth and _too_deep(parsed, max_depth):
        raise MalformedEvent(f"record nests deeper than {max_depth} levels")
    return parsed


class Event:
    """A read-only view of one input event, read by dotted path (``edata.metadata.mimeType``).

    ``get`` returns the default when a field is absent or null (as the reference did). Typed getters do the
    same, and raise :class:`InvalidField` when the field, or an object on its path, has the wrong type.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        if not isinstance(data, dict):
            raise InvalidField("<event>", "an object", type_name(data))
        self._data = data

    @property
    def raw(self) -> dict[str, Any]:
        """The event as parsed (not a copy: do not mutate it)."""
        return self._data

    def _find(self, path: str, strict: bool) -> Any:
        node: Any = self._data
        walked = 0
        for part in path.split("."):
            if not isinstance(node, dict):
                if strict and node is not None:
                    raise InvalidField(path[: walked - 1], "an object", type_name(node))
                return _MISSING
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return _MISSING
            walked += len(part) + 1
        return _MISSING if node is None else node

    def get(self, path: str, default: Any = None) -> Any:
        value = self._find(path, strict=False)
        return default if value is _MISSING else value

    def has(self, path: str) -> bool:
        return self._find(path, strict=False) is not _MISSING

    def get_str(self, path: str, default: str = "") -> str:
        value = self._find(path, strict=True)
        if value is _MISSING:
            return default
        if isinstance(value, str):
            return value
        raise InvalidField(path, "a string", type_name(value))

    def get_int(self, path: str, default: int = 0) -> int:
        value = self._find(path, strict=True)
        if value is _MISSING:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # JSON has one number type: 2.0 is a whole number, written by some producers.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise InvalidField(path, "an integer", type_name(value))

    def get_float(self, path: str, default: float = 0.0) -> float:
        value = self._find(path, strict=True)
        if value is _MISSING:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise InvalidField(path, "a number", type_name(value))

    def get_bool(self, path: str, default: bool = False) -> bool:
        value = self._find(path, strict=True)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        raise InvalidField(path, "a boolean", type_name(value))

    def get_list(self, path: str, default: list[Any] | None = None) -> list[Any]:
        value = self._find(path, strict=True)
        if value is _MISSING:
            return [] if default is None else default
        if isinstance(value, list):
            return value
        raise InvalidField(path, "a list", type_name(value))

    def get_dict(self, path: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
        value = self._find(path, strict=True)
        if value is _MISSING:
            return {} if default is None else default
        if isinstance(value, dict):
            return value
        raise InvalidField(path, "an object", type_name(value))

    @property
    def mid(self) -> str:
        return self.get_str("mid")

    @property
    def object_id(self) -> str:
        return self.get_str("object.id")

    @property
    def channel(self) -> str:
        return self.get_str("context.channel")

    @property
    def action(self) -> str:
        return self.get_str("edata.action")

    @property
    def object_type(self) -> str:
        return self.get_str("edata.objectType")

    @property
    def iteration(self) -> int:
        return self.get_int("edata.iteration", 1)

    @property
    def edata(self) -> dict[str, Any]:
        return self.get_dict("edata")

    def __repr__(self) -> str:
        # Only the ids: events carry personal data (user ids, names) that must not reach logs whole.
        return f"Event(mid={self.get('mid')!r})"

"""The elements between the pipeline's operators: a small type per kind, and the Flink type carrying them.

    Kafka row --parse--> Event | Malformed --key_by--> process --> str (failed-topic text)

and in a job with a next stage the first stage's output is typed too:

    process --> Failed ----------------------------------------> str --> failed topic
            \\-> Event (the handed-on request) --key_by--> next stage --/

`ELEMENT_TYPE` (pickled) carries them: these are NamedTuples of a string or two, which pickle by reference to
this module in a few microseconds; the event itself travels as JSON text, because re-parsing text with orjson
is cheaper than pickling a dict.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias, TypeGuard

from pyflink.common import Types

__all__ = [
    "ELEMENT_TYPE",
    "Element",
    "Event",
    "Failed",
    "Malformed",
    "Tick",
    "element_key",
    "failed_text",
    "is_event",
    "is_failed",
    "is_handed_on",
]


class Event(NamedTuple):
    """An event for a process stage (an input event, or a request handed on to the next stage).

    `text` is its JSON object; `key` orders it: events of one key are processed one after another ("" for an
    event without a key, which waits for nobody).
    """

    key: str
    text: str


class Malformed(NamedTuple):
    """An input record that is no usable event, as its failed-topic record (JSON text).

    Not yet counted: the process stage counts it (total, failed) and sends `record` to the failed topic.
    """

    record: str


class Failed(NamedTuple):
    """A failed-topic record (JSON text) out of a first stage that hands on; counted already."""

    record: str


class Tick(NamedTuple):
    """A bucket's tick under `task.async.operator = keyed-state` (flink/inflight.py): no event, only the
    moment to emit the bucket's finished events (and, after a restore, to start its restored ones)."""

    bucket: str


Element: TypeAlias = Event | Malformed | Failed | Tick

# The Flink type of an element: pickled bytes (a Row or Tuple type would need a kind tag of its own).
ELEMENT_TYPE = Types.PICKLED_BYTE_ARRAY()


def element_key(element: Element) -> str:
    """The key_by key: an event's key, "" for the rest."""
    return element.key if isinstance(element, Event) else ""


def is_event(element: Element) -> TypeGuard[Event]:
    return isinstance(element, Event)


def is_handed_on(element: Element) -> bool:
    """What a next stage takes: the handed-on events, and the ticks its buckets need under keyed-state."""
    return isinstance(element, Event | Tick)


def is_failed(element: Element) -> TypeGuard[Failed]:
    return isinstance(element, Failed)


def failed_text(element: Failed) -> str:
    return element.record

from __future__ import annotations

import base64
import copy
import pickle
from typing import Any

import orjson
import pytest

from cokreat_jobs.core.errors import (
    ConfigError,
    InvalidField,
    JobError,
    MalformedEvent,
    PermanentError,
    TransientError,
)
from cokreat_jobs.core.failed import (
    ERROR_LIMIT,
    MAX_ITERATION,
    dumps,
    error_text,
    failed_event,
    failed_record_text,
    loads,
    malformed_record,
)
from cokreat_jobs.core.outcome import Outcome

EVENT = {
    "mid": "m1",
    "object": {"id": "do_1"},
    "edata": {"action": "auto-create", "iteration": 1, "metadata": {"name": "n"}},
}


def _raise_nested(depth: int) -> None:
    if depth == 0:
        raise PermanentError("boom")
    _raise_nested(depth - 1)


def _caught(depth: int = 0) -> PermanentError:
    try:
        _raise_nested(depth)
    except PermanentError as e:
        return e
    raise AssertionError("not raised")


# -------------------------------------------------------------------------------------------- failed_event


def test_failed_event_is_a_copy_with_job_and_fail_info() -> None:
    original = copy.deepcopy(EVENT)
    record = failed_event(EVENT, "content-auto-creator", _caught(), "permanent")
    assert EVENT == original  # untouched
    assert record["jobName"] == "content-auto-creator"
    assert record["failInfo"]["reason"] == "permanent"
    assert record["failInfo"]["error"].startswith("boom : : List(PermanentError: boom, at _raise_nested(")
    assert record["failInfo"]["error"].endswith(")")
    assert record["edata"]["iteration"] == 2
    assert record["edata"]["metadata"] == {"name": "n"}
    assert record["mid"] == "m1"
    record["edata"]["metadata"]["name"] = "changed"
    assert EVENT["edata"]["metadata"]["name"] == "n"


@pytest.mark.parametrize(
    ("edata", "expected"),
    [
        ({"iteration": 3}, {"iteration": 4}),
        ({}, {"iteration": 2}),
        ({"iteration": None}, {"iteration": 2}),
        ({"iteration": 2.0}, {"iteration": 3}),
        ({"iteration": "2"}, {"iteration": 3}),
        ({"iteration": "abc"}, {"iteration": "abc"}),
        ({"iteration": True}, {"iteration": True}),
    ],
)
def test_iteration_increment(edata: dict, expected: dict) -> None:
    assert failed_event({"edata": edata}, "j", "e", "permanent")["edata"] == expected


def test_iteration_when_edata_absent_or_not_an_object() -> None:
    assert failed_event({"mid": "m"}, "j", "e", "permanent")["edata"] == {"iteration": 2}
    assert failed_event({"edata": None}, "j", "e", "permanent")["edata"] == {"iteration": 2}
    assert failed_event({"edata": "x"}, "j", "e", "permanent")["edata"] == "x"


def test_no_increment_when_asked() -> None:
    record = failed_event(EVENT, "j", "e", "invalid-field", increment_iteration=False)
    assert record["edata"]["iteration"] == 1


def test_error_text_for_a_string_and_for_frames() -> None:
    assert error_text("just a message") == "just a message : : List()"
    text = error_text(_caught(depth=40))
    parts = text.split(" : : List(", 1)[1].rstrip(")").split(", ")
    assert len(parts) == 20
    assert parts[0] == "PermanentError: boom"
    assert all(p.startswith("at ") for p in parts[1:])
    # Innermost first, as Java prints them: the frame that raised comes right after the exception line.
    assert parts[1].startswith("at _raise_nested(")


def test_error_text_of_an_exception_without_message_or_traceback() -> None:
    assert error_text(ValueError()) == "ValueError : : List(ValueError: )"


def test_error_text_includes_the_cause() -> None:
    try:
        try:
            raise OSError("disk")
        except OSError as inner:
            raise PermanentError("wrapped") from inner
    except PermanentError as e:
        text = error_text(e)
    assert "Caused by: OSError: disk" in text


# ------------------------------------------------------------------------------------------ malformed_record


def test_malformed_utf8_record() -> None:
    raw = b"not json at all"
    record = malformed_record(raw, "user-delete", "record is not valid JSON", "t.in", 3, 42)
    assert record == {
        "jobName": "user-delete",
        "failInfo": {"error": "record is not valid JSON : : List()", "reason": "malformed"},
        "raw": "not json at all",
        "rawEncoding": "utf-8",
        "rawSize": 15,
        "rawTruncated": False,
        "source": {"topic": "t.in", "partition": 3, "offset": 42},
    }


def test_malformed_binary_record_is_base64() -> None:
    raw = b'{"a": "\xff\xfe"}'
    record = malformed_record(raw, "j", "not UTF-8", "t", 0, 1)
    assert record["rawEncoding"] == "base64"
    assert base64.b64decode(record["raw"]) == raw
    assert record["rawSize"] == len(raw)


def test_malformed_record_truncation() -> None:
    raw = ("é" * 40_000).encode()  # 80,000 bytes of two-byte characters
    record = malformed_record(raw, "j", "too big", "t", 0, 1)
    assert record["rawTruncated"] is True
    assert record["rawSize"] == 80_000
    assert record["rawEncoding"] == "utf-8"
    assert record["raw"] == "é" * 32_768
    small = malformed_record(raw, "j", "too big", "t", 0, 1, limit=5)
    assert small["raw"] == "éé"  # the cut character is dropped, not mangled
    binary = malformed_record(b"\xff" * 100, "j", "x", "t", 0, 1, limit=10)
    assert base64.b64decode(binary["raw"]) == b"\xff" * 10
    assert binary["rawTruncated"] is True


def test_malformed_record_of_none_and_exception_message() -> None:
    record = malformed_record(None, "j", MalformedEvent("empty record"), "t", 0, 1)
    assert record["raw"] == ""
    assert record["rawSize"] == 0
    assert record["failInfo"]["error"].startswith("empty record : : List(MalformedEvent: empty record")


# ------------------------------------------------------------------------------------------------- dumps


def test_dumps_round_trip_and_fallbacks() -> None:
    record = failed_event(EVENT, "j", "e", "permanent")
    assert loads(dumps(record)) == record
    assert isinstance(dumps({}), bytes)
    # orjson refuses integers beyond 64 bits; the stdlib writes them exactly.
    assert dumps({"big": 2**70}) == b'{"big":1180591620717411303424}'
    assert dumps({1: "int key"}) == b'{"1":"int key"}'
    assert orjson.loads(dumps({"o": object()}))["o"].startswith("<object")


# ------------------------------------------------------------------------------------------ errors, outcome


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TransientError("t", status=503, attempts=5), "retries-exhausted"),
        (PermanentError("p", status=400), "permanent"),
        (MalformedEvent("m"), "malformed"),
        (InvalidField("edata.iteration", "an integer", "string"), "invalid-field"),
        (ConfigError("c"), "config"),
        (JobError("j", reason="custom"), "custom"),
    ],
)
def test_error_tree_reasons_and_pickling(error: JobError, reason: str) -> None:
    assert isinstance(error, JobError)
    assert error.reason == reason
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert again.reason == reason
    assert str(again) == str(error)
    assert again.__dict__ == error.__dict__


def test_error_attributes() -> None:
    err = TransientError("x", status=503, attempts=3)
    assert (err.status, err.attempts, err.response) == (503, 3, None)
    field = InvalidField("object.id", "a string", "object")
    assert str(field) == "field 'object.id' must be a string, got object"


def test_outcome_constructors() -> None:
    ok = Outcome.success(detail={"unit_missing": ["do_u"]})
    assert ok.kind == "success" and ok.is_success and ok.detail == {"unit_missing": ["do_u"]}
    assert ok.failed_record is None
    skipped = Outcome.skipped("action-not-delete-user")
    assert skipped.is_skipped and skipped.reason == "action-not-delete-user"
    record = failed_event(EVENT, "j", "e", "permanent")
    failed = Outcome.failed(record, "permanent")
    assert failed.is_failed and failed.failed_record is record and failed.reason == "permanent"
    assert pickle.loads(pickle.dumps(failed)) == failed
    with pytest.raises(AttributeError):
        failed.kind = "success"  # type: ignore[misc]


# ---------------------------------------------------------------- iterations that are no count (HARDENING 1)


@pytest.mark.parametrize(
    ("iteration", "expected"),
    [
        (0, 1),
        (MAX_ITERATION - 1, MAX_ITERATION),
        ("  7 ", 8),
        (1e20, 1e20),  # not an integer: kept, replay leaves it (orjson writes it)
        (-1e19, -1e19),
        (2.5, 2.5),
        ("99999999999999999999", "99999999999999999999"),
        ("-3", "-3"),
        ("١٢", "١٢"),  # digits, but not ASCII ones
        (2**64, "18446744073709551616"),  # an integer orjson cannot write: its text
        (-5, "-5"),  # replayed and failed again it would climb for ever: its text, which replay leaves
        (MAX_ITERATION, str(MAX_ITERATION)),
        (float("inf"), "inf"),
        (float("nan"), "nan"),
        ([1], [1]),
    ],
)
def test_an_iteration_that_is_no_count_is_never_replayed_nor_unwritable(
    iteration: Any, expected: Any
) -> None:
    from cokreat_jobs.ops.replay import decide

    record = failed_event({"edata": {"iteration": iteration}}, "j", "e", "permanent")
    got = record["edata"]["iteration"]
    assert got == expected or (got != got and expected != expected)
    text = failed_record_text(record, "j")
    back = orjson.loads(text)
    assert "raw" not in back  # written whole
    verdict, _ = decide(back, "j", 3)
    if isinstance(expected, int) and expected <= 3:
        assert verdict == "move"
    else:
        assert verdict in ("malformed", "exhausted")


def test_a_failed_record_that_cannot_be_written_becomes_its_raw_text() -> None:
    raw = '{"edata": {"userId": "u1"}}'
    for bad in (10**30, "\ud800 lone surrogate", {1, 2}):
        record = {
            "edata": {"x": bad},
            "jobName": "j",
            "failInfo": {"error": "boom", "reason": "invalid-field"},
        }
        back = orjson.loads(failed_record_text(record, "j", raw, {"topic": "t", "partition": 0, "offset": 3}))
        assert back["raw"] == raw and back["rawSize"] == len(raw) and back["rawTruncated"] is False
        assert back["failInfo"]["reason"] == "invalid-field"
        assert back["failInfo"]["error"].startswith("boom; the failed record cannot be written as JSON")
        assert back["source"] == {"topic": "t", "partition": 0, "offset": 3} and back["jobName"] == "j"
    # without the raw text, what can be written of the record stands in for it
    back = orjson.loads(failed_record_text({"edata": {"n": 10**30}}, "j"))
    assert "1000000000000000000000000000000" in back["raw"] and back["failInfo"]["reason"] == "permanent"


def test_a_failed_record_over_the_cap_is_cut_or_keeps_its_shape_with_a_shorter_error() -> None:
    event = {"edata": {"iteration": 1}, "pad": "x" * 3000}
    long_error = failed_event(event, "j", "e" * (ERROR_LIMIT * 4), "permanent")
    text = failed_record_text(long_error, "j", max_bytes=ERROR_LIMIT + 4000)
    back = orjson.loads(text)
    # the error was what made it large: shortened, the record keeps its shape and replays
    assert (
        "raw" not in back
        and back["pad"] == event["pad"]
        and len(back["failInfo"]["error"]) < ERROR_LIMIT + 50
    )
    for cap in (2000, 500):
        text = failed_record_text(
            failed_event(event, "j", "boom", "permanent"), "j", '{"pad": "..."}', None, cap
        )
        assert len(text.encode()) <= cap
        back = orjson.loads(text)
        assert back["rawTruncated"] is False and back["failInfo"]["reason"] == "permanent"
        assert "exceeds kafka.failed.max_record_bytes" in back["failInfo"]["error"]
    # escapes make a text longer than its bytes: still under the cap
    text = failed_record_text({"pad": "\x01" * 200_000}, "j", "\x01" * 200_000, None, 100_000)
    assert len(text.encode()) <= 100_000 and orjson.loads(text)["rawTruncated"] is True

from __future__ import annotations

import pickle

import orjson
import pytest

from cokreat_jobs.core.errors import InvalidField, MalformedEvent
from cokreat_jobs.core.event import Event, parse_record

EVENT = {
    "eid": "BE_JOB_REQUEST",
    "ets": 1617174912468,
    "mid": "LP.1617174912468.abc",
    "actor": {"id": "Auto Creator", "type": "System"},
    "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0", "env": "dev"}, "channel": "ch1"},
    "object": {"id": "do_1", "ver": "123"},
    "edata": {
        "action": "auto-create",
        "iteration": 2,
        "objectType": "Content",
        "metadata": {"mimeType": "application/pdf", "pkgVersion": 1.0, "name": None},
        "collection": [{"identifier": "do_c", "unitId": "do_u"}],
        "flag": True,
    },
}


# -------------------------------------------------------------------------------------------- parse_record


def test_parse_valid_record() -> None:
    raw = orjson.dumps(EVENT)
    assert parse_record(raw, 1 << 20) == EVENT
    assert parse_record(bytearray(raw), 1 << 20) == EVENT
    assert parse_record(raw.decode(), 1 << 20) == EVENT


def test_parse_ignores_bom() -> None:
    assert parse_record(b"\xef\xbb\xbf" + b'{"a": 1}', 100) == {"a": 1}


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "no value"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b"not json", "not valid JSON"),
        (b'{"a": 1', "not valid JSON"),
        (b'{"a": "\xff\xfe"}', "not valid UTF-8"),
        (b"[1, 2]", "not an object"),
        (b'"text"', "not an object"),
        (b"42", "not an object"),
        (b"null", "not an object"),
        (b'{"a": NaN}', "not valid JSON"),
    ],
)
def test_parse_malformed(value: bytes | None, match: str) -> None:
    with pytest.raises(MalformedEvent, match=match) as info:
        parse_record(value, 1 << 20)
    assert info.value.reason == "malformed"


def test_parse_oversized_names_sizes() -> None:
    raw = b'{"a": "' + b"x" * 100 + b'"}'
    with pytest.raises(MalformedEvent, match=f"{len(raw)} bytes exceeds .*\\(50\\)"):
        parse_record(raw, 50)
    assert parse_record(raw, len(raw)) == {"a": "x" * 100}


def test_parse_depth_limit() -> None:
    def nested(depth: int) -> bytes:
        # depth levels in all, the outer object included
        return b'{"a":' * (depth - 1) + b"[]" + b"}" * (depth - 1)

    assert parse_record(nested(64), 1 << 20)
    with pytest.raises(MalformedEvent, match="deeper than 64"):
        parse_record(nested(65), 1 << 20)
    with pytest.raises(MalformedEvent, match="deeper than 8"):
        parse_record(nested(9), 1 << 20, max_depth=8)
    assert parse_record(nested(8), 1 << 20, max_depth=8)


def test_parse_very_deep_input_does_not_recurse() -> None:
    raw = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(MalformedEvent):
        parse_record(raw, 1 << 20)


def test_many_brackets_but_shallow_is_fine() -> None:
    data = {"items": [{"i": i, "l": []} for i in range(200)]}
    assert parse_record(orjson.dumps(data), 1 << 20) == data


# -------------------------------------------------------------------------------------------------- Event


def test_get_by_dotted_path() -> None:
    e = Event(EVENT)
    assert e.get("edata.metadata.mimeType") == "application/pdf"
    assert e.get("edata.metadata.missing", "d") == "d"
    assert e.get("edata.metadata.name", "null-gives-default") == "null-gives-default"
    assert e.get("edata.action.deeper", "d") == "d"
    assert e.get("nothing.here") is None
    assert e.has("edata.flag")
    assert not e.has("edata.metadata.name")
    assert e.raw is EVENT


def test_properties() -> None:
    e = Event(EVENT)
    assert e.mid == "LP.1617174912468.abc"
    assert e.object_id == "do_1"
    assert e.channel == "ch1"
    assert e.action == "auto-create"
    assert e.object_type == "Content"
    assert e.iteration == 2
    assert e.edata is EVENT["edata"]
    assert Event({}).iteration == 1
    assert Event({"edata": {"iteration": None}}).iteration == 1
    assert Event({}).mid == ""


def test_typed_getters() -> None:
    e = Event(EVENT)
    assert e.get_str("object.id") == "do_1"
    assert e.get_str("object.absent", "dflt") == "dflt"
    assert e.get_int("edata.iteration") == 2
    assert e.get_int("edata.metadata.pkgVersion") == 1
    assert e.get_float("edata.metadata.pkgVersion") == 1.0
    assert e.get_bool("edata.flag") is True
    assert e.get_list("edata.collection") == [{"identifier": "do_c", "unitId": "do_u"}]
    assert e.get_list("edata.none") == []
    assert e.get_dict("edata.metadata")["mimeType"] == "application/pdf"
    assert e.get_dict("edata.none") == {}


@pytest.mark.parametrize(
    ("data", "call", "path", "expected", "actual"),
    [
        ({"edata": {"iteration": "1"}}, lambda e: e.iteration, "edata.iteration", "an integer", "string"),
        ({"edata": {"iteration": True}}, lambda e: e.iteration, "edata.iteration", "an integer", "boolean"),
        ({"edata": {"iteration": 1.5}}, lambda e: e.iteration, "edata.iteration", "an integer", "number"),
        ({"object": {"id": {"x": 1}}}, lambda e: e.object_id, "object.id", "a string", "object"),
        ({"object": {"id": 5}}, lambda e: e.object_id, "object.id", "a string", "number"),
        (
            {"edata": {"collection": {}}},
            lambda e: e.get_list("edata.collection"),
            "edata.collection",
            "a list",
            "object",
        ),
        (
            {"edata": {"metadata": "x"}},
            lambda e: e.get_dict("edata.metadata"),
            "edata.metadata",
            "an object",
            "string",
        ),
        ({"edata": "oops"}, lambda e: e.get_str("edata.action"), "edata", "an object", "string"),
        ({"edata": {"m": [1]}}, lambda e: e.get_str("edata.m.x"), "edata.m", "an object", "list"),
        ({"edata": {"f": "true"}}, lambda e: e.get_bool("edata.f"), "edata.f", "a boolean", "string"),
        ({"edata": {"f": "1"}}, lambda e: e.get_float("edata.f"), "edata.f", "a number", "string"),
    ],
)
def test_wrong_types_raise_invalid_field(data, call, path, expected, actual) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidField) as info:
        call(Event(data))
    err = info.value
    assert (err.path, err.expected, err.actual_type) == (path, expected, actual)
    assert err.reason == "invalid-field"
    assert path in str(err)


def test_null_on_the_path_is_absent() -> None:
    e = Event({"edata": None})
    assert e.get_str("edata.action") == ""
    assert e.get_dict("edata") == {}


def test_event_requires_an_object() -> None:
    with pytest.raises(InvalidField):
        Event([1, 2])  # type: ignore[arg-type]


def test_repr_hides_the_payload_and_event_pickles() -> None:
    e = Event({"mid": "m1", "edata": {"userId": "secret-user"}})
    assert "secret-user" not in repr(e)
    assert pickle.loads(pickle.dumps(e)).raw == e.raw

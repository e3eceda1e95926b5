"""auto-creator-v2's pure logic: validation, children selection, hierarchy enrichment, metadata split,
variants (all three forms), store values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cokreat_jobs.core.errors import InvalidField
from cokreat_jobs.core.event import Event
from cokreat_jobs.jobs.auto_creator_v2.job import DEFINITION, object_key
from cokreat_jobs.jobs.auto_creator_v2.logic import (
    ImportRequest,
    check_event,
    enrich,
    enrich_hierarchy,
    external_values,
    graph_properties,
    merge_metadata,
    parse_variants,
    relativise,
    select_children,
    split_metadata,
)
from cokreat_jobs.jobs.auto_creator_v2.settings import Settings
from cokreat_jobs.sunbird.definitions import Definition

S = Settings()


def ev(**edata: Any) -> Event:
    base: dict[str, Any] = {
        "action": "auto-create",
        "objectType": "QuestionSet",
        "repository": "http://src/api/questionset/v1/read/do_1",
        "metadata": {"identifier": "do_1", "downloadUrl": "http://src/do_1.ecar"},
    }
    base.update(edata)
    return Event({"edata": base, "context": {"channel": "ch"}})


def test_valid_event_passes() -> None:
    assert check_event(ev(), S) is None
    assert check_event(ev(objectType="Question"), S) is None


@pytest.mark.parametrize(
    ("edata", "reason"),
    [
        ({"action": "publish"}, "invalid-action"),
        ({"metadata": {"identifier": " ", "downloadUrl": "http://x/a.ecar"}}, "missing-identifier"),
        ({"objectType": "Content"}, "invalid-object-type"),
        ({"repository": None}, "missing-repository"),
        ({"metadata": {"identifier": "do_1", "downloadUrl": "http://src/do_1.zip"}}, "not-an-ecar"),
        ({"metadata": {"identifier": "do_1"}}, "not-an-ecar"),
    ],
)
def test_invalid_events_are_skipped(edata: dict[str, Any], reason: str) -> None:
    skip = check_event(ev(**edata), S)
    assert skip is not None and skip.reason == reason


def test_missing_repository_key_is_skipped() -> None:
    e = ev()
    del e.raw["edata"]["repository"]
    assert check_event(e, S).reason == "missing-repository"  # type: ignore[union-attr]


def test_wrong_types_raise_invalid_field() -> None:
    with pytest.raises(InvalidField):
        check_event(ev(repository={"a": 1}), S)
    with pytest.raises(InvalidField):
        check_event(ev(metadata={"identifier": 5, "downloadUrl": "x.ecar"}), S)
    with pytest.raises(InvalidField):
        ImportRequest.from_event(ev(collection="do_c"))


def test_request_and_key() -> None:
    e = ev(
        collection=[{"identifier": "c1", "unitId": "u1"}],
        metadata={"identifier": "do_1", "downloadUrl": "http://src/do_1.ecar", "processId": "p1"},
    )
    req = ImportRequest.from_event(e)
    assert req.collections[0].unit_id == "u1" and req.process_id == "p1"
    assert object_key(e.raw) == "do_1" and object_key({"edata": "x"}) == ""
    assert DEFINITION.name == "auto-creator-v2"


# ------------------------------------------------------------------------------------------------ children


def q(i: str, **kw: Any) -> dict[str, Any]:
    return {"identifier": i, "objectType": "Question", "visibility": "Parent", **kw}


TREE = {
    "identifier": "do_qs",
    "children": [
        q("q1"),
        {
            "identifier": "sec",
            "objectType": "QuestionSet",
            "visibility": "Parent",
            "children": [
                q("q2"),
                {
                    "identifier": "sub",
                    "objectType": "QuestionSet",
                    "visibility": "Parent",
                    "children": [q("q3")],
                },
            ],
        },
        {"identifier": "other", "objectType": "QuestionSet", "visibility": "Default", "children": [q("q4")]},
        {"identifier": "c1", "objectType": "Content"},
        q("q1"),
    ],
}


def test_children_descend_into_parent_sets_only() -> None:
    assert [n["identifier"] for n in select_children(TREE, S)] == ["q1", "q2", "q3"]


def test_children_limited_to_accepted_contributions() -> None:
    assert [n["identifier"] for n in select_children(TREE, S, ["Q3", "q1", "q4"])] == ["q1", "q3"]
    assert [n["identifier"] for n in select_children(TREE, S, [])] == ["q1", "q2", "q3"]


def test_children_only_graph_enabled_types() -> None:
    s = Settings(graph_enabled_objecttypes=())
    assert select_children(TREE, s) == []


def test_hierarchy_enrichment() -> None:
    new = enrich_hierarchy(
        TREE,
        {"downloadUrl": "new-root", "variants": {}},
        {"q3": {"downloadUrl": "new-q3", "objectType": "Question"}, "q1": {"downloadUrl": "new-q1"}},
    )
    assert new["downloadUrl"] == "new-root" and new["variants"] == {}
    assert new["children"][0]["downloadUrl"] == "new-q1" and new["children"][4]["downloadUrl"] == "new-q1"
    assert new["children"][1]["children"][1]["children"][0]["downloadUrl"] == "new-q3"
    assert "downloadUrl" not in new["children"][1]["children"][0]
    assert "downloadUrl" not in TREE  # a copy


# ------------------------------------------------------------------------------------------------ metadata

DEF = Definition(
    "QuestionSet",
    "1.0",
    {
        "properties": {
            "name": {"type": "string"},
            "timeLimits": {"type": "object"},
            "language": {"type": "array"},
            "variants": {"type": "object"},
        }
    },
    {
        "relations": {"children": {}, "collection": {}},
        "external": {
            "tableName": "questionset_hierarchy",
            "properties": {
                "hierarchy": {"type": "string"},
                "instructions": {"type": "string"},
                "outcomeDeclaration": {"type": "string"},
            },
            "primaryKey": ["identifier"],
        },
    },
)


def test_merge_later_wins_and_origin() -> None:
    m = merge_metadata({"name": "a", "x": 1}, {"name": "b"}, "do_1", "http://r")
    assert m["name"] == "b" and m["x"] == 1 and m["origin"] == "do_1"
    assert json.loads(m["originData"]) == {"identifier": "do_1", "repository": "http://r"}


def test_split_metadata() -> None:
    meta = {
        "name": "n",
        "children": [1],
        "collection": [],
        "instructions": {"a": 1},
        "outcomeDeclaration": "o",
    }
    split = split_metadata(meta, DEF, {"children": []})
    assert split.graph == {"name": "n"}
    assert split.external == {
        "instructions": {"a": 1},
        "outcomeDeclaration": "o",
        "hierarchy": {"children": []},
    }
    assert "hierarchy" not in split_metadata(meta, DEF).external


def test_enrich_and_graph_properties() -> None:
    g = enrich({"name": "n", "identifier": "do_1", "objectType": "QuestionSet"}, "do_1", "QuestionSet", "p1")
    assert g["IL_UNIQUE_ID"] == "do_1" and g["IL_SYS_NODE_TYPE"] == "DATA_NODE" and g["processId"] == "p1"
    assert "processId" not in enrich({}, "do_1", "QuestionSet", None)
    props = graph_properties(
        {
            **g,
            "timeLimits": {"max": 1},
            "language": ["en", "en", "hi"],
            "meta": {"a": 1},
            "refs": [{"a": 1}, {"a": 1}],
            "none": None,
            "variants": '{"full": 1}',
        },
        DEF,
    )
    assert "identifier" not in props and "objectType" not in props
    # a null stays null (the reference's n.none=null): the graph store removes a stale value with it
    assert "none" in props and props["none"] is None
    assert props["timeLimits"] == '{"max":1}' and props["language"] == ["en", "hi"]
    assert props["meta"] == '{"a":1}' and props["refs"] == '[{"a":1}]' and props["variants"] == '{"full": 1}'


def test_external_values_lowercased_text() -> None:
    vals = external_values({"editorState": {"a": 1}, "body": "<p>x</p>", "n": 3, "gone": None})
    # a null stays null: the store clears the column (the reference overwrote it too)
    assert vals == {"editorstate": '{"a":1}', "body": "<p>x</p>", "n": "3", "gone": None}


def test_relativise() -> None:
    out = relativise(
        {"a": "https://blob/ctr/x.ecar", "b": ["https://blob/ctr/y"]}, ["https://blob"], "ctr", "P"
    )
    assert out == {"a": "P/x.ecar", "b": ["P/y"]}


# ------------------------------------------------------------------------------------------------ variants


@pytest.mark.parametrize(
    "value",
    [
        {"full": {"ecarUrl": "http://a/f.ecar", "size": 1}, "spine": {"ecarUrl": "http://a/s.ecar"}},
        {"full": "http://a/f.ecar", "spine": "http://a/s.ecar"},
        json.dumps({"full": {"ecarUrl": "http://a/f.ecar"}, "spine": "http://a/s.ecar"}),
    ],
)
def test_variants_all_three_forms(value: Any) -> None:
    assert parse_variants(value) == {"full": "http://a/f.ecar", "spine": "http://a/s.ecar"}


@pytest.mark.parametrize("value", [None, "", "not json", [], {"full": {"size": 1}}, {"full": ""}])
def test_variants_empty_forms(value: Any) -> None:
    assert parse_variants(value) == {}

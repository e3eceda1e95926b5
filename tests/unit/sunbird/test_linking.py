"""The one collection-linking loop (sunbird/linking.py) against an in-memory content API: each row of its
docstring, the report's keys, and errors passing through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cokreat_jobs.core.errors import PermanentError
from cokreat_jobs.sunbird.content_api import LinkResult
from cokreat_jobs.sunbird.linking import CollectionRef, LinkReport, link_into_collections


class FakeApi:
    """Collections as {id: [child node ids]}; ``add_answers`` scripts hierarchy/add per (collection, unit)."""

    def __init__(self, collections: dict[str, list[str]]) -> None:
        self.collections = collections
        self.add_answers: dict[tuple[str, str], Any] = {}
        self.reads: list[str] = []
        self.adds: list[tuple[str, str, list[str]]] = []

    async def hierarchy_child_nodes(self, collection_id: str) -> list[str] | None:
        self.reads.append(collection_id)
        nodes = self.collections.get(collection_id)
        return None if nodes is None else list(nodes)

    async def hierarchy_add(self, collection_id: str, unit_id: str, children: list[str]) -> str:
        self.adds.append((collection_id, unit_id, list(children)))
        answer = self.add_answers.get((collection_id, unit_id), LinkResult.ADDED)
        if isinstance(answer, BaseException):
            raise answer
        return str(answer)


def link(api: FakeApi, refs: list[tuple[str, str]], child: str = "do_x") -> LinkReport:
    return asyncio.run(link_into_collections(api, child, [CollectionRef(c, u) for c, u in refs]))  # type: ignore[arg-type]


def detail_of(report: LinkReport) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    report.into(detail)
    return detail


def test_links_each_unit_in_its_collection() -> None:
    api = FakeApi({"do_c": ["do_u1", "do_u2", "do_leaf"]})
    report = link(api, [("do_c", "do_u1"), ("do_c", "do_u2")])
    assert report.linked == ["do_c/do_u1", "do_c/do_u2"]
    assert api.adds == [("do_c", "do_u1", ["do_x"]), ("do_c", "do_u2", ["do_x"])]
    assert detail_of(report) == {"linked": ["do_c/do_u1", "do_c/do_u2"]}


def test_one_hierarchy_read_per_collection() -> None:
    api = FakeApi({"do_a": ["do_u"], "do_b": ["do_u"]})
    link(api, [("do_a", "do_u"), ("do_b", "do_u"), ("do_a", "do_v"), ("do_a", "do_u")])
    assert api.reads == ["do_a", "do_b"]


def test_unit_not_in_child_nodes_is_missing_and_not_added() -> None:
    api = FakeApi({"do_c": ["do_u1"]})
    report = link(api, [("do_c", "do_gone"), ("do_c", "do_u1")])
    assert report.unit_missing == ["do_c/do_gone"]
    assert report.linked == ["do_c/do_u1"]
    assert report.collection_missing == []
    assert api.adds == [("do_c", "do_u1", ["do_x"])]
    assert detail_of(report) == {"linked": ["do_c/do_u1"], "unit_missing": ["do_c/do_gone"]}


def test_missing_collection_is_named_and_its_units_are_missing() -> None:
    api = FakeApi({"do_c": ["do_u"]})
    report = link(api, [("do_z", "do_u2"), ("do_nocoll", "do_u"), ("do_c", "do_u"), ("do_nocoll", "do_v")])
    assert report.unit_missing == ["do_z/do_u2", "do_nocoll/do_u", "do_nocoll/do_v"]
    assert report.collection_missing == ["do_z", "do_nocoll"]  # each once, in the order met
    assert report.linked == ["do_c/do_u"]
    assert api.adds == [("do_c", "do_u", ["do_x"])]
    assert api.reads == ["do_z", "do_nocoll", "do_c"]
    assert detail_of(report) == {
        "linked": ["do_c/do_u"],
        "unit_missing": ["do_z/do_u2", "do_nocoll/do_u", "do_nocoll/do_v"],
        "collection_missing": ["do_nocoll", "do_z"],  # sorted in the detail
    }


def test_unit_or_collection_gone_between_read_and_add() -> None:
    api = FakeApi({"do_c": ["do_u1", "do_u2"], "do_d": ["do_u"]})
    api.add_answers[("do_c", "do_u1")] = LinkResult.UNIT_MISSING
    api.add_answers[("do_d", "do_u")] = LinkResult.COLLECTION_MISSING
    report = link(api, [("do_c", "do_u1"), ("do_c", "do_u2"), ("do_d", "do_u")])
    assert report.linked == ["do_c/do_u2"]
    assert report.unit_missing == ["do_c/do_u1", "do_d/do_u"]
    assert report.collection_missing == ["do_d"]


def test_entries_without_collection_or_unit_are_counted_invalid() -> None:
    api = FakeApi({"do_c": ["do_u"]})
    report = link(api, [("do_c", ""), ("", "do_u"), ("", ""), ("do_c", "do_u")])
    assert report.invalid == 3
    assert report.linked == ["do_c/do_u"]
    assert api.reads == ["do_c"]
    assert detail_of(report) == {"linked": ["do_c/do_u"], "invalid_collection_entries": 3}


def test_no_entries_links_nothing_and_reports_an_empty_list() -> None:
    api = FakeApi({})
    report = link(api, [])
    assert api.reads == [] and api.adds == []
    assert detail_of(report) == {"linked": []}


def test_a_refused_add_raises() -> None:
    api = FakeApi({"do_c": ["do_u"]})
    api.add_answers[("do_c", "do_u")] = PermanentError("ERR_INVALID_CHILDREN")
    with pytest.raises(PermanentError, match="ERR_INVALID_CHILDREN"):
        link(api, [("do_c", "do_u")])


def test_into_keeps_other_detail_keys() -> None:
    detail: dict[str, Any] = {"children": 2}
    LinkReport(linked=["do_c/do_u"]).into(detail)
    assert detail == {"children": 2, "linked": ["do_c/do_u"]}

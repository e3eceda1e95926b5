"""content-auto-creator's stage table: the search match, the found stage, the steps to run, linking."""

from __future__ import annotations

import orjson
import pytest

from cokreat_jobs.jobs.content_auto_creator.stages import (
    STEP_ORDER,
    ContentStage,
    FoundContent,
    find_origin_match,
    parse_origin_data,
    parse_pkg_version,
    should_link,
    stage_of,
    steps_to_run,
)

C, U, UP, R, P, NA = (
    ContentStage.CREATE,
    ContentStage.UPDATE,
    ContentStage.UPLOAD,
    ContentStage.REVIEW,
    ContentStage.PUBLISH,
    ContentStage.NA,
)


def result(
    identifier: str, origin: str, repository: str = "https://src.test/x", **kw: object
) -> dict[str, object]:
    item: dict[str, object] = {
        "identifier": identifier,
        "originData": orjson.dumps({"identifier": origin, "repository": repository}).decode(),
    }
    item.update(kw)
    return item


# ----------------------------------------------------------------------------------------- search match


def test_first_result_from_this_origin_wins() -> None:
    results = [
        result("do_other", "do_src_2"),
        result("do_a", "DO_SRC", status="Draft", artifactUrl="https://cdn/a.pdf", pkgVersion=2),
        result("do_b", "do_src", status="Live"),
    ]
    found = find_origin_match(results, "do_src")
    assert found == FoundContent(
        "do_a",
        "Draft",
        "https://cdn/a.pdf",
        2.0,
        {"identifier": "DO_SRC", "repository": "https://src.test/x"},
    )


def test_results_without_repository_or_origin_data_do_not_match() -> None:
    results = [
        result("do_a", "do_src", repository=""),
        {"identifier": "do_b"},
        {"identifier": "do_c", "originData": "not json"},
        {"identifier": "do_d", "originData": "[1, 2]"},
        "not an object",
    ]
    assert find_origin_match(results, "do_src") is None  # type: ignore[arg-type]


def test_origin_data_as_object_is_accepted() -> None:
    found = find_origin_match(
        [{"identifier": "do_a", "originData": {"identifier": "do_src", "repository": "r"}}], "do_src"
    )
    assert found is not None and found.identifier == "do_a"


def test_no_results_means_none() -> None:
    assert find_origin_match([], "do_src") is None


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 0.0), (2, 2.0), (2.5, 2.5), ("3", 3.0), ("x", 0.0), (True, 0.0), ([], 0.0)]
)
def test_pkg_version_parsing(value: object, expected: float) -> None:
    assert parse_pkg_version(value) == expected


def test_origin_data_parsing() -> None:
    assert parse_origin_data('{"identifier": "x"}') == {"identifier": "x"}
    assert parse_origin_data({"identifier": "x"}) == {"identifier": "x"}
    assert parse_origin_data("") == {}
    assert parse_origin_data(None) == {}
    assert parse_origin_data("{") == {}


# ---------------------------------------------------------------------------------------- found stage


@pytest.mark.parametrize(
    ("status", "artifact", "found_pkg", "event_pkg", "expected"),
    [
        ("Draft", "https://cdn/a.pdf", 0, 0, R),
        ("Draft", "", 0, 0, U),
        ("Review", "https://cdn/a.pdf", 0, 0, R),
        ("Failed", "https://cdn/a.pdf", 1, 5, R),
        ("Failed", "", 1, 5, U),
        ("Live", "https://cdn/a.pdf", 1, 1, NA),
        ("Live", "https://cdn/a.pdf", 1, 2, U),
        ("Live", "https://cdn/a.pdf", 3, 2, NA),
        ("Unlisted", "", 1, 2, U),
        ("Unlisted", "", 1, 1, NA),
        ("Processing", "https://cdn/a.pdf", 1, 1, NA),
        ("Processing", "https://cdn/a.pdf", 1, 2, U),
    ],
)
def test_stage_table(
    status: str, artifact: str, found_pkg: float, event_pkg: float, expected: ContentStage
) -> None:
    found = FoundContent("do_a", status, artifact, float(found_pkg))
    assert stage_of(found, float(event_pkg)) is expected


def test_nothing_found_means_create() -> None:
    assert stage_of(None, 5.0) is C


def test_the_source_artifact_url_is_not_an_upload() -> None:
    # update writes the source artifactUrl; only an upload replaces it with our storage's URL
    found = FoundContent("do_a", "Failed", "https://src.test/a.pdf")
    assert stage_of(found, 0, source_artifact_url="https://src.test/a.pdf") is U
    assert stage_of(found, 0, source_artifact_url="https://src.test/other.pdf") is R


# ---------------------------------------------------------------------------------------- steps to run


@pytest.mark.parametrize(
    ("found", "requested", "expected"),
    [
        (C, "", [C, U, UP, R, P]),
        (C, "publish", [C, U, UP, R, P]),
        (C, "create", [C, U]),
        (C, " Create ", [C, U]),
        (C, "upload", [C, U, UP]),
        (C, "UPLOAD", [C, U, UP]),
        (C, "review", [C, U, UP, R]),
        (U, "", [U, UP, R, P]),
        (U, "create", [U]),
        (U, "upload", [U, UP]),
        (U, "review", [U, UP, R]),
        (R, "", [R, P]),
        (R, "review", [R]),
        (R, "upload", [R, P]),  # already behind the found stage: ignored
        (R, "create", [R, P]),
        (R, "publish", [R, P]),
        (UP, "create", [UP, R, P]),
        (P, "review", [P]),
        (NA, "", []),
        (NA, "publish", []),
        (C, "unknown", [C, U, UP, R, P]),
    ],
)
def test_steps_to_run(found: ContentStage, requested: str, expected: list[ContentStage]) -> None:
    assert steps_to_run(found, requested) == expected


def test_step_order() -> None:
    assert [str(s) for s in STEP_ORDER] == ["create", "update", "upload", "review", "publish"]


# ---------------------------------------------------------------------------------------------- linking


@pytest.mark.parametrize(
    ("steps", "found", "expected"),
    [
        ([C, U, UP, R, P], C, True),
        ([C, U, UP], C, True),
        ([C, U], C, False),  # edata.stage = create: no upload, no link
        ([U], U, False),
        ([R, P], R, True),
        ([R], R, True),
        ([P], P, True),
        ([], NA, True),
    ],
)
def test_should_link(steps: list[ContentStage], found: ContentStage, expected: bool) -> None:
    assert should_link([{"identifier": "do_c", "unitId": "do_u"}], steps, found) is expected


def test_no_collection_no_link() -> None:
    assert should_link([], [C, U, UP, R, P], C) is False

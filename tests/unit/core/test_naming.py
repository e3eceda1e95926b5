"""Identifiers (HARDENING 6 and 12): what is a Sunbird identifier, and keys that cannot collide.

Storage keys used ``slug(id)``, which folds case and drops characters: ``DO_113``, ``do_113!`` and
``do_113%00`` all wrote to ``content/do_113/artifact/...``. Now an identifier is a path segment as it is, and
anything that is not one is refused, so two different identifiers never share a key.
"""

from __future__ import annotations

import random
import string

import pytest

from cokreat_jobs.core.errors import PermanentError
from cokreat_jobs.core.naming import (
    FILE_NAME_MAX,
    IDENTIFIER_MAX_LENGTH,
    file_name_from_url,
    identifier_problem,
    identifier_segment,
    is_dot_segment,
)

VALID = ["do_113", "DO_113", "do_1130000000000000000001", "do_113.img", "q1", "a", "do-1", "x.y_z-0", "9"]
INVALID = {
    "": "empty",
    ".": "dot segment",
    "..": "dot segment",
    "...": "starts with",
    ".hidden": "starts with",
    "_x": "starts with",
    "-x": "starts with",
    "do_113!": "'!'",
    "do_113%00": "'%'",
    "do_113%2e%2e": "'%'",
    "do 113": "' '",
    " do_113": "' '",
    "do_113/..": "'/'",
    "a/b": "'/'",
    "a\\b": "'\\\\'",
    "do_113?x=1": "'?'",
    "do_113#x": "'#'",
    "do_113\x00": "'\\x00'",
    "do_113\n": "'\\n'",
    "dó_113": "'ó'",
    "do_１１３": "'１'",
    "x" * (IDENTIFIER_MAX_LENGTH + 1): f"longer than {IDENTIFIER_MAX_LENGTH}",
}


@pytest.mark.parametrize("value", VALID)
def test_sunbird_identifiers_are_valid_and_their_own_segment(value: str) -> None:
    assert identifier_problem(value) is None
    assert identifier_segment(value) == value


@pytest.mark.parametrize(("value", "why"), INVALID.items(), ids=[repr(v)[:30] for v in INVALID])
def test_anything_else_is_refused_with_the_reason(value: str, why: str) -> None:
    problem = identifier_problem(value)
    assert problem is not None and why in problem, problem
    with pytest.raises(PermanentError, match="is not a valid Sunbird identifier") as e:
        identifier_segment(value, "content id")
    assert why in str(e.value) and "content id" in str(e.value)


def test_the_three_ids_of_the_report_no_longer_share_a_key() -> None:
    assert identifier_segment("DO_113") == "DO_113"
    assert identifier_segment("do_113") == "do_113"
    for value in ("do_113!", "do_113%00"):
        with pytest.raises(PermanentError):
            identifier_segment(value)


def test_different_identifiers_never_share_a_segment() -> None:
    """Every accepted id is its own segment (an injective mapping), over random hostile strings."""
    rng = random.Random(6)
    alphabet = string.ascii_letters + string.digits + "_.-!%/\\ ?#:@+~\x00é"
    seen: dict[str, str] = {}
    accepted = 0
    for _ in range(50_000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        if identifier_problem(value) is not None:
            continue
        accepted += 1
        key = identifier_segment(value)
        assert seen.setdefault(key, value) == value, (key, value, seen[key])
        assert key not in (".", "..") and "/" not in key and "%" not in key
    assert accepted > 1000


@pytest.mark.parametrize(
    ("value", "dots"),
    [(".", True), ("..", True), ("...", True), (". .", False), ("", False), ("a..", False), (" ..", False)],
)
def test_dot_segments(value: str, dots: bool) -> None:
    assert is_dot_segment(value) is dots


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://blob/ctr/questionset/do_1/do_1_Set_170_SPINE.ecar", "do_1_Set_170_SPINE.ecar"),
        ("https://blob/a/Icon.PNG?sig=secret#x", "Icon.PNG"),  # query and fragment are no part of it
        ("https://blob/a/a--b.PDF", "a--b.PDF"),  # a safe name is kept exactly (the slug: a-b.pdf)
        ("https://blob/a/My%20File.PDF", "My-File.PDF"),  # else the slug rules, case kept
        ("https://blob/a/%C3%A9t%C3%A9.png", "ete.png"),
        ("https://blob/a/.hidden", "hidden"),
        ("https://blob/a/%2e%2e", "file"),  # never a dot segment
        ("https://blob/a/..", "file"),
        ("https://blob/a/x%2Fy.png", "xy.png"),  # never a second segment
        ("https://blob/", "file"),
    ],
)
def test_file_names_from_urls_keep_their_case_when_asked(url: str, name: str) -> None:
    assert file_name_from_url(url, keep_case=True) == name
    # content-auto-creator's names, unchanged: the lower-cased slug
    assert file_name_from_url(url) == name.lower().replace("--", "-")


def test_file_names_that_keep_their_case_are_still_at_most_file_name_max() -> None:
    long = "A" * 300 + ".ecar"
    name = file_name_from_url(f"https://blob/a/{long}", keep_case=True)
    assert len(name) == FILE_NAME_MAX and name.endswith("A.ecar")
    exactly = "B" * (FILE_NAME_MAX - 5) + ".ecar"
    assert file_name_from_url(f"https://blob/a/{exactly}", keep_case=True) == exactly

"""describe_exception: the one way an exception is named in reasons and messages."""

from __future__ import annotations

from cokreat_jobs.core.errors import PermanentError, describe_exception


def test_type_and_message() -> None:
    assert describe_exception(ConnectionResetError("reset")) == "ConnectionResetError: reset"
    assert describe_exception(PermanentError("HTTP 404")) == "PermanentError: HTTP 404"


def test_only_the_type_when_there_is_no_message() -> None:
    assert describe_exception(TimeoutError()) == "TimeoutError"
    assert describe_exception(PermanentError()) == "PermanentError"

"""The one error tree that the retry and failed-event routing code reads.

Every error a job's logic raises on purpose is a :class:`JobError`; its ``reason`` is the short code
written to ``failInfo.reason`` on the failed topic (INTERFACE.md: ``malformed | permanent |
retries-exhausted | invalid-field``), so routing never has to guess from exception types or messages.

    JobError
    ├── TransientError   reason "retries-exhausted": a transient failure outlived its retries
    ├── PermanentError   reason "permanent": retrying cannot help (4xx, refusal, bad package)
    ├── MalformedEvent   reason "malformed": the input record is not a usable JSON object
    ├── InvalidField     reason "invalid-field": a field of the event has the wrong type
    └── ConfigError      reason "config": the job cannot start with this configuration

All of them pickle (PyFlink moves exceptions between processes), which is why each one defines
``__reduce__`` instead of relying on ``Exception.args`` matching the constructor.

:func:`describe_exception` is how any exception (ours or a library's) is named in a reason or a message.

An error may carry a ``public`` text beside its message: what people outside operations are shown (a
content's ``importError``, which uploaders read) when the message holds internal detail, e.g. the address an
internal name resolves to. :func:`public_text` picks it; logs and the failed topic keep the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cokreat_jobs.core.response import HttpResponse

__all__ = [
    "exception_message",
    "ConfigError",
    "public_text",
    "InvalidField",
    "JobError",
    "MalformedEvent",
    "PermanentError",
    "TransientError",
    "describe_exception",
]


class JobError(Exception):
    """Base of every error a job raises on purpose; ``reason`` is the failed topic's short code."""

    reason: str = "error"
    public: str | None = None

    def __init__(self, message: str = "", *, reason: str | None = None, public: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if public is not None:
            self.public = public

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[JobError], state: dict[str, Any]) -> JobError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class TransientError(JobError):
    """A call kept failing transiently (connection error, timeout, 429/5xx) until its retries ran out."""

    reason = "retries-exhausted"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        attempts: int = 0,
        response: HttpResponse | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.status = status
        self.attempts = attempts
        # The last transient answer, when there was one, so a job can quote its errmsg.
        self.response = response


class PermanentError(JobError):
    """Retrying cannot help: the service refused the request for a reason that will not change."""

    reason = "permanent"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        reason: str | None = None,
        public: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, public=public)
        self.status = status


class MalformedEvent(JobError):
    """The input record is not a JSON object the job can read (oversized, not UTF-8, not JSON, too deep)."""

    reason = "malformed"


class InvalidField(JobError):
    """A field of the event has the wrong type, e.g. ``"iteration": "1"`` where a number belongs."""

    reason = "invalid-field"

    def __init__(self, path: str, expected: str, actual_type: str) -> None:
        super().__init__(f"field '{path}' must be {expected}, got {actual_type}")
        self.path = path
        self.expected = expected
        self.actual_type = actual_type


class ConfigError(JobError):
    """The configuration is missing a key or holds a value of the wrong type; raised before any event.

    ``key``, when given, is the config key at fault, so a start-up check can name it without reading the
    message."""

    reason = "config"

    def __init__(
        self,
        message: str = "",
        *,
        key: str | None = None,
        reason: str | None = None,
        public: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, public=public)
        self.key = key


def describe_exception(exc: BaseException) -> str:
    """``"<type>: <message>"``, or only the type's name when the exception has no message.

    Many library errors say nothing on their own (``TimeoutError()``, ``ServerDisconnectedError()``): the
    type is what tells a timeout from a refused connection in a retry's reason or a failed event.
    """
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def exception_message(exc: BaseException) -> str:
    """The exception's message, or its type's name when it has none (``TimeoutError()``)."""
    return str(exc) or type(exc).__name__


def public_text(error: BaseException) -> str:
    """The text of ``error`` fit for people outside operations: its ``public`` text when it has one, else its
    message (its type's name when the message is empty). Not redacted: callers redact what they write."""
    public = getattr(error, "public", None)
    if isinstance(public, str) and public:
        return public
    return exception_message(error)

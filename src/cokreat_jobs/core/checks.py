"""Checks of a resolved configuration that need no network: what a job can tell is wrong before an event.

A check returns :class:`Problem` values (never raises for what it checks). Two uses:

- at start (``flink/runner.py``): the job's ``startup`` checks; any error stops the job with all of them
  listed (:func:`raise_for_problems`), instead of the first event failing on a malformed URL;
- ``cokreat-jobs config check``: the same, the job's ``advisory`` checks (allow-list entries that match
  nothing, keys that contradict each other) and, in ``ops/``, a TCP connect to each :class:`Endpoint`.

Each job names its checks in ``jobs/<job>/checks.py`` (a :class:`ConfigChecks` on its definition); the
generic ones live here (URLs, Kafka, allow-lists) and in ``adapters/config_checks.py`` (storage, stores).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.core.sources import SourceRule

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "ConfigChecks",
    "Endpoint",
    "Problem",
    "check_allow_list",
    "check_base_url",
    "check_kafka",
    "errors",
    "kafka_endpoints",
    "raise_for_problems",
    "url_endpoint",
]

Level = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with one key: ``error`` stops a job at start, ``warning`` only ``config check`` shows."""

    key: str
    message: str
    level: Level = "error"

    def __str__(self) -> str:
        return f"{self.level}: {self.key}: {self.message}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A host and port the job connects to, and the key that names it (``config check`` probes it)."""

    key: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _none(cfg: JobConfig) -> list[Problem]:
    return []


def _no_endpoints(cfg: JobConfig) -> list[Endpoint]:
    return []


@dataclass(frozen=True)
class ConfigChecks:
    """A job's checks: ``startup`` (run when the job starts), ``advisory`` (``config check`` only), and the
    endpoints ``config check`` tries to reach."""

    startup: Callable[[JobConfig], list[Problem]] = field(default=_none)
    advisory: Callable[[JobConfig], list[Problem]] = field(default=_none)
    endpoints: Callable[[JobConfig], list[Endpoint]] = field(default=_no_endpoints)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == "error"]


def raise_for_problems(job: str, problems: Iterable[Problem]) -> None:
    """Raise one :class:`ConfigError` listing every error (one per line); warnings do not stop a job."""
    found = errors(problems)
    if not found:
        return
    lines = "\n".join(f"  {p}" for p in found)
    raise ConfigError(f"the configuration of {job} cannot start the job ({len(found)} problem(s)):\n{lines}")


# ------------------------------------------------------------------------------------------------- URLs

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _http_url_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be an http(s) URL, got {type(value).__name__}"
    text = value.strip()
    if not text:
        return "is empty; it must be an http(s) URL such as https://host/path"
    if text != value or any(c.isspace() for c in text):
        return f"{value!r} holds blanks"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as e:
        return f"{text!r} is not a URL: {e}"
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        return f"{text!r} must start with http:// or https://"
    if not parts.hostname:
        return f"{text!r} names no host"
    return None


def check_base_url(cfg: JobConfig, key: str, *, required: bool = True) -> list[Problem]:
    """``key`` holds an http(s) URL with a host (absent: an error when ``required``)."""
    if not cfg.has(key):
        return [Problem(key, "is missing; it must be an http(s) URL")] if required else []
    problem = _http_url_problem(cfg.get(key))
    return [Problem(key, problem)] if problem else []


def url_endpoint(key: str, url: str) -> Endpoint | None:
    """The host and port an http(s) URL connects to (None when it is not one)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or not scheme:
        return None
    default = _DEFAULT_PORTS.get(scheme)
    if port is None and default is None:
        return None
    return Endpoint(key, parts.hostname, port or default or 0)


# ------------------------------------------------------------------------------------------------ Kafka

BROKERS_KEY = "kafka.broker-servers"


def _brokers(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return []


def _broker_address(entry: str) -> tuple[str, int] | None:
    text = entry.split("://", 1)[1] if "://" in entry else entry  # PLAINTEXT://host:9092
    try:
        parts = urlsplit("//" + text)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or port is None or parts.path:
        return None
    return parts.hostname, port


def check_kafka(cfg: JobConfig) -> list[Problem]:
    """``kafka.broker-servers`` names at least one ``host:port``, each well-formed."""
    if not cfg.has(BROKERS_KEY):
        return [Problem(BROKERS_KEY, "is missing; it must name the brokers as host:port[,host:port...]")]
    entries = _brokers(cfg.get(BROKERS_KEY))
    if not entries:
        return [Problem(BROKERS_KEY, "names no broker; it must be host:port[,host:port...]")]
    return [
        Problem(BROKERS_KEY, f"{entry!r} is not host:port")
        for entry in entries
        if _broker_address(entry) is None
    ]


def kafka_endpoints(cfg: JobConfig) -> list[Endpoint]:
    result = []
    for entry in _brokers(cfg.get(BROKERS_KEY, "")):
        address = _broker_address(entry)
        if address is not None:
            result.append(Endpoint(BROKERS_KEY, *address))
    return result


# ------------------------------------------------------------------------------------------ allow-lists

# The last label of a host entry: a generic top-level domain an artifact could be served from, or any
# two-letter one (country codes). Anything else (``docs.google``, ``drive.google``) reads as the
# reference's substring fragment of a longer host, which the host rule never matches.
_KNOWN_TLDS = frozenset(
    """com net org edu gov mil int info biz name pro io ai app dev cloud online site tech xyz store blog page
    world global asia mobi tel travel jobs museum aero coop cat arpa local internal lan test example invalid
    localhost""".split()
)
_HOST_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_RULE_TEXT = "entries are hosts (drive.google.com) or URL prefixes (https://host/path), see core/sources.py"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _dead_entry(entry: str) -> str | None:
    """Why ``entry`` can match no URL under the host-or-URL-prefix rule, or None."""
    rule = SourceRule.parse(entry)
    if rule is None:
        return f"{entry!r} matches no URL ({_RULE_TEXT}); the reference matched it as a substring"
    host = rule.host
    if _is_ip(host.strip("[]")):
        return None
    if not _HOST_RE.fullmatch(host):
        return f"{entry!r}: {host!r} is no host name, so it matches no URL ({_RULE_TEXT})"
    last = host.rsplit(".", 1)[-1]
    if "." in host and not (last in _KNOWN_TLDS or re.fullmatch(r"[a-z]{2}", last)):
        return (
            f"{entry!r} matches only the host {host} and its subdomains, not {host}.<tld>: a fragment that "
            f"the reference matched as a substring ({_RULE_TEXT})"
        )
    return None


def check_allow_list(cfg: JobConfig, key: str) -> list[Problem]:
    """A warning for each entry of the allow-list at ``key`` that would match nothing (core/sources.py)."""
    if not cfg.has(key):
        return []
    try:
        entries = cfg.get_list(key)
    except ConfigError as e:
        return [Problem(key, str(e))]
    problems = []
    for entry in entries:
        reason = _dead_entry(str(entry))
        if reason:
            problems.append(Problem(key, reason, "warning"))
    return problems

"""Allow-lists of URL sources: which URLs an event may name, by host, port and path prefix.

Both content jobs use this rule: content-auto-creator's ``artifact_upload_allowed_source`` (where artifacts
may come from) and auto-creator-v2's ``auto_creator_v2.repository_allowed_sources`` (which repositories it
reads). The reference tested ``url.contains(entry)``, so ``example.org`` also let
``https://evil.test/?x=example.org`` through. Here an entry is matched against the *parsed* URL:

* ``example.org`` (a host, optionally ``:port``): the URL's host equals it or is a subdomain of it
  (``cdn.example.org``); with a port, the URL's port must be that one;
* ``example.org/files`` (a host and a path, no scheme): as above, and the URL's path starts with the path;
* ``https://example.org/files`` (a scheme): a prefix from the URL's start: same scheme, the same host
  exactly, the same port (default ports filled in), and the path starting with the entry's path.

A prefix ends at a boundary: ``/files`` matches ``/files`` and ``/files/a.pdf`` but not ``/files2``
(unless the entry itself ends in ``/``, ``?``, ``=``, ``&`` or ``#``). Only http(s) URLs are ever allowed.

This is a rule about names, not addresses: the network guard (``adapters/download.py``) still checks every
address a URL's host resolves to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["AllowedSources", "SourceRule", "source_allowed"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PREFIX_ENDS = ("/", "?", "=", "&", "#")


@dataclass(frozen=True, slots=True)
class SourceRule:
    """One parsed allow-list entry."""

    entry: str
    host: str
    scheme: str | None = None  # set for prefix entries ("https://host/path")
    port: int | None = None
    path: str = ""
    subdomains: bool = True  # a host entry also covers its subdomains; a prefix entry does not

    @classmethod
    def parse(cls, entry: str) -> SourceRule | None:
        text = entry.strip()
        if not text:
            return None
        if "://" in text:
            parts = urlsplit(text)
            scheme = parts.scheme.lower()
            host = (parts.hostname or "").lower().rstrip(".")
            if scheme not in _DEFAULT_PORTS or not host:
                return None
            try:
                port = parts.port or _DEFAULT_PORTS[scheme]
            except ValueError:
                return None
            path = parts.path
            if parts.query or text.endswith("?"):
                path += "?" + parts.query
            return cls(text, host, scheme, port, path, subdomains=False)
        # "host[:port][/path]": parse it as the authority of a URL so IPv6 brackets and ports read right.
        parts = urlsplit("//" + text)
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return None
        try:
            given_port = parts.port
        except ValueError:
            return None
        path = parts.path
        if parts.query or text.endswith("?"):
            path += "?" + parts.query
        return cls(text, host, None, given_port, path, subdomains=True)

    def matches(self, scheme: str, host: str, port: int, path_and_query: str) -> bool:
        if self.scheme is not None and scheme != self.scheme:
            return False
        if host != self.host and not (self.subdomains and host.endswith("." + self.host)):
            return False
        if self.port is not None and port != self.port:
            return False
        return _prefix_matches(path_and_query, self.path)


def _prefix_matches(value: str, prefix: str) -> bool:
    if not prefix or prefix == "/":
        return True
    if not value.startswith(prefix):
        return False
    if prefix.endswith(_PREFIX_ENDS) or len(value) == len(prefix):
        return True
    return value[len(prefix)] in "/?#"


@dataclass(frozen=True, slots=True)
class AllowedSources:
    """The parsed allow-list; empty means any http(s) source."""

    rules: tuple[SourceRule, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str] | str | None) -> AllowedSources:
        if entries is None:
            return cls()
        if isinstance(entries, str):
            entries = entries.split(",")
        rules = []
        for entry in entries:
            rule = SourceRule.parse(str(entry))
            if rule is not None:
                rules.append(rule)
        return cls(tuple(rules))

    @property
    def restricted(self) -> bool:
        return bool(self.rules)

    def allows(self, url: str) -> bool:
        parsed = _parse_http_url(url)
        if parsed is None:
            return False
        if not self.rules:
            return True
        return any(rule.matches(*parsed) for rule in self.rules)


def _parse_http_url(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path[?query]) of an http(s) URL, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or _DEFAULT_PORTS[scheme], path


def source_allowed(url: str, allowed: Iterable[str] | str | None) -> bool:
    """Is ``url`` from an allowed source (see the module docstring)? Empty ``allowed`` = any http(s) URL."""
    return AllowedSources.parse(allowed).allows(url)

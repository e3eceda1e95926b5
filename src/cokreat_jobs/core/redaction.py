"""The one redaction of every text that leaves a job (HARDENING 8).

Log lines (``logs.JsonFormatter``), failed-topic records (``failed.error_text``: ``failInfo.error``), the
``importError`` content-auto-creator writes to a content, and metric labels (the per-service gauge groups of
``adapters/protection``) all pass through :func:`redact` (or :func:`redact_data` for nested values), so a
secret form masked in one is masked in all.

Masked as ``***``:

- the value after a secret-looking key, ``key=value`` / ``key: value`` / ``"key": "value"`` (also quoted
  inside a JSON string): keys containing ``password``, ``passwd``, ``secret``, ``account_key`` /
  ``AccountKey`` (Azure connection strings), ``private_key``, ``access_token``, ``refresh_token``,
  ``id_token``, ``session_token``, ``security_token`` (``X-Amz-Security-Token``), ``sas_token``,
  ``api_key``, ``authorization``, ``signature`` (``X-Amz-Signature``, ``X-Goog-Signature``, Azure's
  ``SharedAccessSignature``), ``credential``, ``connection_string`` / ``conn_str`` (Azure's, which hold the
  account key), ``g_service_acct_cred``, and keys whose last part is ``sig`` (SAS URLs), ``pwd``, ``token`` or
  ``salt`` (``log.id_hash_salt``); prefixes such as ``db_``, ``neo4j_``, ``lms-cassandra.`` included;
- URL userinfo: ``https://user:password@host`` becomes ``https://***@host``;
- PEM private keys, and ``Bearer <token>`` or Azure's ``SharedKey <account>:<signature>`` anywhere.

Over-masking is preferred to a leak: ``secret: the value`` in prose loses ``the``. The original event inside
a failed record is not redacted (it must replay as it was); only the text the job adds is.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "SECRET_KEYS", "is_secret_key", "redact", "redact_data"]

MASK = "***"

# Keys holding a secret when any part of the key contains one of these (``_``/``-`` optional inside).
SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "account_key",
    "private_key",
    "access_token",
    "refresh_token",
    "id_token",
    "session_token",
    "security_token",
    "sas_token",
    "auth_token",
    "user_token",
    "api_key",
    "authorization",
    "signature",
    "credential",
    "connection_string",
    "conn_str",
    "g_service_acct_cred",
)
# Keys holding a secret only when they are the key's last part (``sig`` is inside "design").
_LAST_PART_KEYS: tuple[str, ...] = ("sig", "pwd", "token", "salt")


def _stem(word: str) -> str:
    return re.escape(word).replace("_", "[_-]?")


_CONTAINED = "|".join(_stem(k) for k in sorted(SECRET_KEYS, key=len, reverse=True))
_LAST = "|".join(_stem(k) for k in _LAST_PART_KEYS)
_KEY_NAME = rf"(?:[\w.-]*(?:{_CONTAINED})[\w.-]*|(?:[\w.-]*[_.-])?(?:{_LAST}))"
_KEY_NAME_RE = re.compile(rf"{_KEY_NAME}", re.IGNORECASE)

_SECRET_RE = re.compile(
    r"""
    (?P<key>
        (?:\\?["'])? (?<![\w.-]) """
    + _KEY_NAME
    + r""" (?![\w.-]) (?:\\?["'])?   # the key, maybe quoted, also as \" inside a JSON string
        \s* [:=] \s*
    )
    (?P<value>
        \\"(?:(?!\\").)*\\"           # \"...\" (a JSON string inside a JSON string)
      | "(?:[^"\\]|\\.)*"             # "..."
      | '[^']*'                      # '...'
      | (?:Bearer|Basic|Token|SharedKey(?:Lite)?)\s+[^\s,;"'&}]+   # an auth scheme and its credentials
      | [^\s,;"'&}]+                 # a bare word (stops at ; and &: connection strings, query strings)
    )
    """,
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)
_PEM_RE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL
)
_BEARER_RE = re.compile(r"\b(Bearer|SharedKey(?:Lite)?)\s+(?!\*\*\*)[A-Za-z0-9._~+/=:-]{8,}")
# scheme://userinfo@ : the userinfo ends at the first / ? # or blank, so a path's @ is no userinfo
_USERINFO_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/?#\s@\"'<>\\]+)@")
_TRIGGERS = (
    "pass",
    "pwd",
    "secret",
    "key",
    "token",
    "auth",
    "sig",
    "cred",
    "salt",
    "bearer",
    "conn",
    "://",
)


def _mask(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.startswith('\\"'):
        masked = '\\"***\\"'
    elif value[:1] in ('"', "'"):
        masked = value[0] + MASK + value[0]
    elif " " in value:  # "Bearer <token>": keep the scheme, it helps reading and is no secret
        masked = value.split(None, 1)[0] + " " + MASK
    else:
        masked = MASK
    return match.group("key") + masked


def _mask_userinfo(match: re.Match[str]) -> str:
    return match.group("scheme") + MASK + "@"


def redact(text: str) -> str:
    """``text`` with secrets masked as ``***`` (see the module docstring); other text unchanged."""
    lowered = text.lower()
    if not any(t in lowered for t in _TRIGGERS):
        return text
    text = _PEM_RE.sub(MASK, text)
    text = _USERINFO_RE.sub(_mask_userinfo, text)
    text = _SECRET_RE.sub(_mask, text)
    return _BEARER_RE.sub(r"\1 ***", text)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key (``"password"``, ``"AccountKey"``, ``"sig"``) names a secret."""
    return _KEY_NAME_RE.fullmatch(key) is not None


def redact_data(value: Any) -> Any:
    """``value`` with every string redacted, walking dicts, lists and tuples; a secret key's value masked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact_data(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value

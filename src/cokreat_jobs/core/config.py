"""Job configuration: HOCON files with the Sunbird Scala jobs' keys, plus environment and command-line
overrides.

Layers, each overriding the one before (objects merge key by key, any other value replaces):

1. the packaged ``<job>.conf`` (which includes ``base.conf``), shipped in ``cokreat_jobs/conf/``;
2. ``config_file`` when given: a HOCON file that may ``include`` files beside it, e.g. a Scala job's own
   ``.conf`` (an include whose file is missing is an error, not skipped). It is layered over the packaged
   defaults, so it only needs to name what it changes and our own keys (``http.*``, ``task.async.capacity``,
   ...) keep their defaults;
3. environment variables named ``COKREAT__<KEY>`` (see below);
4. ``overrides``: ``KEY=VALUE`` strings (the CLI's ``--set``).

Substitutions (``${job.env}``) are resolved after all layers, so ``--set job.env=prod`` renames every topic
and group that derives from it.

Environment rule. Only variables whose name starts with ``COKREAT__`` (two underscores) are read. The rest of
the name is the key: ``__`` separates path segments, and the name is matched case-insensitively against the
keys the configuration already has, a ``_`` matching either ``_`` or ``-``. So
``COKREAT__KAFKA__BROKER_SERVERS`` sets ``kafka.broker-servers``, ``COKREAT__PROGRAM_SERVICE_BASEURL`` sets
``program-service-baseUrl`` and ``COKREAT__CONTENT_AUTO_CREATOR__MAXITERATION`` sets
``content_auto_creator.maxIteration``. A name that matches no existing key sets the key spelled in lower case
(``COKREAT__FOO__BAR`` -> ``foo.bar``); one that matches two keys is an error.

Values (from the environment and from ``overrides`` alike) are HOCON values: one starting with ``[``, ``{``
or ``"``, or containing ``${``, is parsed as HOCON (``["a","b"]`` a list, ``{a: 1}`` an object merged into
the existing one, ``"a b"`` a string, ``${job.env}".x"`` a substitution); otherwise ``true``/``false`` are
booleans, ``null`` is null, a decimal number is a number, and anything else is the text as written (so
``http://host:9000/x`` stays a URL although HOCON would read ``//`` as a comment). A null value counts as
absent: the code's default applies.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pyhocon import ConfigFactory, ConfigParser, ConfigTree
from pyhocon.exceptions import ConfigException

from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.core.values import deep_merge, type_name

__all__ = [
    "ENV_PREFIX",
    "JobConfig",
    "conf_dir",
    "load_config",
    "packaged_config_path",
    "parse_override",
    "parse_value",
]


ENV_PREFIX = "COKREAT__"
_PYHOCON_LOGGER = "pyhocon.config_parser"


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()

_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})
_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)")
_KEY_RE = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")


def _plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars only (no ConfigTree), safe to hand to callers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _split_key(key: str) -> list[str]:
    if '"' not in key:
        return key.split(".")
    # A quoted segment may hold dots; pyhocon keeps such segments quoted in its trees.
    return ConfigTree.parse_key(key)


class JobConfig:
    """A resolved job configuration, read by dotted key with typed getters.

    Missing keys (or keys set to null) raise :class:`ConfigError` naming the key unless a default is given.
    Conversions follow Typesafe Config, which the Scala jobs used: a number given as a string (``"9042"``) is
    a number, a number read as a string is its text.
    """

    __slots__ = ("_data", "job")

    def __init__(self, data: Mapping[str, Any] | ConfigTree, job: str | None = None) -> None:
        self._data: dict[str, Any] = _plain(data)
        self.job = job

    @property
    def tree(self) -> ConfigTree:
        """The configuration as a pyhocon ConfigTree (a copy)."""
        return ConfigFactory.from_dict(copy.deepcopy(self._data))

    def _lookup(self, key: str) -> Any:
        node: Any = self._data
        for part in _split_key(key):
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return _MISSING if node is None else node

    def _default(self, key: str, default: Any) -> Any:
        if default is _MISSING:
            raise ConfigError(f"missing configuration key '{key}'")
        return default

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The value at ``key`` as plain Python (dicts and lists are copies)."""
        value = self._lookup(key)
        if value is _MISSING:
            return self._default(key, default)
        return _plain(value) if isinstance(value, dict | list) else value

    def has(self, key: str) -> bool:
        return self._lookup(key) is not _MISSING

    __contains__ = has

    def get_str(self, key: str, default: Any = _MISSING) -> str:
        value = self._lookup(key)
        if value is _MISSING:
            return self._default(key, default)
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise ConfigError(f"configuration key '{key}' must be a string, got {type_name(value)}")

    def get_int(self, key: str, default: Any = _MISSING) -> int:
        value = self._lookup(key)
        if value is _MISSING:
            return self._default(key, default)
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            return value
        elif isinstance(value, float) and value.is_integer():
            return int(value)
        elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
            return int(value.strip())
        raise ConfigError(f"configuration key '{key}' must be an integer, got {type_name(value)} {value!r}")

    def get_float(self, key: str, default: Any = _MISSING) -> float:
        value = self._lookup(key)
        if value is _MISSING:
            return self._default(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            text = value.strip()
            if _INT_RE.fullmatch(text) or _FLOAT_RE.fullmatch(text):
                return float(text)
        raise ConfigError(f"configuration key '{key}' must be a number, got {type_name(value)} {value!r}")

    def get_bool(self, key: str, default: Any = _MISSING) -> bool:
        value = self._lookup(key)
        if value is _MISSING:
            return self._default(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise ConfigError(f"configuration key '{key}' must be a boolean, got {type_name(value)} {value!r}")

    def get_list(self, key: str, default: Any = _MISSING) -> list[Any]:
        """A list, or a comma-separated string split into its stripped, non-empty items.

        The Scala ``artifact_upload_allowed_source`` was deployed as either, hence the string form.
        """
        value = self._lookup(key)
        if value is _MISSING:
            return self._default(key, default)
        if isinstance(value, list):
            return _plain(value)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        raise ConfigError(f"configuration key '{key}' must be a list, got {type_name(value)}")

    def get_dict(self, key: str, default: Any = _MISSING) -> dict[str, Any]:
        value = self._lookup(key)
        if value is _MISSING:
            return self._default(key, default)
        if isinstance(value, dict):
            return _plain(value)
        raise ConfigError(f"configuration key '{key}' must be an object, got {type_name(value)}")

    def as_dict(self) -> dict[str, Any]:
        """The whole configuration as a plain dict (a copy)."""
        return _plain(self._data)

    def with_overrides(self, mapping: Mapping[str, Any]) -> JobConfig:
        """A new config with ``mapping``'s values set at its dotted keys.

        Values are taken as they are (a str stays a str, it is not parsed); a dict merges into an existing
        object, as ``key = {...}`` does in HOCON.
        """
        data = copy.deepcopy(self._data)
        for key, value in mapping.items():
            _set_path(data, _split_key(key), _plain(value), key)
        return JobConfig(data, self.job)

    def __reduce__(self) -> tuple[Any, ...]:
        # Plain dicts pickle everywhere; PyFlink ships the config to its Python workers inside the functions.
        return (JobConfig, (self._data, self.job))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobConfig) and other._data == self._data and other.job == self.job

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # Never the values: the configuration holds secrets (cloud_storage_secret, g_service_acct_cred).
        return f"JobConfig(job={self.job!r}, keys={len(self._data)})"


def _set_path(data: dict[str, Any], parts: list[str], value: Any, key: str) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    last = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        deep_merge(node[last], value)
    else:
        node[last] = value


# ---------------------------------------------------------------------------------------------- loading


def conf_dir() -> Path:
    """The folder holding the packaged ``.conf`` files."""
    return Path(str(resources.files("cokreat_jobs").joinpath("conf")))


def packaged_config_path(job: str) -> Path:
    """``conf/<job>.conf``; the job registry (:mod:`cokreat_jobs.jobs`) decides which names are jobs."""
    path = conf_dir() / f"{job}.conf"
    if not path.is_file():
        raise ConfigError(f"unknown job '{job}': no packaged conf/{job}.conf")
    return path


class _MissingIncludes(logging.Handler):
    """Collects the includes pyhocon could not load, which it only logs (``Cannot include file %s``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.missing: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # another thread's parse is not ours (None: logging.logThreads is off, so take it)
        mine = record.thread in (self.thread, None)
        if mine and str(record.msg).startswith("Cannot include") and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            self.missing.append(str(args[0]))


def _parse_file(path: Path) -> ConfigTree:
    """Parse one HOCON file; every ``include`` it (or an included file) names must exist.

    pyhocon skips a missing ``include "x.conf"`` / ``include file("...")`` with a warning; a Sunbird
    deployment whose ``include file("/data/flink/conf/base-config.conf")`` is absent would then run against
    the packaged ``localhost`` defaults. Here a missing include, required or not, is a :class:`ConfigError`
    naming it, so the job stops at start.
    """
    handler = _MissingIncludes()
    hocon_logger = logging.getLogger(_PYHOCON_LOGGER)
    saved = hocon_logger.level, hocon_logger.propagate
    # ours to report (as an error), whatever level the logging set-up gave pyhocon
    hocon_logger.setLevel(logging.WARNING)
    hocon_logger.propagate = False
    hocon_logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            # pyhocon reports a missing optional include through the deprecated Logger.warn.
            warnings.simplefilter("ignore", DeprecationWarning)
            # Unresolved: substitutions may refer to keys that a later layer sets.
            tree = ConfigFactory.parse_file(str(path), resolve=False)
    except OSError as e:
        missing = getattr(e, "filename", None)
        if missing and Path(str(missing)) != path:
            raise ConfigError(_missing_include(path, str(missing))) from e
        raise ConfigError(f"cannot read configuration file {path}: {e.strerror or e}") from e
    except Exception as e:  # pyparsing's ParseException and pyhocon's errors have no common base
        raise ConfigError(f"cannot parse configuration file {path}: {e}") from e
    finally:
        hocon_logger.removeHandler(handler)
        hocon_logger.setLevel(saved[0])
        hocon_logger.propagate = saved[1]
    if handler.missing:
        raise ConfigError(_missing_include(path, handler.missing[0]))
    if not isinstance(tree, ConfigTree):
        raise ConfigError(f"configuration file {path} does not hold an object")
    return tree


def _missing_include(path: Path, missing: str) -> str:
    return f"configuration file {path} includes {missing}, which does not exist or cannot be read"


def parse_value(text: str, key: str = "value") -> Any:
    """A ``--set`` / environment value as the module docstring describes (substitutions left unresolved)."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{", '"') or "${" in stripped:
        return _parse_hocon_value(stripped, key)
    if stripped == "true":
        return True
    if stripped == "false":
        return False
    if stripped == "null":
        return None
    if _INT_RE.fullmatch(stripped):
        return int(stripped)
    if _FLOAT_RE.fullmatch(stripped):
        return float(stripped)
    return stripped


def _parse_hocon_value(text: str, key: str) -> Any:
    try:
        tree = ConfigFactory.parse_string(f"v = {text}", resolve=False)
    except Exception as e:
        raise ConfigError(f"cannot parse the value of '{key}' as HOCON: {e}") from e
    return tree.get("v")


def parse_override(entry: str) -> tuple[str, str]:
    """Split ``KEY=VALUE`` at its first ``=``; the value is returned as text (see :func:`parse_value`)."""
    key, sep, value = entry.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override '{entry}' is not KEY=VALUE")
    if not _KEY_RE.fullmatch(key):
        raise ConfigError(f"override key '{key}' is not a dotted configuration key")
    return key, value


def _fragment(key: str, text: str) -> ConfigTree:
    """A one-key tree to merge over the configuration, keeping HOCON's merge and substitution semantics."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{", '"') or "${" in stripped:
        try:
            # Parsed in place (not as a detached value) so a substitution resolves against the whole config.
            return ConfigFactory.parse_string(f"{key} = {stripped}", resolve=False)
        except Exception as e:
            raise ConfigError(f"cannot parse the value of '{key}' as HOCON: {e}") from e
    tree = ConfigTree(root=True)
    tree.put(key, parse_value(stripped, key))
    return tree


def _tree_paths(tree: ConfigTree, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for k, v in tree.items():
        path = (*prefix, k)
        yield path
        if isinstance(v, ConfigTree):
            yield from _tree_paths(v, path)


def _normalise_env_name(name: str) -> str:
    return name.upper().replace(".", "__").replace("-", "_")


def _env_fragments(tree: ConfigTree, env: Mapping[str, str]) -> list[tuple[str, str]]:
    names = sorted(n for n in env if n.upper().startswith(ENV_PREFIX) and len(n) > len(ENV_PREFIX))
    if not names:
        return []
    index: dict[str, list[str]] = {}
    for path in _tree_paths(tree):
        norm = "__".join(_normalise_env_name(p) for p in path)
        index.setdefault(norm, []).append(".".join(path))
    result = []
    for name in names:
        norm = _normalise_env_name(name[len(ENV_PREFIX) :])
        matches = index.get(norm, [])
        if len(matches) > 1:
            raise ConfigError(f"environment variable {name} matches several keys: {', '.join(matches)}")
        if matches:
            key = matches[0]
        else:
            key = ".".join(part.lower() for part in norm.split("__") if part)
        if not key or not _KEY_RE.fullmatch(key):
            raise ConfigError(f"environment variable {name} does not name a configuration key")
        result.append((key, env[name]))
    return result


def load_config(
    job: str,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> JobConfig:
    """Load ``job``'s configuration; see the module docstring for the layers and the override rules.

    ``env`` defaults to ``os.environ``; pass ``{}`` to ignore the environment.
    """
    tree = _parse_file(packaged_config_path(job))
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"configuration file {path} does not exist")
        tree = ConfigTree.merge_configs(tree, _parse_file(path))

    layered: list[tuple[str, str]] = _env_fragments(tree, os.environ if env is None else env)
    layered += [parse_override(entry) for entry in overrides]
    for key, text in layered:
        tree = ConfigTree.merge_configs(tree, _fragment(key, text))

    try:
        ConfigParser.resolve_substitutions(tree)
    except ConfigException as e:
        raise ConfigError(f"cannot resolve the configuration of {job}: {e}") from e
    return JobConfig(tree, job)

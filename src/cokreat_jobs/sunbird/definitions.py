"""Object definitions (the Sunbird ``schema.json`` + ``config.json`` of an object type), loaded and cached.

``schema.basePath`` is an HTTP(S) URL (as the Scala job read it: a blob-store folder) or a local folder;
empty (the default of our ``auto-creator-v2.conf``) means the definitions packaged with this project in
``cokreat_jobs/schemas`` (copies of the real Question and QuestionSet 1.0 definitions). Files are read from
``{basePath}/{object type lowercased, "image" removed}/{version}/schema.json`` and ``config.json``,
version from
``schema.supportedVersion.<object type lowercased>`` [1.0]. Loaded definitions are kept
``schema.cache_ttl_s`` seconds [600, as the reference]; when a reload fails, the stale copy is used.

A definition names: the relations (keys of ``config.relations``), the external properties, table and primary
key (``config.external``), and the schema properties with their types (``object``-typed ones are stored in the
graph as JSON strings).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cokreat_jobs.core.errors import ConfigError, PermanentError

if TYPE_CHECKING:
    from cokreat_jobs.adapters.http import ServiceClient
    from cokreat_jobs.core.config import JobConfig

__all__ = ["Definition", "DefinitionLoader", "definition_folder", "packaged_schemas_dir"]

DEFAULT_VERSION = "1.0"
DEFAULT_TTL_S = 600.0


def packaged_schemas_dir() -> Path:
    return Path(str(resources.files("cokreat_jobs").joinpath("schemas")))


def definition_folder(object_type: str) -> str:
    """``QuestionSetImage`` -> ``questionset``."""
    return object_type.strip().lower().replace("image", "")


@dataclass(frozen=True)
class Definition:
    object_type: str
    version: str
    schema: dict[str, Any] = field(repr=False)
    config: dict[str, Any] = field(repr=False)

    @property
    def properties(self) -> dict[str, Any]:
        props = self.schema.get("properties")
        return props if isinstance(props, dict) else {}

    @property
    def schema_props(self) -> tuple[str, ...]:
        return tuple(self.properties)

    def prop_type(self, name: str) -> str | None:
        spec = self.properties.get(name)
        kind = spec.get("type") if isinstance(spec, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def object_props(self) -> frozenset[str]:
        """Schema properties typed ``object``: stored in the graph as JSON strings."""
        return frozenset(name for name in self.properties if self.prop_type(name) == "object")

    @property
    def relations(self) -> tuple[str, ...]:
        rel = self.config.get("relations")
        return tuple(rel) if isinstance(rel, dict) else ()

    @property
    def _external(self) -> dict[str, Any]:
        ext = self.config.get("external")
        return ext if isinstance(ext, dict) else {}

    @property
    def external_props(self) -> tuple[str, ...]:
        props = self._external.get("properties")
        return tuple(props) if isinstance(props, dict) else ()

    def external_type(self, name: str) -> str | None:
        props = self._external.get("properties")
        spec = props.get(name) if isinstance(props, dict) else None
        kind = spec.get("type") if isinstance(spec, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def external_table(self) -> str:
        table = self._external.get("tableName")
        return table if isinstance(table, str) else ""

    @property
    def primary_key(self) -> tuple[str, ...]:
        pk = self._external.get("primaryKey")
        return tuple(str(p) for p in pk) if isinstance(pk, list) and pk else ("identifier",)

    @classmethod
    def parse(cls, object_type: str, version: str, schema: Any, config: Any) -> Definition:
        if not isinstance(schema, dict) or not isinstance(config, dict):
            raise PermanentError(
                f"definition of {object_type} {version}: schema.json and config.json must be objects"
            )
        return cls(str(config.get("objectType") or object_type), version, schema, config)


Fetcher = Callable[[str, str], Any]


class DefinitionLoader:
    """Definitions by object type, cached ``ttl_s`` s. ``base_path``: URL, folder, or "" (packaged)."""

    def __init__(
        self,
        base_path: str = "",
        versions: Mapping[str, str] | None = None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        client: ServiceClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base = (base_path or "").strip()
        self.is_http = base.lower().startswith(("http://", "https://"))
        if self.is_http:
            if client is None:
                raise ConfigError("an HTTP schema.basePath needs an HTTP client")
            self.base = base.rstrip("/")
        else:
            self.base = str(Path(base).expanduser()) if base else str(packaged_schemas_dir())
        self.versions = {k.lower(): str(v) for k, v in (versions or {}).items()}
        self.ttl_s = ttl_s
        self._client = client
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Definition]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @classmethod
    def from_config(cls, cfg: JobConfig) -> DefinitionLoader:
        from cokreat_jobs.adapters.http import ServiceClient

        base = cfg.get_str("schema.basePath", "")
        versions = {str(k): str(v) for k, v in cfg.get_dict("schema.supportedVersion", {}).items()}
        client = None
        if base.strip().lower().startswith(("http://", "https://")):
            client = ServiceClient.from_config("schema", base.strip(), cfg)
        return cls(base, versions, ttl_s=cfg.get_float("schema.cache_ttl_s", DEFAULT_TTL_S), client=client)

    def version_of(self, object_type: str) -> str:
        return self.versions.get(definition_folder(object_type), DEFAULT_VERSION)

    async def get(self, object_type: str, version: str | None = None) -> Definition:
        folder = definition_folder(object_type)
        ver = version or self.version_of(object_type)
        key = (folder, ver)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
            try:
                definition = await self._load(object_type, folder, ver)
            except Exception:
                if cached is not None:  # stale beats nothing while the source is down
                    return cached[1]
                raise
            self._cache[key] = (self._clock() + self.ttl_s, definition)
            return definition

    async def _load(self, object_type: str, folder: str, ver: str) -> Definition:
        if self.is_http:
            schema = await self._fetch_http(f"/{folder}/{ver}/schema.json")
            config = await self._fetch_http(f"/{folder}/{ver}/config.json")
        else:
            root = Path(self.base) / folder / ver
            schema, config = await asyncio.to_thread(_read_local, root)
        return Definition.parse(object_type, ver, schema, config)

    async def _fetch_http(self, path: str) -> Any:
        assert self._client is not None
        resp = await self._client.request("GET", path, label=f"GET schema {path}")
        if resp.status != 200 or resp.json is None:
            raise PermanentError(f"definition file {self.base}{path}: HTTP {resp.status}")
        return resp.json

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def _read_local(root: Path) -> tuple[Any, Any]:
    out = []
    for name in ("schema.json", "config.json"):
        path = root / name
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise PermanentError(f"no definition file {path}") from None
        except (OSError, ValueError) as e:
            raise PermanentError(f"cannot read definition file {path}: {e}") from None
    return out[0], out[1]

"""The graph store on Neo4j 3.x to 5.x: Bolt with the official async driver, or Cypher over HTTP.

One parameterised query writes a node, the same on create and on match::

    MERGE (n:domain {IL_UNIQUE_ID: $id}) SET n += $props

Nothing is string-built: the identifier and every property (keys included) travel as parameters, so a name
with quotes or a value like ``'}) DETACH DELETE n //`` is stored as it is. Values are prepared as the
reference stored them: a dict, or a list holding a dict (or a list), becomes its JSON string; other lists are
de-duplicated in order; a ``None`` value is sent as null, and ``SET n += {k: null}`` removes the property, as
the reference's ``SET n.k=null`` did (a prop nulled at the source does not survive a re-import), over Bolt
and over HTTP alike.

Which protocol (``graph.neo4j.protocol``, default ``auto``). The pinned driver (5.x) speaks Bolt 3.0 and
4.2+, so it reaches Neo4j 3.5 to 5.x; Sunbird ships Neo4j 3.3, which speaks Bolt 1 only (3.4: Bolt 1 and 2).
Every version from 3.0 to 5.x answers Cypher on its HTTP transactional endpoint
(``/db/data/transaction/commit`` on 3.x, ``/db/<database>/tx/commit`` on 4.x and later), which aiohttp
reaches with nothing more installed. With ``auto``, an ``http(s)://`` route uses HTTP; a ``bolt://`` or
``neo4j://`` route is asked, before the first query, which Bolt version it agrees to (the 20-byte Bolt
handshake, no query): 3 or later uses the driver, 1 or 2 (Neo4j 3.0 to 3.4) uses HTTP on the same host at
``graph.neo4j.http_port`` (7474), or at ``graph.neo4j.http_url`` when set. TLS routes (``bolt+s://`` ...) use
the driver unprobed. ``bolt`` and ``http`` force one.

Config (the Scala job's keys): ``neo4j.routePath`` (``bolt://host:port``, as the reference's config has it, or
``http://host:7474``), optional ``neo4j.user`` and ``neo4j.password`` (no auth by default), optional
``graph.neo4j.database`` (Bolt: the server's default database; HTTP on 4.x and later: ``neo4j``).
``graph.neo4j.ensure_constraint`` (default false: the reference never changed the graph's schema) set to true
creates, before the first write, the uniqueness constraint on ``:domain(IL_UNIQUE_ID)`` in the syntax of the
server's version (:func:`constraint_query`); a refusal (no privilege, one there already) is only logged.

The driver and the HTTP session are created lazily, on the event loop of the first call (PyFlink runs
coroutines on a loop in a thread of its own), and closed with :meth:`close` on that loop.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from cokreat_jobs.core.errors import ConfigError, PermanentError, TransientError
from cokreat_jobs.core.values import compact_json

if TYPE_CHECKING:
    import aiohttp
    from neo4j import AsyncDriver

    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "BOLT_HANDSHAKE",
    "CONSTRAINT_QUERY",
    "MERGE_QUERY",
    "PROTOCOLS",
    "READ_QUERY",
    "Neo4jGraphStore",
    "Neo4jHttpCypher",
    "Route",
    "agreed_bolt_version",
    "constraint_query",
    "http_base_url",
    "parse_route",
    "parse_version",
    "prepare_properties",
    "protocol_for",
    "transaction_commit_path",
]

MERGE_QUERY = "MERGE (n:domain {IL_UNIQUE_ID: $id}) SET n += $props"
READ_QUERY = "MATCH (n:domain {IL_UNIQUE_ID: $id}) RETURN properties(n) AS props LIMIT 1"
# Without it two concurrent MERGEs of one new id may both create a node. Only with
# graph.neo4j.ensure_constraint = true; this is the 4.4+ form, constraint_query() picks the server's.
CONSTRAINT_QUERY = (
    "CREATE CONSTRAINT domain_il_unique_id IF NOT EXISTS FOR (n:domain) REQUIRE n.IL_UNIQUE_ID IS UNIQUE"
)
# Neo4j 4.1 to 4.3: named, IF NOT EXISTS, the old ON ... ASSERT form (5.x removed it).
_CONSTRAINT_41 = (
    "CREATE CONSTRAINT domain_il_unique_id IF NOT EXISTS ON (n:domain) ASSERT n.IL_UNIQUE_ID IS UNIQUE"
)
# Neo4j 3.x and 4.0: neither names nor IF NOT EXISTS (3.x answers a second one as a no-op).
_CONSTRAINT_3 = "CREATE CONSTRAINT ON (n:domain) ASSERT n.IL_UNIQUE_ID IS UNIQUE"

PROTOCOLS = ("auto", "bolt", "http")
DEFAULT_HTTP_PORT = 7474
DEFAULT_BOLT_PORT = 7687
_PLAIN_BOLT = ("bolt", "neo4j")
_TLS_BOLT = ("bolt+s", "bolt+ssc", "neo4j+s", "neo4j+ssc")

# The Bolt handshake: the magic, then four proposals, best first. A proposal is 0x00 <range> <minor> <major>
# (the range counts minors below it, understood from 4.3 on; older servers read the whole word as a version
# number, which a 3.x server then does not know and skips). Proposed: 5.0-5.8, 4.2-4.4, 3, 1.
BOLT_HANDSHAKE = bytes.fromhex("6060b01700080805000204040000000300000001")

log = logging.getLogger(__name__)
_CONSTRAINT_REFUSED = "could not ensure the uniqueness constraint on :domain(IL_UNIQUE_ID): %s"


@dataclass(frozen=True)
class Route:
    """A parsed ``neo4j.routePath``."""

    scheme: str
    host: str
    port: int
    path: str = ""
    user: str | None = None
    password: str | None = None


def parse_route(uri: str) -> Route:
    """``bolt://[user:password@]host[:port]``, ``neo4j://...``, ``bolt+s://...`` or ``http(s)://host[:port]``."""
    text = (uri or "").strip()
    if "://" not in text:
        raise ConfigError(f"neo4j.routePath must be bolt://host:port or http://host:port, got {uri!r}")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in (*_PLAIN_BOLT, *_TLS_BOLT, "http", "https"):
        raise ConfigError(
            f"neo4j.routePath: unsupported scheme {scheme!r} (bolt, neo4j, bolt+s, http, https)"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"neo4j.routePath: bad port in {uri!r}") from exc
    if not parts.hostname:
        raise ConfigError(f"neo4j.routePath: no host in {uri!r}")
    default = {"http": DEFAULT_HTTP_PORT, "https": 7473}.get(scheme, DEFAULT_BOLT_PORT)
    return Route(
        scheme=scheme,
        host=parts.hostname,
        port=port or default,
        path=parts.path.rstrip("/"),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def http_base_url(route: Route, http_url: str | None = None, http_port: int = DEFAULT_HTTP_PORT) -> str:
    """Where the HTTP endpoint is: ``graph.neo4j.http_url``; else the route itself when it is http(s); else
    ``http://<the Bolt route's host>:<http_port>``."""
    if http_url:
        parsed = parse_route(http_url)
        if parsed.scheme not in ("http", "https"):
            raise ConfigError(f"graph.neo4j.http_url must be http(s)://host:port, got {http_url!r}")
        return f"{parsed.scheme}://{_host_for_url(parsed.host)}:{parsed.port}{parsed.path}"
    if route.scheme in ("http", "https"):
        return f"{route.scheme}://{_host_for_url(route.host)}:{route.port}{route.path}"
    return f"http://{_host_for_url(route.host)}:{http_port}"


def agreed_bolt_version(reply: bytes) -> tuple[int, int]:
    """The (major, minor) a server's 4-byte handshake answer names; (0, 0) when it agreed to none."""
    if len(reply) != 4:
        raise ValueError(f"a Bolt handshake answer is 4 bytes, got {len(reply)}")
    return reply[3], reply[2]


def protocol_for(configured: str, scheme: str, bolt_version: tuple[int, int] | None = None) -> str:
    """``bolt`` or ``http`` for a configured protocol, a route scheme and, for ``auto`` on a plain Bolt route,
    the Bolt version the server agreed to (the 5.x driver speaks 3.0 and 4.2+; 4.0/4.1 servers agree to 3)."""
    wanted = (configured or "auto").strip().lower()
    if wanted not in PROTOCOLS:
        raise ConfigError(f"graph.neo4j.protocol must be one of {', '.join(PROTOCOLS)}, got {configured!r}")
    if wanted != "auto":
        if wanted == "bolt" and scheme in ("http", "https"):
            raise ConfigError("graph.neo4j.protocol = bolt needs a bolt:// or neo4j:// neo4j.routePath")
        return wanted
    if scheme in ("http", "https"):
        return "http"
    if scheme in _TLS_BOLT:
        return "bolt"
    if bolt_version is None:
        raise ValueError("protocol auto on a plain Bolt route needs the server's Bolt version")
    return "bolt" if bolt_version[0] >= 3 else "http"


def parse_version(text: str | None) -> tuple[int, int]:
    """(major, minor) of ``3.3.9``, ``Neo4j/5.26.10``, ``2025.01.0``; (0, 0) when unknown."""
    match = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def constraint_query(version: tuple[int, int]) -> str:
    """The uniqueness constraint on ``:domain(IL_UNIQUE_ID)`` in a syntax the server's version accepts."""
    if version >= (4, 4) or version == (0, 0):
        return CONSTRAINT_QUERY
    if version >= (4, 1):
        return _CONSTRAINT_41
    return _CONSTRAINT_3


def transaction_commit_path(discovery: dict[str, Any], database: str | None) -> str | None:
    """The commit endpoint's path from a 4.x/5.x ``GET /`` (``"transaction": ".../db/{databaseName}/tx"``);
    None when the document is a 3.x one (then ``GET /db/data/`` tells: :meth:`Neo4jHttpCypher.discover`)."""
    template = discovery.get("transaction")
    if not isinstance(template, str):
        return None
    path = urlsplit(template).path.rstrip("/")
    return path.replace("{databaseName}", database or "neo4j") + "/commit"


class Neo4jHttpCypher:
    """Parameterised Cypher over Neo4j's HTTP transactional endpoint, one auto-committed statement a call.

    ``GET <base>/`` tells the version and the endpoint: 4.x/5.x name ``transaction`` there, 3.x names
    ``data`` (``/db/data/``), whose document names ``transaction`` and ``neo4j_version``. Only the paths of
    the discovered URLs are used (a server behind a proxy names itself by its own host). Answers: a
    ``Neo.TransientError.*``, a 5xx or a connection failure raise :class:`TransientError`; any other error
    raises :class:`PermanentError` with Neo4j's code.
    """

    def __init__(
        self,
        base_url: str,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        timeout: float = 10.0,
        max_connections: int = 50,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.database = database
        self.timeout = timeout
        self.max_connections = max_connections
        self._auth_header = (
            "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode() if user else None
        )
        self._session: aiohttp.ClientSession | None = None
        self._commit_path: str | None = None
        self.server_version: tuple[int, int] = (0, 0)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self._auth_header:
            headers["Authorization"] = self._auth_header
        return headers

    def _get_session(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self.timeout * 3, connect=self.timeout),
            )
        return self._session

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import aiohttp

        url = self.base_url + path
        try:
            async with self._get_session().request(method, url, json=body, headers=self._headers()) as resp:
                if resp.status >= 500:
                    raise TransientError(f"Neo4j HTTP {method} {path}: {resp.status}", status=resp.status)
                if resp.status >= 400:
                    text = (await resp.text())[:300]
                    raise PermanentError(
                        f"Neo4j HTTP {method} {path}: {resp.status} {text}", status=resp.status
                    )
                return await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransientError(f"Neo4j HTTP {method} {path}: {type(exc).__name__}: {exc}") from exc

    async def discover(self) -> str:
        if self._commit_path is not None:
            return self._commit_path
        root = await self._request("GET", "/")
        if not isinstance(root, dict):
            raise PermanentError(f"Neo4j HTTP: {self.base_url}/ is not Neo4j's discovery document")
        commit = transaction_commit_path(root, self.database)
        version = root.get("neo4j_version")
        if commit is None:
            data = root.get("data")
            if not isinstance(data, str):
                raise PermanentError(f"Neo4j HTTP: {self.base_url}/ names neither transaction nor data")
            data_path = urlsplit(data).path.rstrip("/")
            data_doc = await self._request("GET", data_path + "/")
            data_doc = data_doc if isinstance(data_doc, dict) else {}
            tx = data_doc.get("transaction")
            tx_path = urlsplit(tx).path.rstrip("/") if isinstance(tx, str) else data_path + "/transaction"
            commit = tx_path + "/commit"
            version = data_doc.get("neo4j_version")
        self.server_version = parse_version(version if isinstance(version, str) else None)
        self._commit_path = commit
        return commit

    async def run(self, statement: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        """The rows of one statement, committed on its own."""
        commit = await self.discover()
        body = {"statements": [{"statement": statement, "parameters": parameters or {}}]}
        answer = await self._request("POST", commit, body)
        if not isinstance(answer, dict):
            raise PermanentError(f"Neo4j HTTP: {commit} answered no JSON object")
        errors = answer.get("errors") or []
        if errors:
            code = str(errors[0].get("code", ""))
            message = f"Neo4j {code}: {str(errors[0].get('message', ''))[:300]}"
            if code.startswith("Neo.TransientError."):
                raise TransientError(message)
            raise PermanentError(message, reason="neo4j-error")
        results = answer.get("results") or []
        if not results:
            return []
        return [list(item.get("row") or []) for item in results[0].get("data") or []]

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


async def probe_bolt(host: str, port: int, timeout: float = 10.0) -> tuple[int, int]:
    """The Bolt version a server agrees to, from the handshake alone (no message is sent after it)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(BOLT_HANDSHAKE)
        await writer.drain()
        reply = await asyncio.wait_for(reader.readexactly(4), timeout)
        return agreed_bolt_version(reply)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


def _prepare_value(value: Any) -> Any:
    if isinstance(value, dict):
        return compact_json(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if any(isinstance(v, dict | list | tuple | set | frozenset) for v in items):
            return compact_json(items if not isinstance(value, set | frozenset) else sorted(items, key=str))
        seen: set[Any] = set()
        out: list[Any] = []
        for item in items:
            if item is None:
                continue
            marker = (type(item), item)
            if marker not in seen:
                seen.add(marker)
                out.append(item)
        return out
    return value


def prepare_properties(identifier: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The ``$props`` map: None kept (null: ``SET n += $props`` removes the property), JSON-valued props as
    JSON strings, lists de-duplicated."""
    props = {str(k): _prepare_value(v) for k, v in properties.items()}
    props["IL_UNIQUE_ID"] = identifier
    return props


class Neo4jGraphStore:
    """:class:`cokreat_jobs.adapters.stores.GraphStore` on Neo4j (label ``domain``, key ``IL_UNIQUE_ID``)."""

    def __init__(
        self,
        uri: str,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        connection_timeout: float = 10.0,
        max_pool_size: int = 50,
        ensure_constraint: bool = False,
        protocol: str = "auto",
        http_url: str | None = None,
        http_port: int = DEFAULT_HTTP_PORT,
    ) -> None:
        if not uri:
            raise ConfigError("graph.store = neo4j needs neo4j.routePath (e.g. bolt://localhost:7687)")
        self.uri = uri
        self.route = parse_route(uri)
        self.user = user or self.route.user or None
        self.password = password if password is not None else self.route.password
        self.database = database or None
        self.connection_timeout = connection_timeout
        self.max_pool_size = max_pool_size
        self.ensure_constraint = ensure_constraint
        self.configured_protocol = (protocol or "auto").strip().lower()
        # Checked now (a bad value is a config error at start); None until decided for auto on Bolt.
        self.protocol: str | None = None
        if self.configured_protocol != "auto" or self.route.scheme not in _PLAIN_BOLT:
            self.protocol = protocol_for(self.configured_protocol, self.route.scheme)
        self.http_base = http_base_url(self.route, http_url or None, http_port)
        self._driver: AsyncDriver | None = None
        self._http: Neo4jHttpCypher | None = None
        self._constraint_checked = False
        self._lock: asyncio.Lock | None = None

    @classmethod
    def from_config(cls, cfg: JobConfig) -> Neo4jGraphStore:
        return cls(
            uri=cfg.get_str("neo4j.routePath", ""),
            user=cfg.get_str("neo4j.user", "") or None,
            password=cfg.get_str("neo4j.password", "") or None,
            database=cfg.get_str("graph.neo4j.database", "") or None,
            ensure_constraint=cfg.get_bool("graph.neo4j.ensure_constraint", False),
            protocol=cfg.get_str("graph.neo4j.protocol", "auto") or "auto",
            http_url=cfg.get_str("graph.neo4j.http_url", "") or None,
            http_port=cfg.get_int("graph.neo4j.http_port", DEFAULT_HTTP_PORT),
        )

    def _bolt_uri(self) -> str:
        # Credentials in the route go to auth=, not to the driver's URI.
        r = self.route
        return f"{r.scheme}://{_host_for_url(r.host)}:{r.port}"

    def _get_driver(self) -> AsyncDriver:
        if self._driver is None:
            from neo4j import AsyncGraphDatabase

            auth = (self.user, self.password or "") if self.user else None
            self._driver = AsyncGraphDatabase.driver(
                self._bolt_uri(),
                auth=auth,
                connection_timeout=self.connection_timeout,
                max_connection_pool_size=self.max_pool_size,
            )
        return self._driver

    def _get_http(self) -> Neo4jHttpCypher:
        if self._http is None:
            self._http = Neo4jHttpCypher(
                self.http_base,
                user=self.user,
                password=self.password,
                database=self.database,
                timeout=self.connection_timeout,
                max_connections=self.max_pool_size,
            )
        return self._http

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _protocol(self) -> str:
        if self.protocol is not None:
            return self.protocol
        async with self._get_lock():
            if self.protocol is None:
                try:
                    version = await probe_bolt(self.route.host, self.route.port, self.connection_timeout)
                except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    # Not decided: the next call asks again.
                    raise TransientError(f"Neo4j Bolt handshake with {self._bolt_uri()}: {exc!r}") from exc
                self.protocol = protocol_for("auto", self.route.scheme, version)
                log.info(
                    "neo4j %s agreed to Bolt %d.%d: graph store over %s%s",
                    self._bolt_uri(),
                    *version,
                    self.protocol,
                    f" at {self.http_base}" if self.protocol == "http" else "",
                )
        return self.protocol

    async def _ensure_constraint(self, protocol: str) -> None:
        if self._constraint_checked or not self.ensure_constraint:
            return
        async with self._get_lock():
            if self._constraint_checked:
                return
            if protocol == "http":
                http = self._get_http()
                await http.discover()
                query = constraint_query(http.server_version)
                try:
                    await http.run(query)
                except PermanentError as exc:  # no privilege, duplicates there already, ...
                    log.warning(_CONSTRAINT_REFUSED, exc)
            else:
                from neo4j.exceptions import Neo4jError

                driver = self._get_driver()
                info = await driver.get_server_info()
                query = constraint_query(parse_version(info.agent))
                try:
                    await driver.execute_query(query, database_=self.database)
                except Neo4jError as exc:
                    log.warning(_CONSTRAINT_REFUSED, exc)
            self._constraint_checked = True

    async def merge_node(self, identifier: str, properties: dict[str, Any]) -> None:
        if not identifier:
            raise ValueError("merge_node needs an identifier")
        props = prepare_properties(identifier, properties)
        protocol = await self._protocol()
        await self._ensure_constraint(protocol)
        params = {"id": identifier, "props": props}
        if protocol == "http":
            await self._get_http().run(MERGE_QUERY, params)
            return
        from neo4j import RoutingControl

        await self._get_driver().execute_query(
            MERGE_QUERY, params, database_=self.database, routing_=RoutingControl.WRITE
        )

    async def read_node(self, identifier: str) -> dict[str, Any] | None:
        if await self._protocol() == "http":
            rows = await self._get_http().run(READ_QUERY, {"id": identifier})
            return dict(rows[0][0]) if rows else None
        from neo4j import RoutingControl

        records, _, _ = await self._get_driver().execute_query(
            READ_QUERY, {"id": identifier}, database_=self.database, routing_=RoutingControl.READ
        )
        if not records:
            return None
        return dict(records[0]["props"])

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        http, self._http = self._http, None
        self._lock = None
        if driver is not None:
            await driver.close()
        if http is not None:
            await http.close()

    def __repr__(self) -> str:
        # Without the route's credentials.
        where = self.http_base if self.route.scheme in ("http", "https") else self._bolt_uri()
        return f"Neo4jGraphStore({where!r}, database={self.database!r}, protocol={self.protocol or 'auto'!r})"

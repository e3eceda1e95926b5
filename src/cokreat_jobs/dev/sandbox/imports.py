"""The import APIs: `POST /content/v4/import` (also `/content/v3/import` and the gateway's
`/content/v1/import`) and `POST /questionset/v4/import` (gateway `/questionset/v1/import`), as
knowledge-platform's import manager behaves: validate the whole request, then publish one `BE_JOB_REQUEST`
per object to Kafka.

Validation is all or nothing (no event is sent when any object fails), in this order:

1. no list or object under `request.<type>`, or an empty one -> 400 `ERR_INVALID_IMPORT_REQUEST`;
2. more than `import.request_size_limit` objects -> 400 `ERR_REQUEST_LIMIT_EXCEED`;
3. a question set without `source` -> 400 `ERR_INVALID_IMPORT_REQUEST` (auto-creator-v2 needs the repository);
4. each `source` is read (GET; the metadata is `result.<type>`): not 200 -> 400 `ERR_READ_SOURCE`; a status
   outside `valid_source_status` (when that list is set) -> 400 `ERR_SOURCE_STATUS_VALIDATION`;
5. source metadata overlaid by the request's, `source` recorded, `remove_props` dropped, `processId` set;
   a `required_props` key absent (or null) -> 400 `ERR_REQUIRED_PROPS_VALIDATION` naming the objects' codes;
6. a non-blank `stage` outside `valid_stages` -> 400 `ERR_OBJECT_STAGE_VALIDATION`.

Then every event is published (key = identifier) on the type's `output_topic` and the answer waits for
Kafka's acknowledgement of each, so a 200 means the import is durable. Without a broker (`--kafka`) the
import answers 500 `ERR_SYSTEM_EXCEPTION`. The publisher is injectable: settings `import_publisher` (an
object with `async publish(topic, [(key, value), ...])`), or `sandbox.services["import_publisher"]`.

Configuration: `conf/import.conf` (keys `import.*`), overridden by the sandbox settings `import` (an object
merged key by key) and dotted `import.<...>` settings.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson
from starlette.responses import Response

from cokreat_jobs.dev.sandbox.envelope import Api, ok
from cokreat_jobs.dev.sandbox.router import ApiError, Call
from cokreat_jobs.dev.sandbox.runtime import Sandbox

log = logging.getLogger("cokreat_jobs.dev.sandbox.imports")

API_CONTENT_IMPORT = Api("api.content.import", "4.0")
API_QUESTIONSET_IMPORT = Api("api.questionset.import", "4.0")

ERR_INVALID_IMPORT_REQUEST = "ERR_INVALID_IMPORT_REQUEST"
ERR_REQUEST_LIMIT_EXCEED = "ERR_REQUEST_LIMIT_EXCEED"
ERR_READ_SOURCE = "ERR_READ_SOURCE"
ERR_SOURCE_STATUS_VALIDATION = "ERR_SOURCE_STATUS_VALIDATION"
ERR_REQUIRED_PROPS_VALIDATION = "ERR_REQUIRED_PROPS_VALIDATION"
ERR_OBJECT_STAGE_VALIDATION = "ERR_OBJECT_STAGE_VALIDATION"
ERR_SYSTEM_EXCEPTION = "ERR_SYSTEM_EXCEPTION"

MSG_INVALID_IMPORT_REQUEST = "Invalid Request! Please Provide Valid Request."
MSG_REQUEST_LIMIT_EXCEED = "Request Limit Exceeded. Maximum Allowed Objects In Single Request is "
MSG_READ_SOURCE = "Received Invalid Response While Reading Data From Source. Response Code is : "
MSG_SOURCE_STATUS_VALIDATION = "Source Object Status Validation Failed! Valid Source Statuses Are "
MSG_REQUIRED_PROPS_VALIDATION = "Validation Failed! Mandatory Properties Are "
MSG_OBJECT_STAGE_VALIDATION = "Object Stage Validation Failed! Valid Object Stages Are "
MSG_KAFKA_NOT_CONFIGURED = (
    "Kafka is not configured: the import APIs publish to Kafka; start the sandbox with --kafka BOOTSTRAP"
)

OBJECT_TYPES = ("content", "questionset")
"""The request key (and the key of a source read's result) per import API."""


# -- configuration ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeConfig:
    required_props: tuple[str, ...]
    remove_props: tuple[str, ...]
    valid_stages: tuple[str, ...]
    valid_source_status: tuple[str, ...]
    output_topic: str


@dataclass(frozen=True, slots=True)
class ImportConfig:
    request_size_limit: int
    env: str
    content: TypeConfig
    questionset: TypeConfig

    def for_type(self, object_type: str) -> TypeConfig:
        return self.content if object_type == "content" else self.questionset


def _deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def default_import_tree() -> dict[str, Any]:
    """`conf/import.conf` as plain dicts and lists (the `import` object)."""
    from pyhocon import ConfigFactory

    from cokreat_jobs.core.config import conf_dir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ConfigFactory.parse_file(str(conf_dir() / "import.conf"))
    plain: dict[str, Any] = orjson.loads(orjson.dumps(tree.as_plain_ordered_dict()))
    return dict(plain.get("import", {}))


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(v).strip() for v in value if v is not None and str(v).strip())


def load_import_config(settings: Mapping[str, Any] | None = None) -> ImportConfig:
    """The packaged defaults, then `settings["import"]` (an object) and dotted `import.*` settings."""
    tree = default_import_tree()
    given = dict(settings or {})
    if isinstance(given.get("import"), Mapping):
        _deep_merge(tree, given["import"])
    for key, value in given.items():
        if key.startswith("import."):
            node = tree
            *parents, last = key.split(".")[1:]
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value

    def type_config(name: str) -> TypeConfig:
        t = tree.get(name) or {}
        return TypeConfig(
            required_props=_strs(t.get("required_props")),
            remove_props=_strs(t.get("remove_props")),
            valid_stages=_strs(t.get("valid_stages")),
            valid_source_status=_strs(t.get("valid_source_status")),
            output_topic=str(t.get("output_topic") or ""),
        )

    return ImportConfig(
        request_size_limit=int(tree.get("request_size_limit", 200)),
        env=str(tree.get("env", "dev")),
        content=type_config("content"),
        questionset=type_config("questionset"),
    )


# -- the pure part: request objects to events ---------------------------------------------------------------


class ImportRefused(Exception):
    """A request the import API answers with an error (400 unless said otherwise)."""

    def __init__(self, err: str, errmsg: str, status: int = 400, messages: list[str] | None = None) -> None:
        super().__init__(f"{err}: {errmsg}")
        self.err = err
        self.errmsg = errmsg
        self.status = status
        self.messages = messages


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _java_list(values: Sequence[Any]) -> str:
    """How Java prints a list (`[a, b]`), as the reference's messages do."""
    return "[" + ", ".join("" if v is None else str(v) for v in values) + "]"


def request_objects(request: Mapping[str, Any], object_type: str, cfg: ImportConfig) -> list[dict[str, Any]]:
    """`request.<type>` as a list of objects; refuses the empty, malformed and oversized requests."""
    raw = request.get(object_type)
    if isinstance(raw, dict):
        objects = [raw]
    elif isinstance(raw, list):
        objects = raw
    else:
        raise ImportRefused(ERR_INVALID_IMPORT_REQUEST, MSG_INVALID_IMPORT_REQUEST)
    if not objects:
        raise ImportRefused(ERR_INVALID_IMPORT_REQUEST, MSG_INVALID_IMPORT_REQUEST)
    if len(objects) > cfg.request_size_limit:
        raise ImportRefused(ERR_REQUEST_LIMIT_EXCEED, MSG_REQUEST_LIMIT_EXCEED + str(cfg.request_size_limit))
    for obj in objects:
        if not isinstance(obj, dict):
            raise ImportRefused(ERR_INVALID_IMPORT_REQUEST, MSG_INVALID_IMPORT_REQUEST)
        if obj.get("metadata") is not None and not isinstance(obj["metadata"], dict):
            raise ImportRefused(ERR_INVALID_IMPORT_REQUEST, MSG_INVALID_IMPORT_REQUEST)
        source = obj.get("source")
        if source is not None and not isinstance(source, str):
            raise ImportRefused(ERR_INVALID_IMPORT_REQUEST, MSG_INVALID_IMPORT_REQUEST)
        if object_type == "questionset" and _blank(source):
            raise ImportRefused(
                ERR_INVALID_IMPORT_REQUEST,
                MSG_INVALID_IMPORT_REQUEST,
                messages=["a question set import needs a source: auto-creator-v2 reads the repository"],
            )
    return objects


def _origin_data(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.strip():
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def prepare_object(
    obj: Mapping[str, Any],
    source_metadata: Mapping[str, Any] | None,
    process_id: str,
    tc: TypeConfig,
) -> dict[str, Any]:
    """One request object made ready for its event: overlaid metadata, removed props, processId."""
    source = obj.get("source") or ""
    metadata: dict[str, Any] = dict(source_metadata or {})
    metadata.update(obj.get("metadata") or {})
    if source:
        metadata["source"] = source
    origin = _origin_data(obj.get("originData")) or _origin_data(metadata.get("originData"))
    for prop in tc.remove_props:
        metadata.pop(prop, None)
    metadata["processId"] = process_id
    collection = obj.get("collection")
    stage = obj.get("stage")
    return {
        "source": source,
        "metadata": metadata,
        "collection": collection if isinstance(collection, list) else [],
        "stage": "" if stage is None else str(stage),
        "originData": origin,
    }


def missing_required(metadata: Mapping[str, Any], tc: TypeConfig) -> list[str]:
    return [p for p in tc.required_props if metadata.get(p) is None]


def stage_valid(stage: str, tc: TypeConfig) -> bool:
    return not stage.strip() or stage in tc.valid_stages


def validate_prepared(prepared: Sequence[Mapping[str, Any]], tc: TypeConfig) -> None:
    """Required props, then stages, over every object (the reference's order); raises ImportRefused."""
    invalid_codes: list[str] = []
    messages: list[str] = []
    for i, p in enumerate(prepared):
        missing = missing_required(p["metadata"], tc)
        if missing:
            code = p["metadata"].get("code")
            invalid_codes.append(code if isinstance(code, str) else "")
            messages.append(f"object {i} ({code or 'no code'}): missing {', '.join(missing)}")
    if invalid_codes:
        detail = ""
        if any(c.strip() for c in invalid_codes):
            detail = " | Required Property's Missing For " + _java_list(invalid_codes)
        props = orjson.dumps(list(tc.required_props)).decode()
        raise ImportRefused(
            ERR_REQUIRED_PROPS_VALIDATION, MSG_REQUIRED_PROPS_VALIDATION + props + detail, messages=messages
        )
    bad = [(i, p) for i, p in enumerate(prepared) if not stage_valid(p["stage"], tc)]
    if bad:
        raise ImportRefused(
            ERR_OBJECT_STAGE_VALIDATION,
            MSG_OBJECT_STAGE_VALIDATION + _java_list(tc.valid_stages),
            messages=[
                f"object {i} ({p['metadata'].get('code') or 'no code'}): stage {p['stage']!r}" for i, p in bad
            ],
        )


def new_identifier() -> str:
    """A new `do_` id, as the graph's Identifier.getUniqueIdFromTimestamp makes them."""
    return f"do_{time.time_ns() // 1000}{random.randrange(10**6):06d}"


def identifier_for(source: str) -> str:
    return source[source.rfind("/") + 1 :] if source else new_identifier()


def build_event(prepared: Mapping[str, Any], env: str, identifier: str | None = None) -> dict[str, Any]:
    """The `BE_JOB_REQUEST` knowledge-platform's import manager sends for one object."""
    source: str = prepared["source"]
    metadata: dict[str, Any] = prepared["metadata"]
    identifier = identifier or identifier_for(source)
    ets = time.time_ns() // 1_000_000
    edata: dict[str, Any] = {
        "action": "auto-create",
        "iteration": 1,
        "objectType": metadata.get("objectType", ""),
    }
    if source:
        edata["repository"] = source
    else:
        edata["identifier"] = identifier
    edata["metadata"] = metadata
    edata["collection"] = prepared["collection"] or []
    edata["stage"] = prepared["stage"]
    edata["originData"] = prepared["originData"] if source and prepared["originData"] else {}
    return {
        "eid": "BE_JOB_REQUEST",
        "ets": ets,
        "mid": f"LP.{ets}.{uuid.uuid4()}",
        "actor": {"id": "Auto Creator", "type": "System"},
        "context": {
            "pdata": {"id": "org.sunbird.platform", "ver": "1.0", "env": env},
            "channel": metadata.get("channel", ""),
        },
        "object": {"id": identifier, "ver": metadata.get("versionKey")},
        "edata": edata,
    }


# -- publishing ----------------------------------------------------------------------------------------------


class Publisher(Protocol):
    async def publish(self, topic: str, records: Sequence[tuple[str, bytes]]) -> None:
        """Send every record (key, value) and return once all are acknowledged; raise if any is not."""


class PublishError(RuntimeError):
    pass


class InMemoryPublisher:
    """Keeps what it is given (tests); `fail` makes the next publish raise."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []
        self.fail: str | None = None

    async def publish(self, topic: str, records: Sequence[tuple[str, bytes]]) -> None:
        if self.fail:
            raise PublishError(self.fail)
        self.records.extend((topic, k, v) for k, v in records)

    def events(self, topic: str | None = None) -> list[dict[str, Any]]:
        return [orjson.loads(v) for t, _k, v in self.records if topic is None or t == topic]


class KafkaPublisher:
    """confluent-kafka's Producer, driven from a worker thread so the event loop never blocks."""

    def __init__(self, bootstrap: str, timeout_s: float = 30.0) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._producer is None:
                from cokreat_jobs.ops.kafka_io import producer

                self._producer = producer(self.bootstrap)
            return self._producer

    def _send(self, topic: str, records: Sequence[tuple[str, bytes]]) -> None:
        p = self._get()
        errors: list[str] = []
        done = [0]
        lock = threading.Lock()

        def delivered(err: Any, _msg: Any) -> None:
            with lock:
                done[0] += 1
                if err is not None:
                    errors.append(err.str())

        deadline = time.monotonic() + self.timeout_s
        for key, value in records:
            while True:
                try:
                    p.produce(topic, value=value, key=key.encode(), on_delivery=delivered)
                    break
                except BufferError:
                    p.poll(0.05)
                    if time.monotonic() > deadline:
                        raise PublishError("the Kafka producer queue stayed full") from None
        # Other requests may be polling the same producer: wait for our own acknowledgements.
        while True:
            with lock:
                if done[0] >= len(records):
                    break
            if time.monotonic() > deadline:
                raise PublishError(f"Kafka did not acknowledge the events within {self.timeout_s:.0f} s")
            p.poll(0.05)
        if errors:
            raise PublishError("Kafka refused events: " + "; ".join(errors[:3]))

    async def publish(self, topic: str, records: Sequence[tuple[str, bytes]]) -> None:
        await asyncio.to_thread(self._send, topic, records)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(5)
                self._producer = None


# -- the service ---------------------------------------------------------------------------------------------


async def read_source(
    session: aiohttp.ClientSession, source: str, object_type: str, tc: TypeConfig
) -> dict[str, Any]:
    """The source object's metadata (`result.<type>`); refuses unreadable sources and wrong statuses."""
    try:
        async with session.get(source, headers={"Accept": "application/json"}) as r:
            body = await r.read()
            status = r.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ImportRefused(
            ERR_READ_SOURCE, MSG_READ_SOURCE + f"SERVER_ERROR ({exc or type(exc).__name__})"
        ) from exc
    parsed: Any = None
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if status != 200:
        code = parsed.get("responseCode") if isinstance(parsed, dict) else None
        raise ImportRefused(ERR_READ_SOURCE, MSG_READ_SOURCE + str(code or status))
    result = parsed.get("result") if isinstance(parsed, dict) else None
    metadata = result.get(object_type) if isinstance(result, dict) else None
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    if tc.valid_source_status and metadata.get("status") not in tc.valid_source_status:
        raise ImportRefused(
            ERR_SOURCE_STATUS_VALIDATION,
            MSG_SOURCE_STATUS_VALIDATION + _java_list(tc.valid_source_status),
            messages=[f"{source}: status {metadata.get('status')!r}"],
        )
    return metadata


class ImportService:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        extra = sandbox.settings.extra
        self.config = load_import_config(extra)
        publisher = extra.get("import_publisher")
        if publisher is None and extra.get("kafka"):
            publisher = KafkaPublisher(str(extra["kafka"]))
        sandbox.services["import_publisher"] = publisher

    async def run(self, call: Call, object_type: str) -> dict[str, Any]:
        cfg = self.config
        tc = cfg.for_type(object_type)
        body = call.json()
        request = body.get("request") if isinstance(body, dict) else None
        if not isinstance(request, dict):
            raise ImportRefused(ERR_INVALID_IMPORT_REQUEST, MSG_INVALID_IMPORT_REQUEST)
        objects = request_objects(request, object_type, cfg)
        given_pid = request.get("processId")
        process_id = (
            given_pid.strip() if isinstance(given_pid, str) and given_pid.strip() else str(uuid.uuid4())
        )

        sources = [str(o.get("source") or "").strip() for o in objects]
        if any(sources):
            session = self.sandbox.http()
            reads = await asyncio.gather(
                *(read_source(session, s, object_type, tc) for s in sources if s), return_exceptions=True
            )
            for outcome in reads:  # the first failure, in request order
                if isinstance(outcome, BaseException):
                    raise outcome
            it = iter(reads)
            source_meta: list[dict[str, Any] | None] = [next(it) if s else None for s in sources]  # type: ignore[misc]
        else:
            source_meta = [None] * len(objects)

        prepared = [
            prepare_object({**o, "source": s}, m, process_id, tc)
            for o, s, m in zip(objects, sources, source_meta, strict=True)
        ]
        validate_prepared(prepared, tc)

        publisher: Publisher | None = self.sandbox.services.get("import_publisher")
        if publisher is None:
            raise ImportRefused(ERR_SYSTEM_EXCEPTION, MSG_KAFKA_NOT_CONFIGURED, status=500)
        records = []
        for p in prepared:
            event = build_event(p, cfg.env)
            records.append((event["object"]["id"], orjson.dumps(event)))
        try:
            await publisher.publish(tc.output_topic, records)
        except Exception as exc:
            log.exception("publishing %d import events failed", len(records))
            raise ImportRefused(
                ERR_SYSTEM_EXCEPTION, f"Kafka Event Is Not Generated Properly. {exc}", status=500
            ) from exc
        log.info("import %s: %d %s events on %s", process_id, len(records), object_type, tc.output_topic)
        return {"processId": process_id}

    async def close(self) -> None:
        publisher = self.sandbox.services.get("import_publisher")
        close = getattr(publisher, "close", None)
        if callable(close):
            await asyncio.to_thread(close)


def register(sandbox: Sandbox) -> None:
    service = ImportService(sandbox)
    sandbox.services["imports"] = service
    sandbox.on_shutdown(service.close)

    def handler(object_type: str, api: Api):  # type: ignore[no-untyped-def]
        async def handle(call: Call) -> Response:
            try:
                return ok(api, await service.run(call, object_type))
            except ImportRefused as exc:
                raise ApiError(exc.status, exc.err, exc.errmsg, result={"messages": exc.messages}) from exc

        return handle

    content = handler("content", API_CONTENT_IMPORT)
    for path in ("/content/v4/import", "/content/v3/import", "/content/v1/import"):
        sandbox.router.add("POST", path, content, API_CONTENT_IMPORT)
    questionset = handler("questionset", API_QUESTIONSET_IMPORT)
    for path in ("/questionset/v4/import", "/questionset/v1/import"):
        sandbox.router.add("POST", path, questionset, API_QUESTIONSET_IMPORT)

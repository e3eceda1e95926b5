"""The import APIs over HTTP: `POST /content/v4/import` (also `/content/v3/import` and the gateway's
`/content/v1/import`) and `POST /questionset/v4/import` (gateway `/questionset/v1/import`), as
knowledge-platform's import manager behaves (content-service and inquiry-api-service both run it): validate
the whole request, then publish one `BE_JOB_REQUEST` per object to Kafka. The answers' `ver` is the real
controllers': 4.0 for `/content/v4` and `/content/v1`, 3.0 for `/content/v3` and the question-set paths.

The rules (validation, all or nothing, in the reference's order; the overlay; the event) are the platform's
contract, shared with `cokreat-jobs import upload`: :mod:`cokreat_jobs.sunbird.imports`. This module reads
the sources, publishes, and answers: a refusal is the envelope of its ``ImportRefused`` (400 unless said
otherwise, ``result.messages`` the validation messages).

Every event is published (key = identifier) on the type's `output_topic` and the answer waits for
Kafka's acknowledgement of each, so a 200 means the import is durable. Without a broker (`--kafka`) the
import answers 500 `ERR_SYSTEM_EXCEPTION`. The publisher is injectable: settings `import_publisher` (an
object with `async publish(topic, [(key, value), ...])`), or `sandbox.services["import_publisher"]`.

Configuration: `conf/import.conf` (keys `import.*`), overridden by the sandbox settings `import` (an object
merged key by key) and dotted `import.<...>` settings.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp
import orjson
from starlette.responses import Response

from cokreat_jobs.dev.sandbox.envelope import Api, ok
from cokreat_jobs.dev.sandbox.router import ApiError, Call
from cokreat_jobs.dev.sandbox.runtime import Sandbox
from cokreat_jobs.sunbird.imports import (
    ERR_SYSTEM_EXCEPTION,
    ImportRefused,
    TypeConfig,
    build_event,
    import_request,
    load_import_config,
    prepare_object,
    process_id_for,
    request_objects,
    source_metadata,
    source_unreachable,
    validate_prepared,
)

log = logging.getLogger("cokreat_jobs.dev.sandbox.imports")

API_CONTENT_IMPORT = Api("api.content.import", "4.0")
API_CONTENT_IMPORT_V3 = Api("api.content.import", "3.0")
"""content-service's v3 controller answers in its BaseController's default envelope version."""
API_QUESTIONSET_IMPORT = Api("api.questionset.import", "3.0")
"""inquiry-api-service's controller sets no version: its Response's default, 3.0 (v4 path included)."""

MSG_KAFKA_NOT_CONFIGURED = (
    "Kafka is not configured: the import APIs publish to Kafka; start the sandbox with --kafka BOOTSTRAP"
)


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
        raise source_unreachable(exc) from exc
    return source_metadata(source, status, body, object_type, tc)


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
        request = import_request(call.json())
        objects = request_objects(request, object_type, cfg)
        process_id = process_id_for(request)

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

    def handler(object_type: str, api: Api):
        async def handle(call: Call) -> Response:
            try:
                return ok(api, await service.run(call, object_type))
            except ImportRefused as exc:
                raise ApiError(exc.status, exc.err, exc.errmsg, result={"messages": exc.messages}) from exc

        return handle

    content = handler("content", API_CONTENT_IMPORT)
    for path in ("/content/v4/import", "/content/v1/import"):
        sandbox.router.add("POST", path, content, API_CONTENT_IMPORT)
    sandbox.router.add(
        "POST", "/content/v3/import", handler("content", API_CONTENT_IMPORT_V3), API_CONTENT_IMPORT_V3
    )
    questionset = handler("questionset", API_QUESTIONSET_IMPORT)
    for path in ("/questionset/v4/import", "/questionset/v1/import"):
        sandbox.router.add("POST", path, questionset, API_QUESTIONSET_IMPORT)

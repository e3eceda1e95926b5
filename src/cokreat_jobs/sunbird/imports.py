"""The import API's rules, as knowledge-platform's import manager applies them (`POST /content/v4/import`,
`POST /questionset/v4/import` and their gateway paths): validate the whole request, then send one
`BE_JOB_REQUEST` per object to Kafka. The sandbox's import API serves these rules over HTTP
(:mod:`cokreat_jobs.dev.sandbox.imports`), and `cokreat-jobs import upload`
(:mod:`cokreat_jobs.ops.bulk.upload`) checks its rows with them before it sends anything, so both say what
the real service says.

Validation is all or nothing (no event is sent when any object fails), in this order:

1. no ``request`` object, no list or object under ``request.<type>``, or an empty one -> 400
   ``ERR_INVALID_IMPORT_REQUEST`` (:func:`import_request`, :func:`request_objects`);
2. more than ``import.request_size_limit`` objects -> 400 ``ERR_REQUEST_LIMIT_EXCEED``;
3. each ``source`` is read (GET; the metadata is ``result.<type>``, :func:`source_metadata`): no answer
   (:func:`source_unreachable`) or not 200 -> 400 ``ERR_READ_SOURCE``; a source that returned metadata
   with a status outside ``valid_source_status`` (when that list is set) -> 400
   ``ERR_SOURCE_STATUS_VALIDATION``. An object without ``source`` (a question set too) reads nothing;
4. the source's metadata (when it returned any) overlaid by the request's, with ``source`` recorded; the
   event's ``originData`` is this metadata's (an object-level ``originData`` is ignored); ``remove_props``
   dropped, ``processId`` set, a blank ``objectType`` set to the API's type (``Content`` /
   ``QuestionSet``) (:func:`prepare_object`); a ``required_props`` key absent (or null) in the metadata
   as requested -> 400 ``ERR_REQUIRED_PROPS_VALIDATION`` naming the objects' codes
   (:func:`validate_prepared`; the shipped configs require ``channel``);
5. a non-blank ``stage`` outside ``valid_stages`` -> 400 ``ERR_OBJECT_STAGE_VALIDATION``.

These are knowledge-platform's ``ImportManager`` (platform-modules/import-manager), which both the content
service and inquiry-api-service's question-set import run, with their shipped ``import`` configs.

A refusal is an :class:`ImportRefused` (``err``, ``errmsg``, HTTP ``status``, validation ``messages``).
:func:`build_event` makes the event of one prepared object. The ``processId`` is the request's when it gives
one, else a new UUID (:func:`process_id_for`).

Configuration (:func:`load_import_config`): ``conf/import.conf`` (keys ``import.*``), overridden by a
settings mapping's ``import`` (an object merged key by key) and dotted ``import.<...>`` keys.

No I/O but reading the packaged ``import.conf``: the source read itself (an HTTP GET) is the caller's.
"""

from __future__ import annotations

import random
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cokreat_jobs.core.errors import exception_message
from cokreat_jobs.core.values import deep_merge

__all__ = [
    "ERR_INVALID_IMPORT_REQUEST",
    "ERR_OBJECT_STAGE_VALIDATION",
    "ERR_READ_SOURCE",
    "ERR_REQUEST_LIMIT_EXCEED",
    "ERR_REQUIRED_PROPS_VALIDATION",
    "ERR_SOURCE_STATUS_VALIDATION",
    "ERR_SYSTEM_EXCEPTION",
    "MSG_INVALID_IMPORT_REQUEST",
    "MSG_OBJECT_STAGE_VALIDATION",
    "MSG_READ_SOURCE",
    "MSG_REQUEST_LIMIT_EXCEED",
    "MSG_REQUIRED_PROPS_VALIDATION",
    "MSG_SOURCE_STATUS_VALIDATION",
    "OBJECT_TYPES",
    "API_OBJECT_TYPES",
    "ImportConfig",
    "ImportRefused",
    "TypeConfig",
    "build_event",
    "default_import_tree",
    "identifier_for",
    "import_request",
    "load_import_config",
    "missing_required",
    "new_identifier",
    "prepare_object",
    "process_id_for",
    "request_objects",
    "source_metadata",
    "source_unreachable",
    "stage_valid",
    "validate_prepared",
]

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
MSG_SOURCE_STATUS_VALIDATION = (
    "Source Object Status Not Qualified For Import Operation. Please Provide Valid Source With Status "
)
MSG_REQUIRED_PROPS_VALIDATION = "Validation Failed! Mandatory Properties Are "
MSG_OBJECT_STAGE_VALIDATION = "Object Stage Validation Failed! Valid Object Stages Are "
OBJECT_TYPES = ("content", "questionset")
"""The request key (and the key of a source read's result) per import API."""
API_OBJECT_TYPES = {"content": "Content", "questionset": "QuestionSet"}
"""The objectType each API stands for (its controller's): the default of a blank ``metadata.objectType``."""


# -- configuration ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeConfig:
    required_props: tuple[str, ...]
    remove_props: tuple[str, ...]
    valid_stages: tuple[str, ...]
    valid_source_status: tuple[str, ...]
    output_topic: str
    object_type: str = ""
    """The API's objectType (:data:`API_OBJECT_TYPES`): the event's when the metadata names none."""


@dataclass(frozen=True, slots=True)
class ImportConfig:
    request_size_limit: int
    env: str
    content: TypeConfig
    questionset: TypeConfig

    def for_type(self, object_type: str) -> TypeConfig:
        return self.content if object_type == "content" else self.questionset


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
        deep_merge(tree, given["import"])
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
            object_type=API_OBJECT_TYPES[name],
        )

    return ImportConfig(
        request_size_limit=int(tree.get("request_size_limit", 200)),
        env=str(tree.get("env", "dev")),
        content=type_config("content"),
        questionset=type_config("questionset"),
    )


# -- validation and events ----------------------------------------------------------------------------------


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


def import_request(body: Any) -> dict[str, Any]:
    """The ``request`` object of a parsed request body; refuses a body without one."""
    request = body.get("request") if isinstance(body, dict) else None
    if not isinstance(request, dict):
        raise ImportRefused(ERR_INVALID_IMPORT_REQUEST, MSG_INVALID_IMPORT_REQUEST)
    return request


def process_id_for(request: Mapping[str, Any]) -> str:
    """The request's ``processId`` (trimmed) when it gives a non-blank one, else a new UUID."""
    given = request.get("processId")
    return given.strip() if isinstance(given, str) and given.strip() else str(uuid.uuid4())


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
    return objects


def source_unreachable(exc: BaseException) -> ImportRefused:
    """The refusal of a source that could not be read at all (connection error, timeout, bad URL)."""
    return ImportRefused(ERR_READ_SOURCE, MSG_READ_SOURCE + f"SERVER_ERROR ({exception_message(exc)})")


def source_metadata(
    source: str, status: int, body: bytes, object_type: str, tc: TypeConfig
) -> dict[str, Any]:
    """The source object's metadata (``result.<type>``, ``{}`` when the answer has none) from the answer to
    ``GET source``; refuses an answer other than 200 and, when there is metadata, a status outside
    ``valid_source_status`` (when that list is set)."""
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
    if tc.valid_source_status and metadata and metadata.get("status") not in tc.valid_source_status:
        raise ImportRefused(
            ERR_SOURCE_STATUS_VALIDATION,
            MSG_SOURCE_STATUS_VALIDATION + _java_list(tc.valid_source_status),
            messages=[f"{source}: status {metadata.get('status')!r}"],
        )
    return metadata


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
    """One request object made ready for its event: overlaid metadata, removed props, processId, objectType.

    As the import manager does: the source's metadata (when it returned any) overlaid by the request's, and
    then ``source`` recorded; without source metadata the request's alone. The event's ``originData`` is
    the metadata's (read before ``remove_props``); the object's own ``originData`` is ignored. A blank
    ``objectType`` becomes the API's (``tc.object_type``), after the required props are checked: the
    prepared object's ``defaulted`` names it, and :func:`validate_prepared` checks the metadata without it.
    """
    source = obj.get("source") or ""
    request_metadata: dict[str, Any] = dict(obj.get("metadata") or {})
    metadata: dict[str, Any]
    if source_metadata:
        metadata = {**source_metadata, **request_metadata, "source": source}
    else:
        metadata = request_metadata
    origin = _origin_data(metadata.get("originData"))
    for prop in tc.remove_props:
        metadata.pop(prop, None)
    metadata["processId"] = process_id
    defaulted: list[str] = []
    if _blank(metadata.get("objectType")) and tc.object_type:
        metadata["objectType"] = tc.object_type
        defaulted.append("objectType")
    collection = obj.get("collection")
    stage = obj.get("stage")
    return {
        "source": source,
        "metadata": metadata,
        "collection": collection if isinstance(collection, list) else [],
        "stage": "" if stage is None else str(stage),
        "originData": origin,
        "defaulted": defaulted,
    }


def missing_required(metadata: Mapping[str, Any], tc: TypeConfig, defaulted: Sequence[str] = ()) -> list[str]:
    """The required props absent (or null) from the metadata as requested (``defaulted``: props the API
    filled in after its check, as ``objectType``)."""
    return [p for p in tc.required_props if p in defaulted or metadata.get(p) is None]


def stage_valid(stage: str, tc: TypeConfig) -> bool:
    return not stage.strip() or stage in tc.valid_stages


def validate_prepared(prepared: Sequence[Mapping[str, Any]], tc: TypeConfig) -> None:
    """Required props, then stages, over every object (the reference's order); raises ImportRefused."""
    invalid_codes: list[str] = []
    messages: list[str] = []
    for i, p in enumerate(prepared):
        missing = missing_required(p["metadata"], tc, p.get("defaulted", ()))
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
        "objectType": metadata.get("objectType", ""),  # prepare_object defaulted a blank one
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

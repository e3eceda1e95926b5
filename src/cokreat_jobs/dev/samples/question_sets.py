"""Sample question sets for the sandbox's source repository, import events and job settings pointing at a
sandbox with sqlite stores: used by the tests and the demo."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cokreat_jobs.core.config import load_config


def question(qid: str, n: int = 0) -> dict[str, Any]:
    return {
        "identifier": qid,
        "objectType": "Question",
        "name": f"Question {qid}",
        "code": f"code-{qid}",
        "mimeType": "application/vnd.sunbird.question",
        "primaryCategory": "Multiple Choice Question",
        "visibility": "Parent",
        "status": "Live",
        "keywords": ["k1", "k1", "k2"],
        "body": f"<p>What is {n} + {n}?</p>",
        "answer": f"<p>{2 * n}</p>",
        "editorState": {"question": f"<p>What is {n} + {n}?</p>", "options": [{"value": 0}]},
        "responseDeclaration": {"response1": {"cardinality": "single", "correctResponse": {"value": "0"}}},
        "interactions": {"response1": {"type": "choice"}},
    }


def question_set(
    qs_id: str,
    n_questions: int,
    *,
    accepted: list[str] | None = None,
    nested: bool = False,
    with_icon: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """A source object for the seed (a set with a unit section) and the ids of its questions."""
    qids = [f"{qs_id}_q{i}" for i in range(n_questions)]
    questions = [question(q, i) for i, q in enumerate(qids)]
    if nested:
        half = max(1, len(questions) // 2)
        children: list[dict[str, Any]] = [
            {
                "identifier": f"{qs_id}_sec1",
                "objectType": "QuestionSet",
                "name": "Section 1",
                "visibility": "Parent",
                "mimeType": "application/vnd.sunbird.questionset",
                "children": questions[:half],
            },
            *questions[half:],
        ]
    else:
        children = list(questions)
    metadata: dict[str, Any] = {
        "name": f"Set {qs_id}",
        "code": f"code-{qs_id}",
        "mimeType": "application/vnd.sunbird.questionset",
        "primaryCategory": "Practice Question Set",
        "channel": "ch1",
        "status": "Live",
        "pkgVersion": 1,
        "language": ["English", "English"],
        "instructions": {"default": "Answer every question"},
        "outcomeDeclaration": {"maxScore": {"cardinality": "single", "defaultValue": n_questions}},
        "timeLimits": {"maxTime": 3600},
    }
    files = {"assets/readme.txt": base64.b64encode(f"set {qs_id}".encode()).decode()}
    if with_icon:
        files["assets/icon.png"] = base64.b64encode(b"\x89PNG fake icon " + qs_id.encode()).decode()
    if accepted is not None:
        metadata["acceptedContributions"] = accepted
    obj = {
        "identifier": qs_id,
        "objectType": "QuestionSet",
        "metadata": metadata,
        "hierarchy": {"children": children},
        "files": files,
    }
    return obj, qids


def import_event(
    base_url: str,
    qs_id: str,
    *,
    collection: list[dict[str, str]] | None = None,
    object_type: str = "QuestionSet",
    extra_metadata: dict[str, Any] | None = None,
    n: int = 0,
) -> dict[str, Any]:
    kind = object_type.lower()
    metadata: dict[str, Any] = {
        "identifier": qs_id,
        "name": f"Set {qs_id}",
        "objectType": object_type,
        "downloadUrl": f"{base_url}/source-ecar/{qs_id}/{qs_id}.ecar",
        "processId": f"proc-{n}",
        **(extra_metadata or {}),
    }
    return {
        "eid": "BE_JOB_REQUEST",
        "ets": 1617174912468 + n,
        "mid": f"LP.{n}.{qs_id}",
        "actor": {"id": "Auto Creator", "type": "System"},
        "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0", "env": "dev"}, "channel": "ch1"},
        "object": {"id": qs_id, "ver": "1"},
        "edata": {
            "action": "auto-create",
            "iteration": 1,
            "objectType": object_type,
            "repository": f"{base_url}/api/{kind}/v1/read/{qs_id}",
            "metadata": metadata,
            "collection": collection or [],
        },
    }


def job_overrides(base_url: str, storage_dir: Path, graph_db: Path, external_db: Path) -> list[str]:
    return [
        f"service.content.basePath={base_url}",
        f"source.baseUrl={base_url}/api",
        "graph.store=sqlite",
        f"graph.sqlite.url=sqlite:///{graph_db}",
        "external.store=sqlite",
        f"external.sqlite.url=sqlite:///{external_db}",
        "cloud_storage_type=local",
        f"cloud_storage.local.path={storage_dir}",
        f"cloud_storage.public_base_url={base_url}/_files",
        'http.allow_private_networks=["127.0.0.1"]',
        "http.retry.backoff_ms=20",
        "http.retry.max_attempts=6",
        "auto_creator_v2.link_wait_backoff_ms=50",
        f"auto_creator_v2.temp_file_location={storage_dir.parent / 'acv2-tmp'}",
    ]


def config(base_url: str, tmp: Path, extra: list[str] | None = None) -> Any:
    overrides = job_overrides(base_url, tmp / "storage", tmp / "graph.db", tmp / "external.db")
    return load_config("auto-creator-v2", overrides=[*overrides, *(extra or [])], env={})


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def import_then_link(cfg: Any, event: dict[str, Any]) -> Any:
    """Both operators of the job in one process, as the Flink graph chains them: the import, then, for an
    event it hands on, the link stage with the request as it crosses the wire (JSON)."""
    from cokreat_jobs.jobs.auto_creator_v2.linker import CollectionLinker
    from cokreat_jobs.jobs.auto_creator_v2.processor import AutoCreatorV2

    importer, linker = AutoCreatorV2.from_config(cfg), CollectionLinker.from_config(cfg)
    try:
        outcome = await importer.process(event)
        if outcome.kind != "handed-on":
            return outcome
        request = outcome.next_request
        assert request is not None and outcome.next_key == request["identifier"]
        return await linker.process(json.loads(json.dumps(request)))
    finally:
        await importer.close()
        await linker.close()

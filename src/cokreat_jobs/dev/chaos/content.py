"""The content jobs under `cokreat-jobs chaos`: content-auto-creator and auto-creator-v2.

Scenarios `tm-kill:<job>`, `broker-bounce:<job>` and `service-storm:<job>` run the same faults as
user-delete's (`faults.tm_kill`, `faults.broker_bounce`, `faults.service_storm`) on the same stack, with a
batch and an accounting of their own (`ContentRun`, the life cycle of `accounting.Run`):

- content-auto-creator: one event per new content (a pdf re-hosted from the sandbox's file server or, one
  in five, downloaded from the sandbox's Drive stand-in with a service account made for the run, so its key
  is really read and used; most linked into one or two units of two seeded collections). Its effect: the
  content `Live` in the sandbox (`GET /_sandbox/nodes/{id}`) with its origin, and a child of each of its
  units exactly once (`GET /_sandbox/hierarchies/{collection}`). A duplicate effect: a second successful
  `POST /content/v4/create` of an identifier in the request log, two contents with one origin (search), or a
  child more than once under a unit.
- auto-creator-v2: one import event per question set (seeded in the sandbox's source repository, served as
  an ECAR), each linked into one unit. Its effect: the set's node in the sqlite graph store (which the
  sandbox reads too) and the set once under its unit. A duplicate effect: a child more than once under a unit.

An event is lost when it has neither its effect nor a record (with a reason) in the failed topic.
Re-processing (every effectful call repeated after a recovery, whatever its answer) is counted from the
request log (`effects`) and reported. The data-protection check also reads the failed contents'
`importError`.
"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.dev.chaos.accounting import Run, failed_records, judge
from cokreat_jobs.dev.chaos.config import chaos_overrides, seeded_service_account
from cokreat_jobs.dev.chaos.faults import broker_bounce, service_storm, tm_kill
from cokreat_jobs.dev.chaos.protection import protection_check
from cokreat_jobs.dev.chaos.report import Result
from cokreat_jobs.dev.chaos.stack import Stack
from cokreat_jobs.ops.flink_rest import FlinkRest

CAC = "content-auto-creator"
ACV2 = "auto-creator-v2"
JOBS = (CAC, ACV2)
CHANNEL = "ch-chaos"
PDF = b"%PDF-1.4 chaos lesson\n" + b"x" * 4000
DRIVE_PDF = b"%PDF-1.4 chaos lesson from Drive\n" + b"d" * 3000
DRIVE_EVERY = 5  # one event in five takes its artifact from Drive

# the paths each job calls (storm targets and the requests that are "its" in the log)
PATHS = {
    CAC: ["/content/v4/*", "/v3/search", "/content/v3/hierarchy*", "/drive/v3/files/*"],
    ACV2: ["/api/questionset/v1/read/*", "/api/question/v1/read/*", "/source-ecar/*", "/content/*"],
}


def _matches(path: str, globs: Iterable[str]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(path, g) for g in globs)


class Batch:
    """The records, the identifiers whose effect is expected and the (collection, unit) pairs of each."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.links: dict[str, list[tuple[str, str]]] = {}
        self.collections: list[dict[str, Any]] = []
        self.hostile: dict[int, str] = {}  # none: the poison scenario is user-delete's
        self.drive_files: list[dict[str, Any]] = []

    @property
    def ids(self) -> list[str]:
        return list(self.links)


def _collections(tag: str, n_coll: int, n_units: int) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    cols, units = [], []
    for c in range(n_coll):
        cid = f"do_chaos_{tag}_book{c}"
        us = [f"{cid}_u{u}" for u in range(n_units)]
        cols.append({"identifier": cid, "name": f"Chaos book {c}", "channel": CHANNEL, "units": us})
        units += [(cid, u) for u in us]
    return cols, units


def cac_batch(stack: Stack, tag: str, n: int) -> Batch:
    """n new pdf contents (one in five from Drive); 3 in 4 linked (every third of those into a second unit
    too)."""
    import base64

    base = stack.server.url
    folder = stack.storage_dir / "source" / tag
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lesson.pdf").write_bytes(PDF)
    b = Batch()
    b.collections, units = _collections(tag, 2, 2)
    drive_id = f"1ChaosDriveFile{tag}"
    b.drive_files = [
        {
            "id": drive_id,
            "name": "Chaos lesson.pdf",
            "mimeType": "application/pdf",
            "content_base64": base64.b64encode(DRIVE_PDF).decode(),
        }
    ]
    for i in range(n):
        oid = f"do_chaos_{tag}_c{i:05d}"
        pairs: list[tuple[str, str]] = []
        if i % 4 != 3:
            pairs = [units[i % len(units)]] + ([units[(i + 1) % len(units)]] if i % 3 == 0 else [])
        event = {
            "eid": "BE_JOB_REQUEST",
            "ets": 1617174912468 + i,
            "mid": f"LP.chaos.{i}.{uuid.uuid4()}",
            "actor": {"id": "Auto Creator", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}, "channel": CHANNEL},
            "object": {"id": oid, "ver": "1"},
            "edata": {
                "action": "auto-create",
                "objectType": "Content",
                "repository": f"https://dock.sunbirded.org/api/content/v1/read/{oid}",
                "iteration": 1,
                "metadata": {
                    "name": f"Chaos {oid}",
                    "code": f"code-{oid}",
                    "mimeType": "application/pdf",
                    "primaryCategory": "Learning Resource",
                    "contentType": "Resource",
                    "framework": "NCF",
                    "artifactUrl": (
                        f"https://drive.google.com/uc?export=download&id={drive_id}"
                        if i % DRIVE_EVERY == DRIVE_EVERY - 1
                        else f"{base}/_files/source/{tag}/lesson.pdf"
                    ),
                    "lastPublishedBy": "chaos-publisher",
                },
                **({"collection": [{"identifier": c, "unitId": u} for c, u in pairs]} if pairs else {}),
            },
        }
        b.records.append((oid.encode(), json.dumps(event).encode()))
        b.links[oid] = pairs
    return b


def acv2_batch(stack: Stack, tag: str, n: int) -> tuple[Batch, list[dict[str, Any]]]:
    """n question sets (1-4 questions, every third nested in a section), each linked into one unit."""
    from cokreat_jobs.dev.samples.question_sets import import_event, question_set

    base = stack.server.url
    b = Batch()
    b.collections, units = _collections(tag, 2, 3)
    sources = []
    for i in range(n):
        qs_id = f"do_chaos_{tag}_qs{i:05d}"
        obj, _ = question_set(qs_id, 1 + i % 4, nested=i % 3 == 0)
        sources.append(obj)
        c, u = units[i % len(units)]
        event = import_event(base, qs_id, collection=[{"identifier": c, "unitId": u}], n=i)
        b.records.append((qs_id.encode(), json.dumps(event).encode()))
        b.links[qs_id] = [(c, u)]
    return b, sources


def job_config(
    stack: Stack,
    job: str,
    topic: str,
    extra: Iterable[str] = (),
    service_account: dict[str, str] | None = None,
    defaults: bool = False,
) -> JobConfig:
    """The chaos settings of user-delete's `config.job_config` (restart strategy, checkpoints, retries, the
    seeded secrets), pointed at the sandbox as the content jobs' e2e tests do; content-auto-creator reads
    Drive links with `service_account` (its key is one of the run's seeded secrets)."""
    base = stack.server.url
    port = base.rsplit(":", 1)[1]
    tmp = stack.home / "job-tmp" / job
    tmp.mkdir(parents=True, exist_ok=True)
    common = [
        *chaos_overrides(stack, topic, defaults),
        f'http.allow_private_networks=["127.0.0.1:{port}"]',
        "cloud_storage_type=local",
        f"cloud_storage.local.path={stack.storage_dir.resolve()}",
        f"cloud_storage.public_base_url={base}/_files",
    ]
    if job == CAC:
        sa = service_account or seeded_service_account(f"{base}/oauth2/token")[0]
        specific = [
            f"service.search.basePath={base}",
            f"service.content_service.basePath={base}",
            f'content_auto_creator.artifact_upload_allowed_source=["{base}/_files/source/","drive.google.com"]',
            f"content_auto_creator.temp_file_location={tmp}",
            "content_auto_creator.state_wait_backoff_ms=100",
            # the Drive stand-in: a JWT signed with the seeded key is exchanged for a token at token_uri
            f"content_auto_creator.drive_api_base={base}",
            f"content_auto_creator.g_service_acct_cred={json.dumps(json.dumps(sa))}",
        ]
    else:
        specific = [
            f"service.content.basePath={base}",
            f"source.baseUrl={base}/api",
            "graph.store=sqlite",
            f"graph.sqlite.url=sqlite:///{stack.graph_db.resolve()}",
            "external.store=sqlite",
            f"external.sqlite.url=sqlite:///{stack.external_db.resolve()}",
            "auto_creator_v2.link_wait_backoff_ms=50",
            f"auto_creator_v2.temp_file_location={tmp}",
            "task.link-collection.parallelism=2",
        ]
    return load_config(job, overrides=[*common, *specific, *extra], env={})


class ContentRun(Run):
    """A content job's run: its batch seeded, the job submitted, accounted from the sandbox's nodes and trees
    (and the graph store for auto-creator-v2), its request log and the failed topic."""

    left_label = "events without their effect"

    def __init__(
        self,
        stack: Stack,
        job: str,
        name: str,
        n: int,
        rate: float,
        extra: Iterable[str] = (),
        defaults: bool = False,
    ) -> None:
        from cokreat_jobs.ops.cluster import submit_job

        self.stack, self.name = stack, name
        self.job = job
        self.defaults = defaults
        self.recoveries_ms: list[int] = []
        tag = uuid.uuid4().hex[:6]
        self.topic = f"chaos-{name.replace(':', '-')}-{tag}"
        # the run's own service account: its key is a secret the jobs really read (content-auto-creator's
        # Drive downloads), sought in the logs, the failed topic and importError
        sa, self.run_secrets = seeded_service_account(f"{stack.server.url}/oauth2/token")
        self.cfg = job_config(stack, job, self.topic, extra, sa, defaults)
        self.rest = FlinkRest(stack.cluster.rest_url)
        self.seq0 = self.last_seq()
        self._log: list[dict[str, Any]] = []
        self._log_seq = self.seq0
        self._done: set[str] = set()
        stack.sandbox.clear_faults()
        for path in PATHS[job]:  # every call a little slow, as a real service is
            stack.sandbox.add_fault(path=path, latency_ms=10)
        if job == CAC:
            self.cbatch = cac_batch(stack, tag, n)
            stack.sandbox.seed(collections=self.cbatch.collections, drive_files=self.cbatch.drive_files)
        else:
            self.cbatch, sources = acv2_batch(stack, tag, n)
            stack.sandbox.seed(collections=self.cbatch.collections, source_objects=sources)
        self.batch = self.cbatch  # type: ignore[assignment]
        self.launch(submit_job, self.cbatch.records, rate)

    # -- the request log, read incrementally

    def requests(self) -> list[dict[str, Any]]:
        """The job's requests (on its paths) since the run started."""
        new = self.stack.sandbox.requests(since=self._log_seq)
        if new:
            self._log_seq = max(r["seq"] for r in new)
            self._log += [r for r in new if _matches(r["path"], PATHS[self.job])]
        return self._log

    def effect_requests(self) -> list[dict[str, Any]]:
        """Successful writes: content-auto-creator's create/upload/review/publish and both jobs' links."""
        return [r for r in self.requests() if r["method"] != "GET" and 200 <= r["status"] < 300]

    # -- the state

    def _trees(self) -> dict[str, dict[str, Any]]:
        out = {}
        for col in self.cbatch.collections:
            out[col["identifier"]] = self.stack.sandbox.hierarchy(col["identifier"])
        return out

    def _children(self) -> Counter[tuple[str, str, str]]:
        """(collection, unit, child) -> how many times the child is under the unit."""
        seen: Counter[tuple[str, str, str]] = Counter()
        for cid, tree in self._trees().items():
            for unit in (tree or {}).get("children") or []:
                for child in unit.get("children") or []:
                    seen[(cid, unit["identifier"], child["identifier"])] += 1
        return seen

    def _stored(self, oid: str) -> bool:
        """The content Live with its origin (content-auto-creator); the set's node in the graph store."""
        if self.job == ACV2:
            from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync

            if not self.stack.graph_db.exists():
                return False
            try:
                node = read_node_sync(str(self.stack.graph_db), oid)
            except Exception:  # the store being written: read again on the next poll
                return False
            return node is not None and node.get("IL_FUNC_OBJECT_TYPE") == "QuestionSet"
        try:
            with urllib.request.urlopen(f"{self.stack.server.url}/_sandbox/nodes/{oid}", timeout=30) as r:
                node = json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise
        return node.get("status") == "Live" and node.get("origin") == oid

    def effects(self, children: Counter[tuple[str, str, str]] | None = None, cached: bool = True) -> set[str]:
        """The identifiers whose effect is in the final state: stored, and under each of their units."""
        children = self._children() if children is None else children
        done = set(self._done) if cached else set()
        for oid, pairs in self.cbatch.links.items():
            if oid in done:
                continue
            if all(children[(c, u, oid)] >= 1 for c, u in pairs) and self._stored(oid):
                done.add(oid)
        if cached:
            self._done = done
        return done

    def remaining(self) -> set[str]:
        return set(self.cbatch.links) - self.effects()

    def failed_users(self) -> set[str]:
        """The identifiers with a record (with a reason) in the failed topic."""
        out = set()
        for r in self.failed.records:
            obj = r["object"] if isinstance(r.get("object"), dict) else {}
            oid = obj.get("id")
            if (
                isinstance(oid, str)
                and (r.get("failInfo") or {}).get("reason")
                and r.get("jobName") == self.job
            ):
                out.add(oid)
        return out

    def batch_ids(self) -> list[str]:
        return list(self.cbatch.links)

    def _node(self, oid: str) -> dict[str, Any] | None:
        """The content's node: the sandbox's (content-auto-creator), the graph store's (auto-creator-v2)."""
        if self.job == ACV2:
            from cokreat_jobs.adapters.stores.sqlite_store import read_node_sync

            if not self.stack.graph_db.exists():
                return None
            node: dict[str, Any] | None = read_node_sync(str(self.stack.graph_db), oid)
            return node
        try:
            with urllib.request.urlopen(f"{self.stack.server.url}/_sandbox/nodes/{oid}", timeout=30) as r:
                found: dict[str, Any] = json.loads(r.read())
                return found
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def import_errors(self, ids: Iterable[str]) -> list[str]:
        """The importError of each content that has one (the failed ones: the job marks them Failed)."""
        out = []
        for oid in ids:
            node = self._node(oid) or {}
            if node.get("importError"):
                out.append(str(node["importError"]))
        return out

    def origin_duplicates(self) -> list[str]:
        """Origins with more than one content (a content created twice under different identifiers), from
        the sandbox's search; content-auto-creator's only (auto-creator-v2 writes the graph by identifier)."""
        if self.job != CAC:
            return []
        ids = list(self.cbatch.links)
        per_origin: dict[str, set[str]] = {}
        for i in range(0, len(ids), 50):
            chunk = ids[i : i + 50]
            body = {
                "request": {
                    "filters": {"origin": chunk, "status": []},
                    "fields": ["identifier", "origin"],
                    "limit": 1000,
                }
            }
            req = urllib.request.Request(
                f"{self.stack.server.url}/v3/search",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                result = json.loads(r.read()).get("result") or {}
            for hit in result.get("content") or []:
                per_origin.setdefault(str(hit.get("origin")), set()).add(str(hit.get("identifier")))
        return origin_duplicates(per_origin)

    def account(self, res: Result) -> None:
        self.failed.poll(2.0)
        children = self._children()
        ids = set(self.cbatch.links)
        done = self.effects(children, cached=False)
        failed_ids = self.failed_users()
        res.events = len(self.cbatch.records)
        res.deleted = len(done)  # events with their effect
        rep = self.reprocessing(res)
        # duplicate effects: a second successful create of an identifier (request log), two contents with one
        # origin (search), a child more than once under a unit (the trees)
        dup_links = sorted(k for k, c in children.items() if c > 1 and k[2] in ids)
        judge(
            res,
            ids,
            done,
            failed_ids,
            rep.duplicate_effects
            + self.origin_duplicates()
            + [f"link {c}/{u}/{oid} (x{children[(c, u, oid)]})" for c, u, oid in dup_links],
        )
        # a child under a unit it was not sent to
        wanted = {(c, u, oid) for oid, pairs in self.cbatch.links.items() for c, u in pairs}
        misplaced = [k for k in children if k[2] in ids and k not in wanted]
        failed_records(res, self.failed.records, self.job)
        res.fault.setdefault("accounting", {})
        res.fault["accounting"] = {
            "with_effect": len(done),
            "failed_ids": len(failed_ids),
            "creates": sum(
                1
                for r in self.requests()
                if r["method"] == "POST" and r["path"] == "/content/v4/create" and 200 <= r["status"] < 300
            ),
            "links": sum(1 for k in children if k[2] in ids),
            "drive_downloads": sum(
                1
                for r in self.requests()
                if r["path"].startswith("/drive/v3/files/") and 200 <= r["status"] < 300
            ),
        }
        if misplaced:
            res.problems.append(f"{len(misplaced)} children under a unit not asked: {misplaced[:3]}")
        if self.producer.errors:
            res.problems.append(f"producer errors: {self.producer.errors[:3]}")
        res.restarts = self.restarts()
        res.protection = protection_check(
            self.stack,
            [],
            self.failed.records,
            markers=(f"{self.job} success".encode(), b'"outcome":"success"'),
            secrets=self.run_secrets,
            texts=self.import_errors(failed_ids),
        )
        if res.protection["problems"]:
            res.problems += res.protection["problems"]
        self.check_settings(res)


def origin_duplicates(per_origin: dict[str, set[str]]) -> list[str]:
    """ "origin <o> (<ids>)" for each origin with more than one content identifier."""
    return [f"origin {o} ({', '.join(sorted(i))})" for o, i in sorted(per_origin.items()) if len(i) > 1]


# ----------------------------------------------------------------------------------------- scenarios
#
# Batch sizes: the content jobs make 6-8 service calls per event, so their batches are a few hundred events
# (full) and a few dozen (short) at a few events per second.


def scenario_tm_kill(job: str, stack: Stack, short: bool, events: int | None) -> Result:
    res = Result(f"tm-kill:{job}", short)
    n = events or (40 if short else 300)
    kills = 1 if short else 3
    # the batch outlasts every kill and its recovery (~25 s each), so the last kill still meets a backlog
    rate = 4.0 if short else min(5.0, n / (kills * 30 + 15))
    run = ContentRun(stack, job, res.scenario, n, rate)
    return tm_kill(stack, res, run, n, kills)


def scenario_broker_bounce(job: str, stack: Stack, short: bool, events: int | None) -> Result:
    res = Result(f"broker-bounce:{job}", short)
    n = events or (40 if short else 300)
    rate = 4.0 if short else 5.0
    run = ContentRun(stack, job, res.scenario, n, rate)
    return broker_bounce(stack, res, run, n, 5 if short else 15)


def scenario_service_storm(job: str, stack: Stack, short: bool, events: int | None) -> Result:
    res = Result(f"service-storm:{job}", short)
    storm_s = 10 if short else 60
    rate = 3.0 if short else 5.0
    n = events or int(rate * (storm_s + 5))
    # as user-delete's storm: hung calls give up after 2 s, few attempts, so some events run out of retries
    run = ContentRun(
        stack,
        job,
        res.scenario,
        n,
        rate,
        ["http.read_timeout_ms=2000", "http.retry.max_attempts=3", "http.retry.backoff_ms=100"],
    )
    return service_storm(stack, res, run, storm_s, [(None, p) for p in PATHS[job]], PATHS[job])


KINDS: dict[str, Callable[[str, Stack, bool, int | None], Result]] = {
    "tm-kill": scenario_tm_kill,
    "broker-bounce": scenario_broker_bounce,
    "service-storm": scenario_service_storm,
}
# `<fault>:<job>`, in this order (`cokreat-jobs chaos` runs them after user-delete's)
SCENARIOS = tuple(f"{kind}:{job}" for job in JOBS for kind in KINDS)


def run_scenario(name: str, stack: Stack, short: bool, events: int | None) -> Result:
    """`<kind>:<job>`, e.g. `tm-kill:auto-creator-v2`."""
    kind, job = name.split(":", 1)
    if job not in JOBS or kind not in KINDS:
        raise ValueError(f"unknown scenario {name}")
    return KINDS[kind](job, stack, short, events)


RUNNERS: dict[str, Callable[[Stack, bool, int | None], Result]] = {
    name: functools.partial(run_scenario, name) for name in SCENARIOS
}

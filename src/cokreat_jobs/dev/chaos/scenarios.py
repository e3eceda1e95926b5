"""`cokreat-jobs chaos`: fault-injection scenarios on a real standalone Flink cluster, with full accounting.

Each scenario runs user-delete (parallelism 2) on a standalone cluster (1 job manager, 2 task managers, one
slot each, so both take part and any task manager killed held a running task), checkpoints every 2 s, an
exponential-delay restart strategy without an attempt limit and tolerated checkpoint failures, against a real
Kafka broker and the sandbox. A known batch is produced at a fixed rate, the fault is injected, the batch is
waited for, and every event is then accounted for from the sandbox's state (which users are gone), its
request log (how many successful deletes each user got) and the failed topic (each with a reason). The job's
own counters restart with a task manager, so they are not used here.

A scenario passes only with 0 events lost, 0 duplicate effects (no user answered 200 on delete twice) and
every failed event in the failed topic with a reason; a scenario whose fault was not actually injected (no
task manager killed, the broker never down, no fault answered) fails.

Scenarios: tm-kill, broker-bounce, service-storm, poison, soak. `short=True` is the CI form (`make test`).

The content jobs (content-auto-creator, auto-creator-v2) run tm-kill, broker-bounce and service-storm as
`<fault>:<job>` (e.g. `tm-kill:auto-creator-v2`) with the same faults and an accounting of their own
(chaos_jobs.py): the content Live / the set in the graph store, each child once under its unit, no second
successful create.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.dev.stack.flink_cluster import FlinkCluster
from cokreat_jobs.dev.stack.kafka import KafkaBroker
from cokreat_jobs.dev.stack.sandbox import SandboxServer
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient
from cokreat_jobs.ops.flink_rest import FlinkRest

JOB = "user-delete"
DELETE_GLOB = "/program/v1/user/*"
USER_DELETE_SCENARIOS = ("tm-kill", "broker-bounce", "service-storm", "poison", "soak")
# the content jobs' scenarios (chaos_jobs.py): `<fault>:<job>`
CONTENT_JOBS = ("content-auto-creator", "auto-creator-v2")
CONTENT_SCENARIOS = tuple(
    f"{kind}:{job}" for job in CONTENT_JOBS for kind in ("tm-kill", "broker-bounce", "service-storm")
)
SCENARIOS = USER_DELETE_SCENARIOS + CONTENT_SCENARIOS

# Known secrets seeded into every chaos run's configuration: the data-protection check greps the cluster's
# logs and the failed topic for them (and for the run's user ids).
SEEDED_SECRET = "chaos-SECRET-7f3a9c1e5b"
SEEDED_SA_KEY = "-----BEGIN PRIVATE KEY-----chaosSAkey4d2b8e-----END PRIVATE KEY-----"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """A broker, a sandbox and a standalone Flink cluster (1 JM + 2 TMs) under one directory."""

    home: Path
    broker: KafkaBroker = field(init=False)
    server: SandboxServer = field(init=False)
    cluster: FlinkCluster = field(init=False)
    sandbox: SandboxClient = field(init=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.broker = KafkaBroker(self.home / "kafka")
        self.server = SandboxServer(
            self.home / "sandbox",
            storage_dir=self.storage_dir,
            # auto-creator-v2 writes these stores; the sandbox's content APIs read what it wrote
            graph_store=f"sqlite:///{self.graph_db.resolve()}",
            external_store=f"sqlite:///{self.external_db.resolve()}",
        )
        self.cluster = FlinkCluster(
            self.home / "flink",
            taskmanagers=2,
            slots_per_taskmanager=1,
            extra_conf={
                "heartbeat.interval": 2000,
                "execution.checkpointing.interval": 2000,
            },
        )

    @property
    def tmp_dir(self) -> Path:
        return self.cluster.tmp_dir

    @property
    def storage_dir(self) -> Path:
        return self.home / "sandbox" / "storage"

    @property
    def graph_db(self) -> Path:
        return self.home / "stores" / "graph.db"

    @property
    def external_db(self) -> Path:
        return self.home / "stores" / "external.db"

    def start(self) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.graph_db.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self.broker.start()
        self.server.start()
        self.sandbox = SandboxClient(self.server.url)
        # task managers and their Python workers put their temp files here, so growth is measurable
        os.environ["TMPDIR"] = str(self.tmp_dir.resolve())
        self.cluster.start()
        _log(f"stack up in {time.monotonic() - t0:.0f} s under {self.home}")

    def stop(self) -> None:
        for stop in (self.cluster.stop, self.reap_orphan_workers, self.server.stop, self.broker.stop):
            try:
                stop()
            except Exception as e:  # keep stopping the rest
                _log(f"stop: {e}")

    def reap_orphan_workers(self) -> None:
        """Stop the Python workers a SIGKILLed task manager left behind. Such a worker (and the
        `pyflink-udf-runner.sh` shell and `tee` that log it to this stack's `flink-python-udf-boot.log`)
        outlives its task manager, holding ~200 MiB, until it is stopped; found by that `tee`'s argument."""
        import psutil

        home = str(self.home.resolve())
        reaped: list[int] = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = p.info.get("cmdline") or []
            if not (len(cmd) >= 2 and cmd[0].endswith("tee") and cmd[-1].startswith(home)):
                continue
            if not cmd[-1].endswith("flink-python-udf-boot.log"):
                continue
            try:
                runner = p.parent()
                if runner is None or "pyflink-udf-runner" not in " ".join(runner.cmdline()):
                    continue
                for child in runner.children():
                    if child.pid != p.pid:
                        child.terminate()
                        reaped.append(child.pid)
            except psutil.Error:
                continue
        # a worker whose shell and tee are gone too: known by the stack's FLINK_PID_DIR in its environment
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = " ".join(p.info.get("cmdline") or [])
            if "beam_boot" not in cmd or p.pid in reaped:
                continue
            try:
                if p.environ().get("FLINK_PID_DIR", "").startswith(home):
                    p.terminate()
                    reaped.append(p.pid)
            except psutil.Error:
                continue
        if reaped:
            _log(f"stopped {len(reaped)} Python workers left by killed task managers: {reaped}")


# ------------------------------------------------------------------------------------------------ Kafka


class RateProducer(threading.Thread):
    """Sends records at a fixed rate (records/s) in the background; keeps each delivery's partition/offset."""

    def __init__(self, brokers: str, topic: str, records: list[tuple[bytes, bytes]], rate: float) -> None:
        super().__init__(daemon=True)
        self.brokers, self.topic, self.records, self.rate = brokers, topic, records, rate
        self.delivered: dict[int, tuple[int, int]] = {}
        self.errors: list[str] = []
        self.sent = 0
        self.finished_at: float | None = None

    def run(self) -> None:
        p = Producer(
            {
                "bootstrap.servers": self.brokers,
                "message.max.bytes": 4 * 1024 * 1024 + 64 * 1024,
                "linger.ms": 5,
                "enable.idempotence": True,
                "message.timeout.ms": 300000,
                "log_level": 0,
            }
        )
        start = time.monotonic()
        for n, (key, value) in enumerate(self.records):
            wait = start + n / self.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)

            def cb(err: Any, msg: Any, n: int = n) -> None:
                if err is not None:
                    self.errors.append(f"record {n}: {err}")
                else:
                    self.delivered[n] = (msg.partition(), msg.offset())

            while True:
                try:
                    p.produce(self.topic, value=value, key=key, on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.1)
            self.sent += 1
            p.poll(0)
        p.flush(300)
        self.finished_at = time.monotonic()


class TopicReader:
    """Reads a topic from the beginning, incrementally (the failed topic exists only once it has a record)."""

    def __init__(self, brokers: str, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": brokers,
                "group.id": f"chaos-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "log_level": 0,
                "fetch.message.max.bytes": 8 * 1024 * 1024,
            }
        )
        self.assigned = False
        self.records: list[dict[str, Any]] = []

    def poll(self, seconds: float = 1.0) -> list[dict[str, Any]]:
        if not self.assigned:
            try:
                md = self.consumer.list_topics(self.topic, timeout=2)
            except Exception:
                return self.records
            meta = md.topics.get(self.topic)
            if meta is None or meta.error is not None or not meta.partitions:
                return self.records
            self.consumer.assign([TopicPartition(self.topic, p, 0) for p in meta.partitions])
            self.assigned = True
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                continue
            try:
                rec = json.loads(msg.value() or b"")
            except ValueError:
                rec = {"unparseable": True}
            self.records.append(rec if isinstance(rec, dict) else {"unparseable": True})
        return self.records

    def close(self) -> None:
        self.consumer.close()


# ------------------------------------------------------------------------------------------- the batch


def delete_event(uid: Any, n: int, action: str = "delete-user") -> bytes:
    return json.dumps(
        {
            "eid": "BE_JOB_REQUEST",
            "ets": 1617174912468 + n,
            "mid": f"LP.chaos.{n}.{uuid.uuid4()}",
            "actor": {"id": "delete-user", "type": "System"},
            "context": {"pdata": {"id": "org.sunbird.lern", "ver": "1.0"}, "channel": "ch1"},
            "object": {"id": uid, "type": "User"},
            "edata": {"action": action, "userId": uid},
        }
    ).encode()


HOSTILE_KINDS = ("not-json", "invalid-utf8", "json-array", "wrong-types", "deep-nesting", "2mb-record")


def hostile_record(kind: str, n: int) -> bytes:
    if kind == "not-json":
        return f"this is not json #{n} <html>".encode()
    if kind == "invalid-utf8":
        return b"\xff\xfe\xfa\x80 invalid utf-8 #" + str(n).encode()
    if kind == "json-array":
        return json.dumps([{"edata": {"userId": f"x{n}"}}, n]).encode()
    if kind == "wrong-types":
        return json.dumps(
            {"mid": f"wrong-{n}", "object": {"id": n}, "edata": {"action": "delete-user", "userId": [n]}}
        ).encode()
    if kind == "deep-nesting":
        depth = 100_000
        return b'{"edata": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "2mb-record":
        pad = "x" * (2 * 1024 * 1024)
        return json.dumps({"edata": {"action": "delete-user", "userId": f"big-{n}"}, "pad": pad}).encode()
    raise ValueError(kind)


@dataclass
class Batch:
    users: list[str]
    records: list[tuple[bytes, bytes]]
    hostile: dict[int, str]  # record index -> kind


def make_batch(prefix: str, n: int, hostile_fraction: float = 0.0) -> Batch:
    users = [f"{prefix}-u{i:05d}" for i in range(n)]
    records: list[tuple[bytes, bytes]] = [(u.encode(), delete_event(u, i)) for i, u in enumerate(users)]
    hostile: dict[int, str] = {}
    if hostile_fraction > 0:
        count = max(len(HOSTILE_KINDS), round(n * hostile_fraction))
        step = max(1, len(records) // count)
        for j in range(count):
            kind = HOSTILE_KINDS[j % len(HOSTILE_KINDS)]
            at = min(len(records), j * step + step // 2 + j)
            records.insert(at, (f"hostile-{j}".encode(), hostile_record(kind, j)))
        hostile = {i: _kind_of(r[1]) for i, r in enumerate(records) if r[0].startswith(b"hostile-")}
    return Batch(users, records, hostile)


def _kind_of(value: bytes) -> str:
    if len(value) > 1024 * 1024:
        return "2mb-record"
    if value.startswith(b"this is not json"):
        return "not-json"
    if value.startswith(b"\xff"):
        return "invalid-utf8"
    if value.startswith(b"["):
        return "json-array"
    if value.startswith(b'{"mid": "wrong-'):
        return "wrong-types"
    if value.startswith(b'{"edata": ['):
        return "deep-nesting"
    return "2mb-record"


# ------------------------------------------------------------------------------------------- a scenario


@dataclass
class Result:
    scenario: str
    short: bool
    events: int = 0
    hostile: int = 0
    deleted: int = 0
    lost: int = 0
    duplicates: int = 0
    failed: int = 0
    failed_with_reason: int = 0
    failed_reasons: dict[str, int] = field(default_factory=dict)
    replayed: int = 0
    restarts: int = -1
    fault: dict[str, Any] = field(default_factory=dict)
    recovery_s: list[float] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    protection: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def chaos_overrides(stack: Stack, topic: str) -> list[str]:
    """What every chaos run of every job sets: its topics, parallelism 2, checkpoints every 2 s, a restart
    strategy that never gives up, retries that outlast a storm, DEBUG logs and a seeded secret (for the
    data-protection check)."""
    return [
        f"kafka.broker-servers={stack.broker.bootstrap}",
        f"kafka.input.topic={topic}",
        f"kafka.failed.topic={topic}.failed",
        f"kafka.groupId=g-{topic}",
        "task.parallelism=2",
        "task.checkpointing.interval=2000",
        "task.restart-strategy.type=exponential-delay",
        "task.restart-strategy.delay=1000",
        "task.restart-strategy.max-delay=8000",
        "task.checkpointing.tolerable-failures=100000",
        "task.async.capacity=20",
        "http.retry.max_attempts=10",
        "http.retry.backoff_ms=100",
        "http.read_timeout_ms=5000",
        "log.level=DEBUG",
        f'cloud_storage_secret="{SEEDED_SECRET}"',
    ]


def job_config(stack: Stack, topic: str, extra: Iterable[str] = ()) -> JobConfig:
    overrides = [
        *chaos_overrides(stack, topic),
        f"program-service-baseUrl={stack.server.url}",
        f'g_service_acct_cred="{{\\"private_key\\": \\"{SEEDED_SA_KEY}\\"}}"',
        *extra,
    ]
    return load_config(JOB, overrides=overrides, env={})


class Run:
    """One scenario's job on the stack: its batch, its topics, its job id, and the accounting at the end."""

    job = JOB
    left_label = "users still present"  # what remaining() holds, for messages

    def __init__(self, stack: Stack, name: str, batch: Batch, rate: float, extra: Iterable[str] = ()) -> None:
        from cokreat_jobs.ops.cluster import submit_job

        self.stack, self.name, self.batch = stack, name, batch
        self.topic = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
        self.cfg = job_config(stack, self.topic, extra)
        self.rest = FlinkRest(stack.cluster.rest_url)
        self.seq0 = self._last_seq()
        stack.sandbox.seed(users=batch.users)
        self._launch(submit_job, batch.records, rate)

    def _launch(self, submit: Callable[..., str], records: list[tuple[bytes, bytes]], rate: float) -> None:
        stack = self.stack
        # the topic exists before the job starts (2 partitions, so both source readers get records)
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": stack.broker.bootstrap})
        for f in admin.create_topics([NewTopic(self.topic, 2, 1)]).values():
            f.result(30)
        t0 = time.monotonic()
        self.jid = submit(self.job, self.cfg, stack.cluster.address)
        self._wait_running(180)
        _log(f"{self.name}: job {self.jid} running after {time.monotonic() - t0:.0f} s")
        self.producer = RateProducer(stack.broker.bootstrap, self.topic, records, rate)
        self.failed = TopicReader(stack.broker.bootstrap, f"{self.topic}.failed")

    def _last_seq(self) -> int:
        reqs = self.stack.sandbox.requests()
        return max((r["seq"] for r in reqs), default=0)

    def _wait_running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.all_running():
                return
            time.sleep(0.5)
        raise TimeoutError(f"job {self.jid} not running after {timeout:.0f} s")

    def all_running(self) -> bool:
        try:
            job = self.rest.get(f"/jobs/{self.jid}")
        except OSError:
            return False
        return job.get("state") == "RUNNING" and all(
            v.get("status") == "RUNNING" for v in job.get("vertices", [])
        )

    def restarts(self) -> int:
        """Restarts and fine-grained failovers: numRestarts, or the exception history when that is larger
        (a region failover of a task manager's loss is not always counted in numRestarts)."""
        counted = 0
        try:
            m = self.rest.get(f"/jobs/{self.jid}/metrics?get=numRestarts")
            if m:
                counted = int(float(m[0]["value"]))
        except (OSError, ValueError, KeyError, IndexError):
            pass
        try:
            ex = self.rest.get(f"/jobs/{self.jid}/exceptions")
            counted = max(counted, len(ex.get("exceptionHistory", {}).get("entries", [])))
        except OSError:
            pass
        return counted

    def requests(self) -> list[dict[str, Any]]:
        mine = f"/program/v1/user/{self.name_prefix}"
        return [r for r in self.stack.sandbox.requests(since=self.seq0) if r["path"].startswith(mine)]

    def effect_requests(self) -> list[dict[str, Any]]:
        """The requests that are the job's effects (for recovery times): user-delete's deletes."""
        return self.requests()

    @property
    def name_prefix(self) -> str:
        return self.batch.users[0].rsplit("-u", 1)[0] if self.batch.users else self.topic

    def remaining(self) -> set[str]:
        return set(self.stack.sandbox.users()) & set(self.batch.users)

    def failed_users(self) -> set[str]:
        out = set()
        for r in self.failed.records:
            uid = (r.get("edata") or {}).get("userId") if isinstance(r.get("edata"), dict) else None
            if isinstance(uid, str) and r.get("failInfo", {}).get("reason"):
                out.add(uid)
        return out

    def malformed(self) -> list[dict[str, Any]]:
        return [r for r in self.failed.records if "raw" in r]

    def drained(self) -> bool:
        self.failed.poll(1.0)
        if self.producer.finished_at is None:
            return False
        left = self.remaining() - self.failed_users()
        expected_hostile = len(self.batch.hostile)
        got_hostile = len(self.malformed()) + sum(
            1 for r in self.failed.records if str(r.get("mid") or "").startswith("wrong-")
        )
        return not left and got_hostile >= expected_hostile

    def wait_drained(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.drained():
                # one more checkpoint interval: late failed-topic records are flushed on checkpoints
                time.sleep(3)
                self.failed.poll(2.0)
                return
            time.sleep(1)
        left = self.remaining() - self.failed_users()
        # say whether the records reached Kafka at all: a harness problem is not a lost event of the job
        p = self.producer
        raise TimeoutError(
            f"{self.name}: {len(left)} users neither deleted nor failed after {timeout:.0f} s; the producer "
            f"sent {p.sent}, Kafka acknowledged {len(p.delivered)}, delivery errors {p.errors[:2]}"
        )

    def account(self, res: Result) -> None:
        self.failed.poll(2.0)
        users = set(self.batch.users)
        remaining = self.remaining()
        failed_users = self.failed_users()
        res.events = len(self.batch.records)
        res.hostile = len(self.batch.hostile)
        res.deleted = len(users - remaining)
        res.lost = len(remaining - failed_users)
        oks = Counter(
            r["path"].rsplit("/user/", 1)[1]
            for r in self.requests()
            if r["method"] == "DELETE" and r["status"] == 200
        )
        res.duplicates = sum(1 for c in oks.values() if c > 1)
        mine = [r for r in self.failed.records if r.get("jobName") == JOB]
        res.failed = len(mine)
        res.failed_with_reason = sum(1 for r in mine if (r.get("failInfo") or {}).get("reason"))
        res.failed_reasons = dict(Counter(str((r.get("failInfo") or {}).get("reason")) for r in mine))
        if res.lost:
            res.problems.append(f"{res.lost} events lost: e.g. {sorted(remaining - failed_users)[:3]}")
        if res.duplicates:
            res.problems.append(f"{res.duplicates} users got a second successful delete")
        if res.failed_with_reason != res.failed:
            res.problems.append(f"{res.failed - res.failed_with_reason} failed records without a reason")
        if self.producer.errors:
            res.problems.append(f"producer errors: {self.producer.errors[:3]}")
        res.restarts = self.restarts()
        res.protection = protection_check(self.stack, self.batch.users, self.failed.records)
        if res.protection["problems"]:
            res.problems += res.protection["problems"]

    def cancel(self) -> None:
        try:
            req = urllib.request.Request(
                f"{self.stack.cluster.rest_url}/jobs/{self.jid}?mode=cancel", method="PATCH"
            )
            urllib.request.urlopen(req, timeout=10).close()
        except OSError:
            pass
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.rest.get(f"/jobs/{self.jid}").get("state") in ("CANCELED", "FAILED", "FINISHED"):
                    break
            except OSError:
                break
            time.sleep(0.5)
        self.failed.close()


# -------------------------------------------------------------------------------------- data protection


def python_worker_logs(stack: Stack) -> list[Path]:
    """The Python workers' own logs: PyFlink starts each worker in `<io.tmp.dirs>/python-dist-<uuid>/` and
    sends its stdout/stderr (our JSON log lines among them) to `flink-python-udf-boot.log` there; the
    directory goes away when the worker's environment is closed (job cancelled), so it is read while the job
    runs. A killed task manager leaves its workers' directories behind."""
    home = stack.cluster.home
    return sorted(p for p in home.rglob("flink-python-udf-boot.log") if p.is_file()) if home.exists() else []


def protection_check(
    stack: Stack,
    user_ids: list[str],
    failed: list[dict[str, Any]],
    markers: Iterable[bytes] = (b"user-delete success", b"user-delete failed"),
) -> dict[str, Any]:
    """No user id in any job log line; no seeded secret in any log line or failed-topic record. The logs are
    the cluster's log dir (job manager, task managers, their .out files) and the Python workers' own logs.
    `markers`: a line holding one of them shows the job logged an event (so the check is not vacuous)."""
    problems: list[str] = []
    secrets = [SEEDED_SECRET, "chaosSAkey4d2b8e"]
    ids = {u.encode() for u in user_ids}
    marks = tuple(markers)
    lines = 0
    evidence = 0  # lines that show the job did log its events (so the check is not vacuous)
    workers = python_worker_logs(stack)
    for f in sorted(stack.cluster.log_dir.glob("*")) + workers:
        if not f.is_file():
            continue
        try:
            data = f.read_bytes()
        except OSError:  # a worker's directory removed under us
            continue
        for line in data.splitlines():
            lines += 1
            if any(m in line for m in marks):
                evidence += 1
            for s in secrets:
                if s.encode() in line:
                    problems.append(f"secret in {f.name}: {line[:160]!r}")
            if ids and b"-u0" in line:
                for u in ids:
                    if u in line:
                        problems.append(f"user id in {f.name}: {line[:160]!r}")
                        break
            if len(problems) > 5:
                break
    for r in failed:
        text = json.dumps(r)
        for s in secrets:
            if s in text:
                problems.append(f"secret in a failed-topic record: {text[:160]}")
    return {
        "log_lines": lines,
        "job_event_lines": evidence,
        "worker_logs": len(workers),
        "problems": problems[:10],
    }


# ------------------------------------------------------------------------------------------- memory


def _procs(stack: Stack) -> tuple[list[Any], list[Any]]:
    import psutil

    jvms: list[Any] = []
    workers: list[Any] = []
    for pid in stack.cluster.taskmanager_pids():
        try:
            p = psutil.Process(pid)
            jvms.append(p)
            for c in p.children(recursive=True):
                if "python" in (c.name() or "").lower():
                    workers.append(c)
        except psutil.Error:
            continue
    return jvms, workers


def resource_sample(stack: Stack) -> dict[str, Any]:
    import psutil

    jvms, workers = _procs(stack)

    def rss(ps: list[Any]) -> float:
        total = 0
        for p in ps:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return round(total / 2**20, 1)

    def fds(ps: list[Any]) -> int:
        total = 0
        for p in ps:
            try:
                total += p.num_fds()
            except psutil.Error:
                pass
        return total

    tmp_files = sum(1 for p in stack.tmp_dir.rglob("*") if p.is_file()) if stack.tmp_dir.exists() else 0
    return {
        "jvm_rss_mib": rss(jvms),
        "python_rss_mib": rss(workers),
        "python_workers": len(workers),
        "open_files": fds(jvms + workers),
        "tmp_files": tmp_files,
    }


# ---------------------------------------------------------------------------------------- scenarios


def _start(
    stack: Stack, name: str, n: int, rate: float, extra: Iterable[str] = (), hostile: float = 0
) -> Run:
    stack.sandbox.clear_faults()
    # every call a little slow, as a real service is
    stack.sandbox.add_fault(path=DELETE_GLOB, latency_ms=20)
    batch = make_batch(f"{name}-{uuid.uuid4().hex[:4]}", n, hostile)
    return Run(stack, name, batch, rate, extra)


def _new_effect_after(run: Run, since_ms: int) -> int | None:
    ts = [r["ts_ms"] for r in run.effect_requests() if r["ts_ms"] >= since_ms]
    return min(ts) if ts else None


def scenario_tm_kill(stack: Stack, short: bool, events: int | None) -> Result:
    res = Result("tm-kill", short)
    n = events or (400 if short else 2000)
    kills = 1 if short else 3
    # the batch must outlast every kill and its recovery (~25 s each), so the last kill still meets a backlog
    rate = 40.0 if short else min(50.0, n / (kills * 30 + 15))
    run = _start(stack, "tm-kill", n, rate)
    return tm_kill(stack, res, run, n, kills)


def tm_kill(stack: Stack, res: Result, run: Run, n: int, kills: int) -> Result:
    """Produce the run's batch; SIGKILL a task manager `kills` times spread over it (restarting it each
    time), timing each recovery; wait for the batch to drain; account. Cancels the run."""
    try:
        run.producer.start()
        res.fault["kills"] = []
        for k in range(kills):
            # spread the kills over the production window, each after the previous recovery
            target = (k + 1) * n / (kills + 1)
            while run.producer.sent < target and run.producer.is_alive():
                time.sleep(0.2)
            at = run.producer.sent
            pids = stack.cluster.taskmanager_pids()
            if not pids:
                res.problems.append("no task manager to kill")
                break
            victim = pids[k % len(pids)]
            before = run.restarts()
            kill_ms = _now_ms()
            killed = stack.cluster.kill_taskmanager(victim)
            stack.cluster.start_taskmanager()
            # the job fails over (a restart is counted, or the job's RESTARTING timestamp moves past the
            # kill), then runs again; recovery is the kill to the first request after its last switch to
            # RUNNING (Flink's own timestamp, not our polling)
            deadline = time.monotonic() + 120

            def restarting_ts() -> int:
                try:
                    return int(run.rest.get(f"/jobs/{run.jid}")["timestamps"].get("RESTARTING", 0))
                except (OSError, KeyError, ValueError):
                    return 0

            while time.monotonic() < deadline and run.restarts() <= before and restarting_ts() < kill_ms:
                time.sleep(0.25)
            restarted = run.restarts() > before or restarting_ts() >= kill_ms
            while time.monotonic() < deadline and not run.all_running():
                time.sleep(0.25)
            time.sleep(2)  # a failover may flap once more while the new task manager registers
            while time.monotonic() < deadline and not run.all_running():
                time.sleep(0.25)
            try:
                running_ms = int(run.rest.get(f"/jobs/{run.jid}")["timestamps"]["RUNNING"])
            except (OSError, KeyError, ValueError):
                running_ms = _now_ms()
            first: int | None = None
            while time.monotonic() < deadline and first is None:
                first = _new_effect_after(run, max(running_ms, kill_ms))
                if first is None:
                    if run.producer.finished_at is not None and not (run.remaining() - run.failed_users()):
                        break
                    time.sleep(0.25)
            recovery = (first - kill_ms) / 1000 if first else None
            res.fault["kills"].append(
                {
                    "pid": victim,
                    "killed": killed,
                    "restart_counted": restarted,
                    "at_event": at,
                    "recovery_s": recovery,
                }
            )
            _log(f"tm-kill: killed {victim} at event {at}; recovery {recovery} s")
            if not killed or not restarted:
                res.problems.append(
                    f"kill {k + 1}: task manager killed={killed}, job restart seen={restarted}"
                )
            if recovery is not None:
                res.recovery_s.append(round(recovery, 1))
            else:
                res.problems.append(f"kill {k + 1}: no new effect after the restart")
        run.wait_drained(600)
        run.account(res)
    finally:
        run.cancel()
    return res


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def scenario_broker_bounce(stack: Stack, short: bool, events: int | None) -> Result:
    res = Result("broker-bounce", short)
    n = events or (400 if short else 2000)
    rate = 40.0 if short else 50.0
    down_s = 5 if short else 15
    run = _start(stack, "broker-bounce", n, rate)
    return broker_bounce(stack, res, run, n, down_s)


def broker_bounce(stack: Stack, res: Result, run: Run, n: int, down_s: float) -> Result:
    """Stop the broker a third into the batch for `down_s`, start it on the same port and data; account."""
    try:
        run.producer.start()
        while run.producer.sent < n / 3 and run.producer.is_alive():
            time.sleep(0.2)
        port = stack.broker.port
        t0 = time.monotonic()
        stack.broker.stop()
        probes = refusals = 0
        while time.monotonic() - t0 < down_s:
            probes += 1
            refusals += _refused(port)
            time.sleep(0.5)
        actual_down = time.monotonic() - t0
        stack.broker.start()
        res.fault = {"down_s": round(actual_down, 1), "probes": probes, "refused": refusals, "port": port}
        _log(f"broker-bounce: down {actual_down:.1f} s, {refusals}/{probes} probes refused")
        if refusals == 0 or refusals < probes // 2:
            res.problems.append(f"the broker was not down: {refusals}/{probes} connection attempts refused")
        run.wait_drained(600)
        run.account(res)
    finally:
        run.cancel()
    return res


def scenario_service_storm(stack: Stack, short: bool, events: int | None) -> Result:
    res = Result("service-storm", short)
    storm_s = 10 if short else 60
    rate = 30.0 if short else 40.0
    n = events or int(rate * (storm_s + 5))
    # a short read timeout (hung calls give up after 2 s) and few attempts, so some events run out of retries
    run = _start(
        stack,
        "service-storm",
        n,
        rate,
        ["http.read_timeout_ms=2000", "http.retry.max_attempts=3", "http.retry.backoff_ms=100"],
    )
    return service_storm(stack, res, run, storm_s, [("DELETE", DELETE_GLOB)], [DELETE_GLOB])


def storm_rules(method: str | None, path: str) -> list[dict[str, Any]]:
    """The storm on one method/path: 16% 503, 17% 504 (33% 5xx), 5% hang, 5% +800 ms latency spikes."""
    on: dict[str, Any] = {"path": path, **({"method": method} if method else {})}
    return [
        {**on, "hang": True, "rate": 0.05},
        {**on, "status": 503, "rate": 0.16},
        {**on, "status": 504, "rate": 0.17},
        {**on, "latency_ms": 800, "rate": 0.05},  # latency spikes
    ]


def service_storm(
    stack: Stack,
    res: Result,
    run: Run,
    storm_s: float,
    targets: list[tuple[str | None, str]],
    steady: list[str],
) -> Result:
    """Storm the (method, path glob) `targets` for `storm_s` while the batch flows, then back to the
    steady 20 ms latency on the `steady` globs; wait for the drain; `replay` the failed topic until every
    event has its effect; account. Cancels the run."""
    from cokreat_jobs.ops.replay import replay

    try:
        run.producer.start()
        time.sleep(1)
        seq_storm = run._last_seq()
        sb = stack.sandbox
        for method, path in targets:
            for rule in storm_rules(method, path):
                sb.add_fault(**rule)
        time.sleep(storm_s)
        sb.clear_faults()
        for path in steady:
            sb.add_fault(path=path, latency_ms=20)
        storm = [r for r in run.requests() if r["seq"] > seq_storm]
        statuses = Counter(r["status"] for r in storm)
        res.fault = {"storm_s": storm_s, "requests": len(storm), "statuses": dict(statuses)}
        _log(f"service-storm: {len(storm)} calls during the storm, statuses {dict(statuses)}")
        if not (statuses.get(503) and statuses.get(504)):
            res.problems.append(f"the storm's 503/504 were not served: {dict(statuses)}")
        run.wait_drained(600)
        # replay brings home whatever ran out of retries, until every user is deleted
        moved = 0
        for _ in range(4):
            if not run.remaining():
                break
            rep = replay(run.job, run.cfg, idle_timeout=5, max_wait=120)
            moved += rep.moved
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and run.remaining():
                time.sleep(1)
        res.replayed = moved
        run.account(res)
        left = run.remaining()
        if left:
            res.problems.append(f"{len(left)} {run.left_label} after replay")
        # after replay, the failed ones are home: lost is judged on the final state
        res.lost = len(left)
    finally:
        run.cancel()
    return res


def scenario_poison(stack: Stack, short: bool, events: int | None) -> Result:
    res = Result("poison", short)
    n = events or (300 if short else 2000)
    run = _start(stack, "poison", n, 60.0, hostile=0.01)
    try:
        run.producer.start()
        run.wait_drained(600)
        run.account(res)
        kinds = Counter(run.batch.hostile.values())
        res.fault = {"hostile": dict(kinds)}
        # each hostile record in the failed topic: raw text (truncated, with its size), topic/partition/offset
        where = {run.producer.delivered.get(i): kind for i, kind in run.batch.hostile.items()}
        found: Counter[str] = Counter()
        for r in run.malformed():
            src = r.get("source") or {}
            key = (src.get("partition"), src.get("offset"))
            kind = where.get(key)
            if kind is None or src.get("topic") != run.topic:
                res.problems.append(f"a malformed record not from the batch: {src}")
                continue
            ok = (
                r.get("failInfo", {}).get("reason") == "malformed"
                and isinstance(r.get("rawSize"), int)
                and r.get("rawEncoding") in ("utf-8", "base64")
                and isinstance(r.get("rawTruncated"), bool)
                and len(r.get("raw", "")) <= 96 * 1024
            )
            if kind == "2mb-record" and not (r.get("rawTruncated") and r["rawSize"] > 2 * 1024 * 1024):
                ok = False
            if not ok:
                res.problems.append(f"{kind}: incomplete failed record {json.dumps(r)[:200]}")
            found[kind] += 1
        found["wrong-types"] += sum(
            1
            for r in run.failed.records
            if str(r.get("mid") or "").startswith("wrong-") and r["failInfo"]["reason"] == "invalid-field"
        )
        res.fault["in_failed_topic"] = dict(found)
        for kind, count in kinds.items():
            if found[kind] < count:
                res.problems.append(f"{kind}: {found[kind]} of {count} in the failed topic")
        if res.restarts != 0:
            res.problems.append(f"the job restarted {res.restarts} times on hostile input")
    finally:
        run.cancel()
    return res


def scenario_soak(stack: Stack, short: bool, events: int | None) -> Result:
    res = Result("soak", short)
    seconds = 60 if short else 600
    rate = 30.0 if short else 100.0
    n = events or int(seconds * rate)
    run = _start(stack, "soak", n, rate)
    try:
        run.producer.start()
        time.sleep(min(15, seconds / 4))  # workers warm
        start = resource_sample(stack)
        samples = [start]
        while run.producer.is_alive():
            time.sleep(10)
            samples.append(resource_sample(stack))
        run.wait_drained(600)
        end = resource_sample(stack)
        res.memory = {"start": start, "end": end, "rss_samples": [s["python_rss_mib"] for s in samples]}
        _log(f"soak: start {start}, end {end}")
        run.account(res)
        if start["python_workers"] == 0:
            res.problems.append("no Python worker found to measure")
        if end["python_rss_mib"] > start["python_rss_mib"] * 1.3 + 64:
            res.problems.append(
                f"Python worker RSS grew {start['python_rss_mib']} -> {end['python_rss_mib']} MiB"
            )
        if end["jvm_rss_mib"] > start["jvm_rss_mib"] * 1.3 + 128:
            res.problems.append(f"JVM RSS grew {start['jvm_rss_mib']} -> {end['jvm_rss_mib']} MiB")
        if end["open_files"] > start["open_files"] * 1.2 + 20:
            res.problems.append(f"open files grew {start['open_files']} -> {end['open_files']}")
        if end["tmp_files"] > start["tmp_files"] + 10:
            res.problems.append(f"temp files grew {start['tmp_files']} -> {end['tmp_files']}")
        if res.restarts:
            res.problems.append(f"{res.restarts} job restarts during the soak")
    finally:
        run.cancel()
    return res


RUNNERS: dict[str, Callable[[Stack, bool, int | None], Result]] = {
    "tm-kill": scenario_tm_kill,
    "broker-bounce": scenario_broker_bounce,
    "service-storm": scenario_service_storm,
    "poison": scenario_poison,
    "soak": scenario_soak,
}


def _content_runner(name: str) -> Callable[[Stack, bool, int | None], Result]:
    def run(stack: Stack, short: bool, events: int | None) -> Result:
        from cokreat_jobs.dev.chaos.content import run_scenario

        return run_scenario(name, stack, short, events)

    return run


RUNNERS.update({name: _content_runner(name) for name in CONTENT_SCENARIOS})


def run_scenarios(
    names: Iterable[str],
    short: bool = False,
    events: int | None = None,
    home: Path | None = None,
    share_stack: bool | None = None,
    keep: bool = False,
) -> list[Result]:
    """Run the scenarios; each on a stack of its own unless `share_stack` (the short form shares one)."""
    names = list(names) or list(SCENARIOS)
    share = short if share_stack is None else share_stack
    base = Path(home) if home else Path(tempfile.mkdtemp(prefix="cokreat-chaos-"))
    base.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    shared: Stack | None = None
    old_tmp = os.environ.get("TMPDIR")
    try:
        for name in names:
            started = time.monotonic()
            stack = shared
            if stack is None:
                stack = Stack(base / ("stack" if share else name))
                stack.start()
                if share:
                    shared = stack
            _log(f"{name}: start ({'short' if short else 'full'})")
            try:
                res = RUNNERS[name](stack, short, events)
            except Exception as e:
                res = Result(name, short, problems=[f"{type(e).__name__}: {e}"])
            res.wall_s = round(time.monotonic() - started, 1)
            _log(f"{name}: {'PASS' if res.passed else 'FAIL'} in {res.wall_s} s {res.problems}")
            results.append(res)
            if not share:
                stack.stop()
    finally:
        if shared is not None:
            shared.stop()
        if old_tmp is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_tmp
        if not keep and home is None:
            shutil.rmtree(base, ignore_errors=True)
    return results


def table(results: list[Result]) -> str:
    head = (
        "| scenario | events | lost | duplicates | failed (with reason) | replayed | restarts | recovery (s) "
        "| memory (RSS MiB start -> end) | result |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in results:
        mem = ""
        if r.memory:
            s, e = r.memory["start"], r.memory["end"]
            mem = (
                f"Python {s['python_rss_mib']} -> {e['python_rss_mib']}; JVM {s['jvm_rss_mib']} -> "
                f"{e['jvm_rss_mib']}; fds {s['open_files']} -> {e['open_files']}; tmp {s['tmp_files']} -> "
                f"{e['tmp_files']}"
            )
        rows.append(
            f"| {r.scenario} | {r.events} | {r.lost} | {r.duplicates} | {r.failed} ({r.failed_with_reason}) "
            f"| {r.replayed} | {r.restarts} | {', '.join(str(x) for x in r.recovery_s) or '-'} "
            f"| {mem or '-'} "
            f"| {'pass' if r.passed else 'FAIL'} |"
        )
    return head + "\n".join(rows) + "\n"


def write_results(results: list[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "scenarios": [r.as_dict() for r in results],
            },
            indent=2,
        )
        + "\n"
    )

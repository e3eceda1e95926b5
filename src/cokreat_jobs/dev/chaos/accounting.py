"""One scenario's job on the stack (`Run`): its topic created, the job submitted, its batch produced, and
every event accounted for from the sandbox's state (which users are gone), its request log (re-processing
and duplicate effects: `effects`) and the failed topic (each with a reason). The job's own counters
restart with a task manager, so they are not used.

The content jobs' run (`content.ContentRun`) keeps this life cycle and accounts from its own effects.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from cokreat_jobs.dev.chaos.batches import Batch
from cokreat_jobs.dev.chaos.config import JOB, defaults_problems, job_config
from cokreat_jobs.dev.chaos.effects import Reprocessing, count_reprocessing, recovery_times
from cokreat_jobs.dev.chaos.log import log
from cokreat_jobs.dev.chaos.protection import protection_check
from cokreat_jobs.dev.chaos.report import Result
from cokreat_jobs.dev.chaos.stack import Stack
from cokreat_jobs.dev.chaos.traffic import RateProducer, TopicReader
from cokreat_jobs.ops.flink_rest import FlinkRest


class Run:
    """One scenario's job on the stack: its batch, its topics, its job id, and the accounting at the end."""

    job = JOB
    left_label = "users still present"  # what remaining() holds, for messages

    def __init__(
        self,
        stack: Stack,
        name: str,
        batch: Batch,
        rate: float,
        extra: Iterable[str] = (),
        defaults: bool = False,
    ) -> None:
        from cokreat_jobs.ops.cluster import submit_job

        self.stack, self.name, self.batch = stack, name, batch
        self.defaults = defaults
        self.recoveries_ms: list[int] = []  # replays begun (the restarts come from Flink)
        self.topic = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
        self.cfg = job_config(stack, self.topic, extra, defaults)
        self.rest = FlinkRest(stack.cluster.rest_url)
        self.seq0 = self.last_seq()
        stack.sandbox.seed(users=batch.users)
        self.launch(submit_job, batch.records, rate)

    def launch(self, submit: Callable[..., str], records: list[tuple[bytes, bytes]], rate: float) -> None:
        stack = self.stack
        # the topic exists before the job starts (2 partitions, so both source readers get records)
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": stack.broker.bootstrap})
        for f in admin.create_topics([NewTopic(self.topic, 2, 1)]).values():
            f.result(30)
        t0 = time.monotonic()
        self.jid = submit(self.job, self.cfg, stack.cluster.address)
        self._wait_running(180)
        log(f"{self.name}: job {self.jid} running after {time.monotonic() - t0:.0f} s")
        self.producer = RateProducer(stack.broker.bootstrap, self.topic, records, rate)
        self.failed = TopicReader(stack.broker.bootstrap, f"{self.topic}.failed")

    def last_seq(self) -> int:
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
        rep = self.reprocessing(res)
        judge(res, users, users - remaining, failed_users, rep.duplicate_effects)
        failed_records(res, self.failed.records, JOB)
        if self.producer.errors:
            res.problems.append(f"producer errors: {self.producer.errors[:3]}")
        res.restarts = self.restarts()
        res.protection = protection_check(self.stack, self.batch.users, self.failed.records)
        if res.protection["problems"]:
            res.problems += res.protection["problems"]
        self.check_settings(res)

    def recoveries(self) -> list[int]:
        """When the job failed over (Flink's exception history) or a replay began, epoch ms."""
        try:
            history = self.rest.get(f"/jobs/{self.jid}/exceptions")
        except OSError:
            history = {}
        return sorted(recovery_times(history) + self.recoveries_ms)

    def reprocessing(self, res: Result) -> Reprocessing:
        """Re-processing and duplicate effects from the request log, onto `res`; a log without a single
        effectful call of the run is a problem (nothing could then be counted)."""
        rep = count_reprocessing(self.job, self.requests(), self.recoveries())
        res.reprocessing = rep.as_dict()
        res.reprocessed = rep.reprocessed
        res.problems += reprocessing_problems(rep, expect_calls=bool(self.batch_ids()))
        return rep

    def batch_ids(self) -> list[str]:
        return list(self.batch.users)

    def check_settings(self, res: Result) -> None:
        """Record the restart and checkpoint settings; a defaults run must have run with the shipped ones."""
        res.defaults = self.defaults
        try:
            checkpoints: dict[str, Any] | None = self.rest.get(f"/jobs/{self.jid}/checkpoints/config")
        except OSError:
            checkpoints = None
        settings, problems = defaults_problems(self.job, self.cfg, checkpoints)
        settings["in_flight"] = self.in_flight_operator()
        res.settings = settings
        if self.defaults:
            res.problems += problems

    def in_flight_operator(self) -> str | None:
        """How the running job holds its events in flight (`task.async.operator`), read from its plan: only
        keyed-state has the tick rows' source (flink/pipeline.tick_rows). None: the plan could not be read."""
        try:
            plan: dict[str, Any] = self.rest.get(f"/jobs/{self.jid}")
        except OSError:
            return None
        names = [str(v.get("name", "")) for v in plan.get("vertices") or []]
        return "keyed-state" if any("_ticks" in n for n in names) else "pyflink-async"

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


def reprocessing_problems(rep: Reprocessing, expect_calls: bool = True) -> list[str]:
    """What the request log's account fails on: no effectful call at all (re-processing then cannot be
    counted, so a run that reports 0 would prove nothing). Re-processing itself is allowed (at-least-once)
    and only reported; an effect applied twice is judged by the caller (`duplicates`)."""
    if expect_calls and rep.effect_calls == 0:
        return ["no effectful call of the job in the sandbox's request log: re-processing cannot be counted"]
    return []


def judge(
    res: Result, expected: set[str], done: set[str], failed: set[str], duplicate_effects: list[str]
) -> set[str]:
    """Lost and duplicate effects onto `res`, each a problem: an event is lost when it has neither its
    effect (`done`) nor a record with a reason in the failed topic (`failed`); an effect applied twice
    (`duplicate_effects`, "<what> <target>") must not happen either. Returns the lost ones."""
    lost = expected - done - failed
    res.lost = len(lost)
    res.duplicates = len(duplicate_effects)
    if lost:
        res.problems.append(f"{len(lost)} events lost: e.g. {sorted(lost)[:3]}")
    if duplicate_effects:
        twice = sorted(duplicate_effects)
        res.problems.append(f"{len(twice)} effects applied twice: {twice[:3]}")
    return lost


def failed_records(res: Result, records: list[dict[str, Any]], job: str) -> None:
    """The job's failed-topic records onto `res`; one without a reason is a problem."""
    mine = [r for r in records if r.get("jobName") == job]
    res.failed = len(mine)
    res.failed_with_reason = sum(1 for r in mine if (r.get("failInfo") or {}).get("reason"))
    res.failed_reasons = dict(Counter(str((r.get("failInfo") or {}).get("reason")) for r in mine))
    if res.failed_with_reason != res.failed:
        res.problems.append(f"{res.failed - res.failed_with_reason} failed records without a reason")

"""user-delete's chaos scenarios: tm-kill, broker-bounce, service-storm, poison, soak.

Each scenario runs user-delete (parallelism 2) on a standalone cluster (1 job manager, 2 task managers, one
slot each, so both take part and any task manager killed held a running task), against a real Kafka broker
and the sandbox. tm-kill, broker-bounce, service-storm and poison run with the job's shipped restart and
checkpoint settings (`DEFAULTS`: fixed-delay, 3 attempts 30 s apart, checkpoints every 60 s, no tolerated
checkpoint failure), so the faults meet what a deployment runs; the soak and the content jobs' scenarios
checkpoint every 2 s with a restart strategy that never gives up (`config.NEVER_GIVE_UP`). A known batch is
produced at a fixed rate, the fault is injected, the batch is waited for, and every event is then accounted
for from the sandbox's state (which users are gone), its request log (`effects`: every delete repeated after
a recovery, whatever its answer, is re-processing; a second successful delete would be a duplicate effect)
and the failed topic (each with a reason). The job's own counters restart with a task manager, so they are
not used here.

A scenario passes only with 0 events lost, 0 duplicate effects, re-processing counted from a request log that
holds the run's calls, every failed event in the failed topic with a reason and, for the defaults runs, the
shipped settings seen on the running job; a scenario whose fault was not actually injected (no task manager
killed, the broker never down, no fault answered) fails.

`short=True` is the CI form (`make test`). tm-kill, broker-bounce and service-storm inject the faults of
`faults`; poison (hostile records among the batch) and soak (resources over a long batch) are whole here.

The content jobs (content-auto-creator, auto-creator-v2) run tm-kill, broker-bounce and service-storm as
`<fault>:<job>` (e.g. `tm-kill:auto-creator-v2`) with the same faults and an accounting of their own
(`content`): the content Live / the set in the graph store, each child once under its unit, no second
successful create.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from cokreat_jobs.dev.chaos.accounting import Run
from cokreat_jobs.dev.chaos.batches import EXPECTED_REASON, failed_kind, make_batch
from cokreat_jobs.dev.chaos.faults import broker_bounce, service_storm, tm_kill
from cokreat_jobs.dev.chaos.log import log
from cokreat_jobs.dev.chaos.report import Result
from cokreat_jobs.dev.chaos.resources import resource_sample
from cokreat_jobs.dev.chaos.stack import Stack

DELETE_GLOB = "/program/v1/user/*"
USER_DELETE_SCENARIOS = ("tm-kill", "broker-bounce", "service-storm", "poison", "soak")
# one scenario per fault with the shipped restart and checkpoint settings
DEFAULTS = frozenset({"tm-kill", "broker-bounce", "service-storm", "poison"})


def _start(
    stack: Stack, name: str, n: int, rate: float, extra: Iterable[str] = (), hostile: float = 0
) -> Run:
    stack.sandbox.clear_faults()
    # every call a little slow, as a real service is
    stack.sandbox.add_fault(path=DELETE_GLOB, latency_ms=20)
    batch = make_batch(f"{name}-{uuid.uuid4().hex[:4]}", n, hostile)
    return Run(stack, name, batch, rate, extra, defaults=name in DEFAULTS)


def scenario_tm_kill(stack: Stack, short: bool, events: int | None) -> Result:
    res = Result("tm-kill", short)
    n = events or (400 if short else 2000)
    # the shipped strategy allows 3 restarts in the job's life and one kill has taken up to 2 failovers, so
    # a defaults run kills once (the content jobs' tm-kill, never giving up, kills 3 times in the full run)
    kills = 1 if short or "tm-kill" in DEFAULTS else 3
    # the batch must outlast every kill and its recovery (~25 s each), so the last kill still meets a backlog
    rate = 40.0 if short else min(50.0, n / (kills * 30 + 15))
    run = _start(stack, "tm-kill", n, rate)
    return tm_kill(stack, res, run, n, kills)


def scenario_broker_bounce(stack: Stack, short: bool, events: int | None) -> Result:
    res = Result("broker-bounce", short)
    n = events or (400 if short else 2000)
    rate = 40.0 if short else 50.0
    down_s = 5 if short else 15
    run = _start(stack, "broker-bounce", n, rate)
    return broker_bounce(stack, res, run, n, down_s)


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
        where: dict[tuple[Any, Any] | None, str] = {
            run.producer.delivered.get(i): kind for i, kind in run.batch.hostile.items()
        }
        found: Counter[str] = Counter()
        for r in run.malformed():
            src = r.get("source") or {}
            key = (src.get("partition"), src.get("offset"))
            kind = where.get(key)
            if kind is None or src.get("topic") != run.topic:
                res.problems.append(f"a malformed record not from the batch: {src}")
                continue
            ok = (
                r.get("failInfo", {}).get("reason") == EXPECTED_REASON[kind]
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
        # the kinds that fail as events (wrong types, numbers out of range): the event with its reason, and an
        # iteration that replay would not send round again (a number out of range is no count of replays)
        for r in run.failed.records:
            kind = failed_kind(r)
            if kind is None:
                continue
            reason = (r.get("failInfo") or {}).get("reason")
            if reason != EXPECTED_REASON[kind]:
                res.problems.append(f"{kind}: failed as {reason}, not {EXPECTED_REASON[kind]}")
                continue
            edata = r.get("edata")
            iteration = edata.get("iteration", 1) if isinstance(edata, dict) else None
            if kind != "wrong-types" and isinstance(iteration, int) and not isinstance(iteration, bool):
                res.problems.append(f"{kind}: its failed record's iteration {iteration!r} would be replayed")
                continue
            found[kind] += 1
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
        log(f"soak: start {start}, end {end}")
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

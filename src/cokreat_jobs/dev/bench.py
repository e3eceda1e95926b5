"""`cokreat-jobs bench` / `make bench`: throughput and latency of each job, ours against the reference
discipline, measured in one run on this machine.

For each job and each configuration: a fresh topic and consumer group, the sandbox seeded and slowed to the
given per-request latency, the job started on the MiniCluster and running, then N events produced; measured
from the first record produced to the last effect the sandbox observed (a request answered 200 for that
event's object): events/s, per-event latency (produce time to its last effect) p50/p95/p99, the job's CPU
seconds per 1,000 events (JVM + Python workers) and its peak memory. The reference discipline is the same job
configured as the Scala job ran: one event in flight, parallelism 1, and its fixed sleeps.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
from rich.console import Console

from cokreat_jobs.dev.stack.jobrun import LocalJobRun
from cokreat_jobs.dev.stack.local import layout, stack_down, stack_up
from cokreat_jobs.dev.stack.sandbox_client import SandboxClient
from cokreat_jobs.ops.kafka_io import produce_records


@dataclass
class Scenario:
    """One job's benchmark: how to seed, what to produce, what counts as an event's effect."""

    job: str
    seed: Callable[[SandboxClient, list[str]], None]
    event: Callable[[str], bytes]
    # (request) -> the event key it completes, or None
    effect_of: Callable[[dict[str, Any]], str | None]
    reference_overrides: list[str]
    overrides: Callable[[dict[str, Any], str], list[str]] = lambda endpoints, topic: []
    # the reference discipline is slow: enough events for a steady rate, few enough to finish in minutes
    reference_events: int = 1000
    default_events: int = 10000
    # events per point of the capacity curve: enough for a steady rate at that capacity
    curve_events: Callable[[int], int] = lambda cap: max(200, cap * 40)


def _user_delete() -> Scenario:
    def seed(sandbox: SandboxClient, keys: list[str]) -> None:
        for i in range(0, len(keys), 5000):
            sandbox.seed(users=keys[i : i + 5000])

    def event(key: str) -> bytes:
        return json.dumps(
            {
                "eid": "BE_JOB_REQUEST",
                "mid": f"LP.{key}",
                "object": {"id": key, "type": "User"},
                "edata": {"action": "delete-user", "userId": key},
            }
        ).encode()

    def effect_of(req: dict[str, Any]) -> str | None:
        if req["method"] == "DELETE" and req["status"] == 200 and "/program/v1/user/" in req["path"]:
            return str(req["path"].rsplit("/user/", 1)[1])
        return None

    # the Scala user-delete had no sleeps: one event at a time per slot
    return Scenario("user-delete", seed, event, effect_of, reference_overrides=["task.async.capacity=1"])


def _content_auto_creator() -> Scenario:
    """A bulk upload of pdf contents to publish, the artifact served by the sandbox's file server."""
    state: dict[str, str] = {}

    def overrides(endpoints: dict[str, Any], topic: str) -> list[str]:
        storage = Path(urlparse(endpoints["storage"]).path)
        src = storage / "bench-source" / "sample.pdf"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(b"%PDF-1.4\n" + b"0" * 2048 + b"\n%%EOF\n")
        state["artifact"] = f"{endpoints['storage_http']}/bench-source/sample.pdf"
        return []

    def seed(sandbox: SandboxClient, keys: list[str]) -> None:
        return None

    def event(key: str) -> bytes:
        return json.dumps(
            {
                "eid": "BE_JOB_REQUEST",
                "mid": f"LP.{key}",
                "actor": {"id": "Auto Creator", "type": "System"},
                "context": {"pdata": {"id": "org.sunbird.platform", "ver": "1.0"}, "channel": "bench"},
                "object": {"id": key, "ver": "1"},
                "edata": {
                    "action": "auto-create",
                    "iteration": 1,
                    "objectType": "Content",
                    "stage": "publish",
                    "repository": f"https://source.example/api/content/v1/read/{key}",
                    "metadata": {
                        "name": f"Benchmark content {key}",
                        "code": key,
                        "mimeType": "application/pdf",
                        "primaryCategory": "Learning Resource",
                        "contentType": "Resource",
                        "framework": "NCF",
                        "artifactUrl": state["artifact"],
                        "lastPublishedBy": "bench",
                    },
                    "collection": [],
                    "originData": {},
                },
            }
        ).encode()

    def effect_of(req: dict[str, Any]) -> str | None:
        if req["method"] == "POST" and req["status"] == 200 and "/content/v4/publish/" in req["path"]:
            return str(req["path"].rsplit("/", 1)[1])
        return None

    # the reference: one event in flight, api_call_delay 1 s slept after upload and after review
    return Scenario(
        "content-auto-creator",
        seed,
        event,
        effect_of,
        reference_overrides=["content_auto_creator.api_call_delay=1"],
        overrides=overrides,
        # about 2.2 s an event at the reference's pace: 40 give a steady rate in a minute and a half
        reference_events=40,
        default_events=2000,
    )


def _auto_creator_v2() -> Scenario:
    """Approved question sets of 10 questions each, imported and linked into one course unit."""
    from cokreat_jobs.dev.samples.question_sets import import_event, question_set

    state: dict[str, str] = {}

    def unit_of(key: str) -> tuple[str, str]:
        # a course per 10 sets, 2 units each: hierarchies as small as real ones, not one unit of thousands
        n = int(key.rsplit("-", 1)[1])
        course = f"{key.rsplit('-', 1)[0]}-course{n // 10}"
        return course, f"{course}_u{n % 2}"

    def overrides(endpoints: dict[str, Any], topic: str) -> list[str]:
        state["url"] = endpoints["sandbox"]
        return []

    def seed(sandbox: SandboxClient, keys: list[str]) -> None:
        courses = sorted({unit_of(k)[0] for k in keys})
        collections = [
            {"identifier": c, "name": c, "channel": "ch1", "units": [f"{c}_u0", f"{c}_u1"]} for c in courses
        ]
        for i in range(0, len(collections), 200):
            sandbox.seed(collections=collections[i : i + 200])
        for i in range(0, len(keys), 50):
            sandbox.seed(source_objects=[question_set(k, QUESTIONS_PER_SET)[0] for k in keys[i : i + 50]])

    def event(key: str) -> bytes:
        course, unit = unit_of(key)
        return json.dumps(
            import_event(state["url"], key, collection=[{"identifier": course, "unitId": unit}])
        ).encode()

    def effect_of(req: dict[str, Any]) -> str | None:
        # the last effect of an import is its link into the unit
        if req["method"] == "PATCH" and req["status"] == 200 and req["path"].endswith("/hierarchy/add"):
            body = req["body"] if isinstance(req.get("body"), dict) else {}
            children = (body.get("request") or {}).get("children") or []
            return str(children[0]) if children else None
        return None

    # the reference: one event in flight, a fixed 5 s before each link
    return Scenario(
        "auto-creator-v2",
        seed,
        event,
        effect_of,
        reference_overrides=["auto_creator_v2.link_delay_ms=5000"],
        overrides=overrides,
        # over 5 s an event at the reference's pace: 16 give a steady rate in about a minute and a half
        reference_events=16,
        default_events=600,
        # a set is ~60 calls: fewer events give a steady rate
        curve_events=lambda cap: max(40, cap * 10),
    )


QUESTIONS_PER_SET = 10

SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "user-delete": _user_delete,
    "content-auto-creator": _content_auto_creator,
    "auto-creator-v2": _auto_creator_v2,
}


@dataclass
class Measurement:
    label: str
    events: int
    api_latency_ms: int
    capacity: int
    wall_s: float = 0.0
    events_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_s_per_1000: float = 0.0
    peak_rss_mb: float = 0.0
    # where the machine's CPU went during the run: the sandbox and the broker share the job's two cores
    sandbox_cpu_s_per_1000: float = 0.0
    broker_cpu_s_per_1000: float = 0.0
    # of the job's CPU, what its JVM used (the rest is the Python side: client process and workers)
    jvm_cpu_s_per_1000: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1024 / 1024


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


class WorkerProfiler:
    """py-spy sampling of the job's Python workers (where its CPU goes) while a measurement runs.

    On the MiniCluster PyFlink runs the Python workers in loopback mode, as threads of the job's own Python
    process (the `beam_boot` child only asks it to start them), so that process is sampled; on a cluster
    the workers are separate `beam_boot` processes.

    py-spy reads the workers' stacks from outside (no change to the job); `--nonblocking` so the sampled
    process is never paused. Writes the collapsed stacks and a summary of where the samples fell.
    """

    def __init__(self, root_pid: int, out: Path) -> None:
        self.root_pid = root_pid
        self.out = out
        self.procs: list[Any] = []

    def start(self, timeout: float = 60.0) -> None:
        import subprocess

        deadline = time.monotonic() + timeout
        workers: list[int] = []
        while not workers and time.monotonic() < deadline:
            workers = [p.pid for p in _tree(self.root_pid) if _is_python_worker(p)]
            time.sleep(0.5)
        workers.append(self.root_pid)
        spy = Path(sys.executable).parent / "py-spy"
        for pid in workers:
            raw = self.out.with_name(f"{self.out.stem}-{pid}.collapsed")
            self.procs.append(
                (
                    raw,
                    subprocess.Popen(
                        [
                            str(spy),
                            "record",
                            "--pid",
                            str(pid),
                            "--format",
                            "raw",
                            "--rate",
                            "200",
                            "--nonblocking",
                            "--threads",
                            "-o",
                            str(raw),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    ),
                )
            )

    def stop(self) -> str:
        import signal

        stacks: dict[str, int] = {}
        for raw, proc in self.procs:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except Exception:
                proc.kill()
            if raw.exists():
                for line in raw.read_text().splitlines():
                    stack, _, n = line.rpartition(" ")
                    if stack and n.isdigit():
                        stacks[stack] = stacks.get(stack, 0) + int(n)
        text = profile_summary(stacks)
        self.out.write_text(text)
        return text


def _is_python_worker(p: psutil.Process) -> bool:
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return False
    return "python" in cmd and ("beam_boot" in cmd or "fn_execution" in cmd)


def profile_summary(stacks: dict[str, int], top: int = 30) -> str:
    """Share of samples per function: self (the frame on top) and inclusive (anywhere on the stack)."""
    total = sum(stacks.values()) or 1
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    for stack, n in stacks.items():
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames[1:]):  # the first frame is the thread
            incl[f] = incl.get(f, 0) + n
    lines = [f"{total} samples of the Python side's threads while busy (py-spy; idle ones not sampled)"]
    lines += ["", "self:"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in sorted(own.items(), key=lambda x: -x[1])[:top]]
    lines += ["", "inclusive:"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in sorted(incl.items(), key=lambda x: -x[1])[:top]]
    return "\n".join(lines) + "\n"


def measure(
    scenario: Scenario,
    endpoints: dict[str, Any],
    n: int,
    api_latency_ms: int,
    capacity: int,
    label: str,
    extra: list[str],
    workdir: Path,
    console: Console,
    profile: Path | None = None,
) -> Measurement:
    sandbox = SandboxClient(endpoints["sandbox"], timeout=120)
    run_id = uuid.uuid4().hex[:8]
    keys = [f"bench-{run_id}-{i:06d}" for i in range(n)]
    scenario.seed(sandbox, keys)
    sandbox.clear_faults()
    if api_latency_ms:
        sandbox.add_fault(latency_ms=api_latency_ms)
    sandbox.clear_requests()
    topic = f"bench-{scenario.job}-{run_id}"
    scenario_keys = scenario.overrides(endpoints, topic)
    run = LocalJobRun(
        scenario.job,
        [
            f"kafka.input.topic={topic}",
            f"kafka.failed.topic={topic}.failed",
            f"kafka.groupId=bench-{run_id}",
            f"task.async.capacity={capacity}",
            "task.checkpointing.interval=10000",
            "log.level=WARNING",
            *scenario_keys,
            *extra,
        ],
        log_file=workdir / f"{label}.log",
    )
    run.start()
    m = Measurement(label, n, api_latency_ms, capacity)
    try:
        assert run.proc is not None
        procs = _tree(run.proc.pid)
        cpu0 = _cpu_s(procs)
        jvm = [p for p in procs if p.name() == "java"]
        jvm_cpu0 = _cpu_s(jvm)
        stack_pids = json.loads(layout().pids.read_text())
        servers = {name: _tree(int(pid)) for name, pid in stack_pids.items()}
        servers_cpu0 = {name: _cpu_s(p) for name, p in servers.items()}
        produced_ms: dict[str, float] = {}

        def records() -> Any:
            for k in keys:
                produced_ms[k] = time.time() * 1000
                yield (k.encode(), scenario.event(k))

        profiler = WorkerProfiler(run.proc.pid, profile) if profile else None
        if profiler:
            profiler.start()
        t0 = time.time() * 1000
        produce_records(endpoints["kafka"], topic, records())
        peak = [0.0]

        def sample(c: dict[str, int]) -> None:
            peak[0] = max(peak[0], _rss_mb(_tree(run.proc.pid) if run.proc else []))

        m.counters = run.wait_for_total(n, timeout=max(600.0, n / 5), on_progress=sample)
        m.cpu_s_per_1000 = (_cpu_s(_tree(run.proc.pid)) - cpu0) / n * 1000
        m.jvm_cpu_s_per_1000 = (_cpu_s(jvm) - jvm_cpu0) / n * 1000
        m.sandbox_cpu_s_per_1000 = (_cpu_s(servers["sandbox"]) - servers_cpu0["sandbox"]) / n * 1000
        m.broker_cpu_s_per_1000 = (_cpu_s(servers["kafka"]) - servers_cpu0["kafka"]) / n * 1000
        m.peak_rss_mb = peak[0]
        if profiler:
            profiler.stop()
            console.print(f"profile of the Python workers: {profile}")
    finally:
        run.stop()
        sandbox.clear_faults()
    done_ms: dict[str, float] = {}
    for req in sandbox.requests():
        key = scenario.effect_of(req)
        if key is not None and key in produced_ms:
            done_ms[key] = max(done_ms.get(key, 0.0), req["ts_ms"] + req.get("duration_ms", 0))
    missing = n - len(done_ms)
    if missing:
        console.print(f"[yellow]{label}: {missing} events without an observed effect[/]")
    last = max(done_ms.values()) if done_ms else t0
    m.wall_s = (last - t0) / 1000
    m.events_per_s = len(done_ms) / m.wall_s if m.wall_s > 0 else 0.0
    lat = [done_ms[k] - produced_ms[k] for k in done_ms]
    m.p50_ms, m.p95_ms, m.p99_ms = (_percentile(lat, q) for q in (50, 95, 99))
    console.print(
        f"{label:28} {m.events_per_s:9.1f} events/s  p50 {m.p50_ms:7.0f} ms  p95 {m.p95_ms:7.0f} ms"
        f"  p99 {m.p99_ms:7.0f} ms  cpu {m.cpu_s_per_1000:5.2f} s/1000 (jvm {m.jvm_cpu_s_per_1000:4.2f}) "
        f"(sandbox {m.sandbox_cpu_s_per_1000:4.2f}, "
        f"broker {m.broker_cpu_s_per_1000:4.2f})  rss {m.peak_rss_mb:6.0f} MB"
    )
    return m


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run_bench(
    jobs: list[str],
    events: int | None,
    api_latency_ms: int,
    quick: bool,
    out_dir: Path,
    capacities: tuple[int, ...] = (1, 8, 32, 128),
    profile: bool = False,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    console = Console()
    stack_root = Path(tempfile.mkdtemp(prefix="cokreat-bench-"))
    os.environ["COKREAT_STACK_DIR"] = str(stack_root)
    endpoints, _ = stack_up(root=stack_root, fresh=True)
    workdir = stack_root / "logs"
    results: dict[str, Any] = {"machine": machine(), "jobs": {}, "scaling": {}}
    try:
        for job in jobs:
            scenario = SCENARIOS[job]()
            n = events or (1000 if quick else scenario.default_events)
            n_ref = min(n, scenario.reference_events, 200 if quick else scenario.reference_events)
            console.rule(f"[bold]{job}: {n} events, {api_latency_ms} ms per API call")
            prof = out_dir / f"profile-{job}.txt" if profile else None
            if prof:
                out_dir.mkdir(parents=True, exist_ok=True)
            tuned = list(overrides or [])  # ours, its ceiling and its curve; never the reference discipline
            ours = measure(scenario, endpoints, n, api_latency_ms, 100, "ours", tuned, workdir, console, prof)
            ref = measure(
                scenario,
                endpoints,
                n_ref,
                api_latency_ms,
                1,
                "reference discipline",
                scenario.reference_overrides,
                workdir,
                console,
            )
            entry: dict[str, Any] = {
                "events": n,
                "api_latency_ms": api_latency_ms,
                "events_per_s": round(ours.events_per_s, 1),
                "reference_events": n_ref,
                "reference_events_per_s": round(ref.events_per_s, 2),
                "ratio": round(ours.events_per_s / ref.events_per_s, 1) if ref.events_per_s else None,
                "p50_ms": round(ours.p50_ms),
                "p95_ms": round(ours.p95_ms),
                "p99_ms": round(ours.p99_ms),
                "cpu_s_per_1000": round(ours.cpu_s_per_1000, 2),
                "jvm_cpu_s_per_1000": round(ours.jvm_cpu_s_per_1000, 2),
                "sandbox_cpu_s_per_1000": round(ours.sandbox_cpu_s_per_1000, 2),
                "broker_cpu_s_per_1000": round(ours.broker_cpu_s_per_1000, 2),
                "peak_rss_mb": round(ours.peak_rss_mb),
                "reference_p50_ms": round(ref.p50_ms),
            }
            if not quick:
                ceiling = measure(
                    scenario, endpoints, n, 0, 100, "ceiling (0 ms API)", tuned, workdir, console
                )
                entry["ceiling_events_per_s"] = round(ceiling.events_per_s, 1)
                curve = []
                for cap in capacities:
                    m = measure(
                        scenario,
                        endpoints,
                        min(n, scenario.curve_events(cap)),
                        api_latency_ms,
                        cap,
                        f"capacity {cap}",
                        [o for o in tuned if not o.startswith("task.async.capacity=")],
                        workdir,
                        console,
                    )
                    curve.append({"capacity": cap, "events_per_s": round(m.events_per_s, 1)})
                results["scaling"][job] = curve
            results["jobs"][job] = entry
    finally:
        stack_down(stack_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / ("quick.json" if quick else "latest.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written {out}")
    if not quick:
        plot(results, out_dir / "latest.png")
    return results


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs = list(results["scaling"])
    fig, axes = plt.subplots(1, max(1, len(jobs)), figsize=(6 * max(1, len(jobs)), 4), squeeze=False)
    for ax, job in zip(axes[0], jobs, strict=False):
        curve = results["scaling"][job]
        ax.plot([c["capacity"] for c in curve], [c["events_per_s"] for c in curve], marker="o", label="ours")
        ref = results["jobs"][job]["reference_events_per_s"]
        ax.axhline(ref, color="red", linestyle="--", label=f"reference discipline ({ref}/s)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("events in flight per subtask (task.async.capacity)")
        ax.set_ylabel("events/s")
        ax.set_title(f"{job} at {results['jobs'][job]['api_latency_ms']} ms per API call")
        ax.legend()
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(results: dict[str, Any]) -> str:
    lines = [
        "| job | events | API latency | events/s | reference events/s | ratio | p50 / p95 / p99 ms |"
        " CPU s per 1,000 | ceiling events/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for job, r in results["jobs"].items():
        lines.append(
            f"| {job} | {r['events']} | {r['api_latency_ms']} ms | {r['events_per_s']} | "
            f"{r['reference_events_per_s']} | {r['ratio']}x | {r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']}"
            f" | {r['cpu_s_per_1000']} | {r.get('ceiling_events_per_s', '-')} |"
        )
    return "\n".join(lines)


__all__ = ["SCENARIOS", "run_bench", "summary", "statistics"]

"""The faults, each run on a `Run` whose batch flows: SIGKILL a task manager (timing each recovery), stop
the broker and start it again on the same port and data, storm the sandbox's services (5xx, hangs,
latency) and then replay the failed topic. Each waits for the batch to drain, accounts, and cancels."""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Any

from cokreat_jobs.dev.chaos.accounting import Run
from cokreat_jobs.dev.chaos.log import log
from cokreat_jobs.dev.chaos.report import Result
from cokreat_jobs.dev.chaos.stack import Stack


def _now_ms() -> int:
    return int(time.time() * 1000)


def _new_effect_after(run: Run, since_ms: int) -> int | None:
    ts = [r["ts_ms"] for r in run.effect_requests() if r["ts_ms"] >= since_ms]
    return min(ts) if ts else None


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
            # what the job does again after this moment is re-processing (Flink's exception history has the
            # failover too, but keeps only the latest entries)
            run.recoveries_ms.append(kill_ms)
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
            replaced = 0
            while time.monotonic() < deadline and not run.all_running():
                # a survivor can exit too while the job fails over (Beam's shutdown, not the job): a cluster
                # short of a slot would never run the job again, so bring it back to full size
                replaced += stack.cluster.ensure_taskmanagers()
                time.sleep(0.25)
            time.sleep(2)  # a failover may flap once more while the new task manager registers
            while time.monotonic() < deadline and not run.all_running():
                replaced += stack.cluster.ensure_taskmanagers()
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
                    "survivors_replaced": replaced,
                }
            )
            log(f"tm-kill: killed {victim} at event {at}; recovery {recovery} s")
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
        log(f"broker-bounce: down {actual_down:.1f} s, {refusals}/{probes} probes refused")
        if refusals == 0 or refusals < probes // 2:
            res.problems.append(f"the broker was not down: {refusals}/{probes} connection attempts refused")
        run.wait_drained(600)
        run.account(res)
    finally:
        run.cancel()
    return res


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
        seq_storm = run.last_seq()
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
        log(f"service-storm: {len(storm)} calls during the storm, statuses {dict(statuses)}")
        if not (statuses.get(503) and statuses.get(504)):
            res.problems.append(f"the storm's 503/504 were not served: {dict(statuses)}")
        run.wait_drained(600)
        # replay brings home whatever ran out of retries, until every user is deleted
        moved = 0
        for _ in range(4):
            if not run.remaining():
                break
            # the replayed events' calls are re-processing (their earlier calls were answered)
            run.recoveries_ms.append(_now_ms())
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

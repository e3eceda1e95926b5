"""Service protection: AIMD arithmetic, rate pacing on an injected clock, the in-flight cap, Retry-After."""

from __future__ import annotations

import asyncio
import gc
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.adapters.protection import (
    PROBE_SLOWDOWN,
    AdaptiveLimit,
    AdaptiveSettings,
    LatencyHistogram,
    RateLimiter,
    ServiceProtection,
    ServiceRegistry,
)
from cokreat_jobs.adapters.retry import RetryPolicy
from cokreat_jobs.core.config import load_config
from cokreat_jobs.core.errors import ConfigError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s
        await asyncio.sleep(0)


# ------------------------------------------------------------------------------------------------ AIMD


def test_aimd_decreases_multiplicatively_and_grows_by_one_per_round_trip() -> None:
    a = AdaptiveLimit(
        AdaptiveSettings(initial=16, min=1, max=64, decrease_factor=0.5, increase=1, increase_interval_ms=0)
    )
    assert a.current == 16
    assert a.on_overload(sent_at=1.0, now=2.0)
    assert a.limit == 8 and a.current == 8
    # 8 successes (one round trip at limit 8) add about 1
    for _ in range(8):
        a.on_success(3.0)
    assert 8.9 < a.limit < 9.0 and a.current == 8
    a.on_success(3.0)
    assert a.current == 9


def test_aimd_grows_at_most_once_per_interval() -> None:
    a = AdaptiveLimit(AdaptiveSettings(initial=8, increase=2, increase_interval_ms=1000))
    assert a.on_overload(sent_at=0.0, now=10.0)
    assert a.limit == 4
    for t in (10.1, 10.5, 10.99):  # within a second of the cut: no growth
        a.on_success(t)
    assert a.limit == 4
    a.on_success(11.0)
    assert a.limit == 6
    a.on_success(11.5)
    assert a.limit == 6
    a.on_success(12.0)
    assert a.limit == 8


def test_aimd_probes_past_the_last_overloaded_level_slower() -> None:
    # the gateway pushed back at 5: growing back to 5 takes the usual second per step, going past it
    # PROBE_SLOWDOWN seconds, so a steady gateway sees a 429 burst every few seconds, not every second
    a = AdaptiveLimit(AdaptiveSettings(initial=5, increase=1, increase_interval_ms=1000))
    assert a.on_overload(sent_at=0.0, now=10.0)
    assert a.limit == 2.5
    a.on_success(11.0)
    a.on_success(12.0)
    assert a.limit == 4.5
    a.on_success(13.0)
    a.on_success(12.0 + PROBE_SLOWDOWN - 0.01)
    assert a.limit == 4.5
    a.on_success(12.0 + PROBE_SLOWDOWN)
    assert a.limit == 5.5
    # overloaded again at 5.5: the plateau moves with it
    assert a.on_overload(sent_at=20.0, now=20.0)
    assert a.limit == 2.75


def test_aimd_cuts_once_per_congestion_event() -> None:
    a = AdaptiveLimit(AdaptiveSettings(initial=32, decrease_factor=0.5))
    assert a.on_overload(sent_at=10.0, now=11.0)
    # answers to requests sent before the cut report the same event
    assert not a.on_overload(sent_at=10.5, now=11.1)
    assert a.limit == 16 and a.cuts == 1
    assert a.on_overload(sent_at=11.2, now=11.3)
    assert a.limit == 8


def test_aimd_stays_within_bounds_and_the_cap() -> None:
    a = AdaptiveLimit(AdaptiveSettings(initial=100, min=2, max=64, decrease_factor=0.5), cap=10)
    assert a.current == 10  # initial clipped to the cap
    for t in range(1000):
        a.on_success(float(t))
    assert a.current == 10
    for t in range(20):
        a.on_overload(sent_at=float(t), now=float(t))
    assert a.current == 2


def test_adaptive_settings_are_validated() -> None:
    with pytest.raises(ConfigError):
        AdaptiveSettings(decrease_factor=1.0)
    with pytest.raises(ConfigError):
        AdaptiveSettings(min=5, max=4)


# ------------------------------------------------------------------------------------------ rate limit


def test_rate_limiter_paces_evenly_without_bursts() -> None:
    clock = FakeClock()
    r = RateLimiter(10.0, clock)
    delays = [r.reserve() for _ in range(5)]
    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    clock.now += 5.0  # idle time is not saved up
    assert r.reserve() == 0.0
    assert r.reserve() == pytest.approx(0.1)


def test_rate_is_split_across_parallel_subtasks() -> None:
    cfg = load_config(
        "user-delete",
        overrides=["http.services.program-service.rate_limit_rps=90", "task.parallelism=3"],
    )
    p = ServiceProtection.from_config("program-service", cfg, registry=None)
    assert p.rate is not None and p.rate.rate == pytest.approx(30.0)
    assert p.cap == 64
    # a service without a block of its own takes the default block
    other = ServiceProtection.from_config("no-such-service", cfg, registry=None)
    assert other.rate is None and other.cap == 64


def test_protection_acquire_paces_with_the_injected_clock() -> None:
    clock = FakeClock()
    p = ServiceProtection(
        "paced",
        rate_limit_rps=20,
        clock=clock,
        sleep=clock.sleep,
        registry=None,
        adaptive=AdaptiveSettings(enabled=False),
    )

    async def main() -> list[float]:
        starts = []
        for _ in range(10):
            sent = await p.acquire()
            starts.append(sent)
            p.release(sent, status=200)
        return starts

    starts = asyncio.run(main())
    assert starts[-1] - starts[0] == pytest.approx(9 * 0.05)


# ---------------------------------------------------------------------------------------------- the cap


def test_in_flight_never_exceeds_the_cap_nor_the_adaptive_limit() -> None:
    p = ServiceProtection(
        "capped", max_in_flight=4, adaptive=AdaptiveSettings(initial=64, max=64), registry=None
    )
    assert p.limit == 4
    peak = 0

    async def call() -> None:
        nonlocal peak
        sent = await p.acquire()
        peak = max(peak, p.in_flight)
        await asyncio.sleep(0.001)
        p.release(sent, status=200)

    async def main() -> None:
        await asyncio.gather(*(call() for _ in range(50)))

    asyncio.run(main())
    assert peak == 4 and p.in_flight == 0 and p.requests == 50

    p2 = ServiceProtection(
        "adaptive",
        max_in_flight=64,
        adaptive=AdaptiveSettings(initial=3, increase_interval_ms=0),
        registry=None,
    )
    peak = 0
    p = p2
    asyncio.run(main())
    # starts at 3 and grows by about 1 per round trip (50 calls ~ a few round trips), never to 50
    assert 3 <= peak <= 10


def test_overload_answers_lower_the_limit_and_successes_raise_it() -> None:
    clock = FakeClock()
    p = ServiceProtection("svc", adaptive=AdaptiveSettings(initial=16), clock=clock, registry=None)

    async def one(status: int | None, timed_out: bool = False) -> None:
        sent = await p.acquire()
        clock.now += 0.01
        p.release(sent, status=status, timed_out=timed_out)

    asyncio.run(one(429))
    assert p.limit == 8
    asyncio.run(one(None, timed_out=True))
    assert p.limit == 4
    asyncio.run(one(503))
    assert p.limit == 2
    asyncio.run(one(500))  # a server error is not overload nor success
    assert p.limit == 2
    for _ in range(10):
        clock.now += 0.5
        asyncio.run(one(200))
    assert p.limit > 2
    assert p.overloads == 3 and p.requests == 14


def test_pause_holds_every_call() -> None:
    clock = FakeClock()
    p = ServiceProtection("paused", clock=clock, sleep=clock.sleep, registry=None)
    p.pause_for(2.0)

    async def main() -> float:
        return await p.acquire()

    sent = asyncio.run(main())
    assert sent == pytest.approx(1002.0)


def test_histogram_is_cumulative() -> None:
    h = LatencyHistogram((10, 100))
    for ms in (1, 5, 50, 500):
        h.observe(ms)
    assert h.cumulative() == {"le-10": 2, "le-100": 3, "le-inf": 4}
    assert h.count == 4 and h.sum_ms == 556
    assert h.quantile(0.5) == 10


# ----------------------------------------------------------------------------- through ServiceClient


def test_client_honours_retry_after_and_records_figures() -> None:
    calls: list[float] = []
    registry = ServiceRegistry()

    async def handler(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        calls.append(loop.time())
        if len(calls) == 1:
            return web.json_response(
                {"responseCode": "CLIENT_ERROR"}, status=429, headers={"Retry-After": "0.3"}
            )
        return web.json_response({"responseCode": "OK", "result": {}})

    async def main() -> Any:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with TestServer(app) as server:
            cfg = load_config("user-delete")
            client = ServiceClient.from_config(
                "retry-after-svc",
                str(server.make_url("/")),
                cfg,
                retry=RetryPolicy(max_attempts=3, backoff_ms=1),
                # a registry of this test's own: the process-wide one holds other tests' instances too
                protection=ServiceProtection.from_config("retry-after-svc", cfg, registry=registry),
            )
            async with client:
                resp = await client.request("GET", "/x")
            return resp, client.protection

    resp, protection = asyncio.run(main())
    assert resp.status == 200
    assert calls[1] - calls[0] >= 0.28, "the retry waited the Retry-After"
    assert protection.retries == 1 and protection.overloads == 1 and protection.requests == 2
    assert registry.names() == ["retry-after-svc"]
    stats = registry.stats("retry-after-svc")
    assert stats["requests"] == 2 and stats["latency-ms-le-inf"] == 2 and stats["overloads"] == 1
    assert stats["adaptive-limit"] == protection.limit


def test_the_process_registry_lists_live_instances_only() -> None:
    from cokreat_jobs.adapters.protection import registered_services, service_stats

    name = f"svc-{uuid.uuid4().hex[:8]}"
    p = ServiceProtection(name, max_in_flight=3, adaptive=AdaptiveSettings(enabled=False))
    assert name in registered_services()
    assert service_stats(name)["adaptive-limit"] == 3 and service_stats(name)["requests"] == 0
    del p
    gc.collect()
    assert name not in registered_services() and service_stats(name) == {}

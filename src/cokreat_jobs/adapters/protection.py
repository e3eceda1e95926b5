"""Service protection: keep a job within what one instance of each service it calls can take.

Removing the reference's fixed sleeps makes the jobs fast enough to overload the services; a bulk upload of
10,000 contents must not take content-service down. Each
:class:`~cokreat_jobs.adapters.http.ServiceClient` may carry a :class:`ServiceProtection` for its service,
which every attempt of every call passes through:

- a **cap** on requests in flight (``http.services.<name>.max_in_flight``);
- an **adaptive concurrency limit** under that cap, AIMD as in Flink's async-sink congestion control
  (FLIP-242): it is cut multiplicatively (``http.adaptive.decrease_factor``) when the service says it is
  overloaded (HTTP 429 or 503, or a call times out) and grows additively on success, by
  ``http.adaptive.increase`` at most once per ``http.adaptive.increase_interval_ms`` (default 1 s: gateways
  count requests per second, and a limit that grows faster than that overshoots before the first 429 can
  come back; 0 = TCP's pace, ``increase / limit`` per success), between ``http.adaptive.min`` and
  ``http.adaptive.max``. Past the limit at which the service last pushed back it grows
  :data:`PROBE_SLOWDOWN` times less often, so a steady gateway sees a probe (and its 429s) every few
  seconds rather than every second. One burst of overload answers to requests that were already on their
  way cuts the limit once, not once per answer;
- an optional **rate limit** (``http.services.<name>.rate_limit_rps``, requests/s for the whole job, divided
  by ``task.parallelism`` since each parallel subtask has its own client), paced evenly, no bursts;
- ``Retry-After``: a throttled answer that carries it pauses every call to that service until then (the
  retrying call itself waits the same deadline; ``ServiceClient`` computes it once).

Each instance records per-service figures for the metrics: the current adaptive limit, requests, overload
answers, retries and a request-latency histogram (cumulative bucket counts, Prometheus style). Instances are
listed in a :class:`ServiceRegistry` by service name so the Flink wiring can publish them as gauges
(:func:`service_stats`): the process-wide :data:`REGISTRY` unless an instance is given its own (tests).

Everything runs on the event loop of the client that owns the instance; the clock and sleep are injectable
for tests.
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.core.redaction import redact

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "LATENCY_BUCKETS_MS",
    "OVERLOAD_STATUSES",
    "PROBE_SLOWDOWN",
    "AdaptiveLimit",
    "AdaptiveSettings",
    "LatencyHistogram",
    "RateLimiter",
    "ServiceProtection",
    "REGISTRY",
    "ServiceRegistry",
    "registered_services",
    "service_stats",
]

# What one Sunbird service instance takes from a single job (its default Play/Akka pools are a few dozen).
DEFAULT_MAX_IN_FLIGHT = 64
OVERLOAD_STATUSES = frozenset({429, 503})
LATENCY_BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)

# How much slower the adaptive limit grows past the level at which the service last answered 429/503.
PROBE_SLOWDOWN = 4

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


# ------------------------------------------------------------------------------------------- AIMD limit


@dataclass(frozen=True, slots=True)
class AdaptiveSettings:
    """``http.adaptive.*``."""

    enabled: bool = True
    initial: int = 64
    min: int = 1
    max: int = DEFAULT_MAX_IN_FLIGHT
    decrease_factor: float = 0.5
    increase: float = 1.0
    increase_interval_ms: int = 1000

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.max:
            raise ConfigError(f"http.adaptive: need 1 <= min <= max, got min={self.min} max={self.max}")
        if not 0 < self.decrease_factor < 1:
            raise ConfigError(f"http.adaptive.decrease_factor must be in (0, 1), got {self.decrease_factor}")
        if self.increase <= 0:
            raise ConfigError(f"http.adaptive.increase must be above 0, got {self.increase}")

    @classmethod
    def from_config(cls, cfg: JobConfig) -> AdaptiveSettings:
        d = cls()
        return cls(
            enabled=cfg.get_bool("http.adaptive.enabled", d.enabled),
            initial=cfg.get_int("http.adaptive.initial", d.initial),
            min=cfg.get_int("http.adaptive.min", d.min),
            max=cfg.get_int("http.adaptive.max", d.max),
            decrease_factor=cfg.get_float("http.adaptive.decrease_factor", d.decrease_factor),
            increase=cfg.get_float("http.adaptive.increase", d.increase),
            increase_interval_ms=cfg.get_int("http.adaptive.increase_interval_ms", d.increase_interval_ms),
        )


class AdaptiveLimit:
    """Additive increase, multiplicative decrease of a concurrency limit, bounded by [min, max].

    ``on_overload(sent_at)`` cuts the limit only for a request sent after the previous cut: the answers to
    requests already in flight when the service first pushed back report the same congestion event.
    """

    def __init__(self, settings: AdaptiveSettings, cap: int | None = None) -> None:
        self.settings = settings
        self.ceiling = min(settings.max, cap) if cap else settings.max
        self.floor = min(settings.min, self.ceiling)
        self.limit = float(min(max(settings.initial, self.floor), self.ceiling))
        self._last_cut = -math.inf
        self._last_change = -math.inf
        # the limit at the last cut: the level the service last pushed back at
        self._overloaded_at = math.inf
        self.cuts = 0

    @property
    def current(self) -> int:
        """The whole number of requests allowed in flight now."""
        return max(self.floor, min(self.ceiling, int(self.limit)))

    def on_success(self, now: float) -> None:
        interval = self.settings.increase_interval_ms / 1000.0
        if interval <= 0:
            step = self.settings.increase / max(self.limit, 1.0)
        else:
            step = self.settings.increase
            if self.limit + step > self._overloaded_at:
                # Past the level that was last overloaded the probe is likely to draw 429s again: probe it
                # PROBE_SLOWDOWN times less often (CUBIC's plateau near its last maximum, in AIMD terms).
                interval *= PROBE_SLOWDOWN
            if now - self._last_change < interval:
                return
        self.limit = min(float(self.ceiling), self.limit + step)
        self._last_change = now

    def on_overload(self, sent_at: float, now: float) -> bool:
        """Cut the limit; False when this answer belongs to a congestion event already acted on."""
        if sent_at < self._last_cut:
            return False
        self._overloaded_at = self.limit
        self.limit = max(float(self.floor), self.limit * self.settings.decrease_factor)
        self._last_cut = self._last_change = now
        self.cuts += 1
        return True


# ----------------------------------------------------------------------------------------- rate limiter


class RateLimiter:
    """Requests paced at ``rate`` per second, evenly (one slot every 1/rate s; an idle limiter saves none up).

    :meth:`reserve` takes the next slot and says how long to wait for it, so the pacing is plain arithmetic
    on the injected clock.
    """

    def __init__(self, rate: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0:
            raise ConfigError(f"rate limit must be above 0 requests/s, got {rate}")
        self.rate = rate
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = -math.inf

    def reserve(self) -> float:
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now


# ------------------------------------------------------------------------------------------- histogram


class LatencyHistogram:
    """Cumulative request-latency counts per upper bound (ms), plus count and sum: a Prometheus histogram."""

    def __init__(self, buckets_ms: tuple[float, ...] = LATENCY_BUCKETS_MS) -> None:
        self.buckets_ms = buckets_ms
        self._counts = [0] * (len(buckets_ms) + 1)
        self.count = 0
        self.sum_ms = 0.0

    def observe(self, ms: float) -> None:
        i = 0
        while i < len(self.buckets_ms) and ms > self.buckets_ms[i]:
            i += 1
        self._counts[i] += 1
        self.count += 1
        self.sum_ms += ms

    def cumulative(self) -> dict[str, int]:
        """``{"le-5": n, ..., "le-inf": count}`` as Prometheus' ``_bucket{le=...}`` series are."""
        out: dict[str, int] = {}
        running = 0
        for bound, n in zip((*self.buckets_ms, math.inf), self._counts, strict=True):
            running += n
            out["le-inf" if bound == math.inf else f"le-{bound:g}"] = running
        return out

    def quantile(self, q: float) -> float:
        """The upper bound of the bucket holding quantile q (0 when empty)."""
        if not self.count:
            return 0.0
        target = q * self.count
        running = 0
        for bound, n in zip(self.buckets_ms, self._counts, strict=False):
            running += n
            if running >= target:
                return float(bound)
        return float(self.buckets_ms[-1])


# ------------------------------------------------------------------------------------------ protection


class ServiceRegistry:
    """The live :class:`ServiceProtection` instances by service name (weakly held)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, weakref.WeakSet[ServiceProtection]] = collections.defaultdict(weakref.WeakSet)

    def add(self, protection: ServiceProtection) -> None:
        # the name becomes a metric label (<job>.http.<service>.*): redacted as every text that leaves
        with self._lock:
            self._live[redact(protection.name)].add(protection)

    def names(self) -> list[str]:
        """Names of the services with a live instance."""
        with self._lock:
            return sorted(name for name, live in self._live.items() if len(live))

    def stats(self, name: str) -> dict[str, float]:
        """The figures of the live instances for ``name``: the limit is the lowest one (the most throttled),
        counts are summed. Empty when none exists (yet)."""
        with self._lock:
            live = list(self._live.get(name, ()))
        if not live:
            return {}
        total: dict[str, float] = {}
        for p in live:
            for k, v in p.stats().items():
                total[k] = total.get(k, 0.0) + v
        total["adaptive-limit"] = float(min(p.limit for p in live))
        total["latency-p50-ms"] = max(p.latency.quantile(0.5) for p in live)
        total["latency-p99-ms"] = max(p.latency.quantile(0.99) for p in live)
        return total


# the process's registry, which the Flink wiring reads
REGISTRY = ServiceRegistry()


class ServiceProtection:
    """Cap, adaptive limit, rate limit and ``Retry-After`` pause for the calls to one service."""

    def __init__(
        self,
        name: str,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rate_limit_rps: float | None = None,
        adaptive: AdaptiveSettings | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        registry: ServiceRegistry | None = REGISTRY,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigError(f"http.services.{name}.max_in_flight must be at least 1, got {max_in_flight}")
        self.name = name
        self.cap = max_in_flight
        adaptive = adaptive or AdaptiveSettings()
        self.adaptive: AdaptiveLimit | None = (
            AdaptiveLimit(adaptive, max_in_flight) if adaptive.enabled else None
        )
        self.rate: RateLimiter | None = RateLimiter(rate_limit_rps, clock) if rate_limit_rps else None
        self._clock = clock
        self._sleep = sleep
        self._paused_until = -math.inf
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.in_flight = 0
        # figures for the metrics (monotonic)
        self.requests = 0
        self.overloads = 0
        self.retries = 0
        self.latency = LatencyHistogram()
        if registry is not None:
            registry.add(self)

    @classmethod
    def from_config(cls, name: str, cfg: JobConfig, **kwargs: Any) -> ServiceProtection:
        """``http.services.<name>.*`` (else ``http.services.default.*``) and ``http.adaptive.*``."""

        def key(k: str) -> str:
            own = f"http.services.{name}.{k}"
            return own if cfg.has(own) else f"http.services.default.{k}"

        rps = cfg.get_float(key("rate_limit_rps"), 0.0)
        parallelism = max(1, cfg.get_int("task.parallelism", 1))
        return cls(
            name,
            max_in_flight=cfg.get_int(key("max_in_flight"), DEFAULT_MAX_IN_FLIGHT),
            rate_limit_rps=rps / parallelism if rps > 0 else None,
            adaptive=AdaptiveSettings.from_config(cfg),
            **kwargs,
        )

    # -- the limit

    @property
    def limit(self) -> int:
        """Requests allowed in flight now: the adaptive limit, or the cap when adaptation is off."""
        return self.adaptive.current if self.adaptive is not None else self.cap

    def pause_until(self, deadline: float) -> None:
        """No call to this service starts before ``deadline`` (this instance's clock), e.g. Retry-After."""
        self._paused_until = max(self._paused_until, deadline)

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self._clock() + seconds)

    async def acquire(self) -> float:
        """Wait for a slot (pause, limit, then pace); returns the send time to give to :meth:`release`."""
        while True:
            wait = self._paused_until - self._clock()
            if wait > 0:
                await self._sleep(wait)
                continue
            if self.in_flight < self.limit:
                break
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif not fut.cancelled():
                    self._wake()  # the slot it was handed goes to the next one
                raise
        self.in_flight += 1
        if self.rate is not None:
            delay = self.rate.reserve()
            if delay > 0:
                try:
                    await self._sleep(delay)
                except BaseException:
                    self.in_flight -= 1
                    self._wake()
                    raise
        return self._clock()

    def release(self, sent_at: float, *, status: int | None = None, timed_out: bool = False) -> None:
        """One attempt ended: with an HTTP ``status``, a timeout, or another failure (neither)."""
        self.in_flight -= 1
        self.requests += 1
        now = self._clock()
        self.latency.observe(max(0.0, now - sent_at) * 1000.0)
        overloaded = timed_out or status in OVERLOAD_STATUSES
        if overloaded:
            self.overloads += 1
            if self.adaptive is not None:
                self.adaptive.on_overload(sent_at, now)
        elif status is not None and status < 500 and self.adaptive is not None:
            self.adaptive.on_success(now)
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    # -- figures

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {
            "adaptive-limit": float(self.limit),
            "in-flight": float(self.in_flight),
            "requests": float(self.requests),
            "overloads": float(self.overloads),
            "retries": float(self.retries),
            "latency-count": float(self.latency.count),
            "latency-sum-ms": self.latency.sum_ms,
            "latency-p50-ms": self.latency.quantile(0.5),
            "latency-p99-ms": self.latency.quantile(0.99),
        }
        for k, v in self.latency.cumulative().items():
            out[f"latency-ms-{k}"] = float(v)
        return out

    def __repr__(self) -> str:
        rate = f", {self.rate.rate:g}/s" if self.rate else ""
        return f"ServiceProtection({self.name!r}, limit={self.limit}/{self.cap}{rate})"


def stat_names() -> list[str]:
    """The keys :meth:`ServiceProtection.stats` returns (for registering gauges before any client exists)."""
    return list(ServiceProtection("_", registry=None).stats())


def registered_services() -> list[str]:
    """Names of the services with a live instance in this process."""
    return REGISTRY.names()


def service_stats(name: str) -> dict[str, float]:
    """The figures of the live instances for ``name`` in this process (see :meth:`ServiceRegistry.stats`)."""
    return REGISTRY.stats(name)

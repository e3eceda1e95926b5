"""``cokreat-jobs config check``: every problem of a job's configuration, without starting the job.

The job's start-up checks and its advisory ones (``core/checks.py``), then a TCP connect with a short
timeout to each endpoint the configuration names (brokers, base URLs, stores). An unreachable endpoint is a
problem here only: a job never refuses to start because a service is down at that moment (it retries).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from cokreat_jobs.core.checks import ConfigChecks, Endpoint, Problem

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = ["DEFAULT_TIMEOUT_S", "check_job_config", "unreachable"]

DEFAULT_TIMEOUT_S = 2.0


def _connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def unreachable(
    endpoints: Iterable[Endpoint],
    timeout: float = DEFAULT_TIMEOUT_S,
    connect: Callable[[str, int, float], None] = _connect,
) -> list[Problem]:
    """A problem for each endpoint (each host:port once) that a TCP connect does not reach within timeout."""
    unique: dict[tuple[str, int], Endpoint] = {}
    for endpoint in endpoints:
        unique.setdefault((endpoint.host, endpoint.port), endpoint)
    if not unique:
        return []

    def probe(endpoint: Endpoint) -> Problem | None:
        try:
            connect(endpoint.host, endpoint.port, timeout)
        except OSError as e:
            if isinstance(e, TimeoutError):
                reason = f"no answer within {timeout:g} s"
            else:
                reason = e.strerror or str(e) or type(e).__name__
            return Problem(endpoint.key, f"{endpoint} is not reachable ({reason})")
        return None

    with ThreadPoolExecutor(max_workers=min(8, len(unique))) as pool:
        results = list(pool.map(probe, unique.values()))
    return [p for p in results if p is not None]


def check_job_config(
    checks: ConfigChecks,
    cfg: JobConfig,
    *,
    probe: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    connect: Callable[[str, int, float], None] = _connect,
) -> list[Problem]:
    """Start-up and advisory problems, then (``probe``) the unreachable endpoints."""
    problems = checks.startup(cfg) + checks.advisory(cfg)
    if probe:
        problems += unreachable(checks.endpoints(cfg), timeout, connect)
    return problems

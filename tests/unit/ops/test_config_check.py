"""ops/config_check.py: `config check`'s problems, the endpoints probed with a real TCP connect."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from cokreat_jobs.core.checks import ConfigChecks, Endpoint, Problem
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.ops.config_check import check_job_config, unreachable


@pytest.fixture
def listening() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.fixture
def closed_port() -> int:
    # a port that was free a moment ago and has nothing listening now: connect is refused at once
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def test_a_listening_endpoint_is_reachable_and_a_closed_one_is_not(listening: int, closed_port: int) -> None:
    problems = unreachable(
        [
            Endpoint("kafka.broker-servers", "127.0.0.1", listening),
            Endpoint("program-service-baseUrl", "127.0.0.1", closed_port),
        ],
        timeout=2.0,
    )
    assert len(problems) == 1
    assert (
        problems[0].key == "program-service-baseUrl"
        and f"127.0.0.1:{closed_port} is not reachable" in problems[0].message
    )


def test_each_host_and_port_is_probed_once() -> None:
    seen: list[tuple[str, int]] = []

    def connect(host: str, port: int, timeout: float) -> None:
        seen.append((host, port))
        raise TimeoutError

    problems = unreachable([Endpoint("a", "h", 1), Endpoint("b", "h", 1)], timeout=0.5, connect=connect)
    assert seen == [("h", 1)] and [str(p) for p in problems] == [
        "error: a: h:1 is not reachable (no answer within 0.5 s)"
    ]


def test_check_job_config_adds_advisory_and_reachability_to_the_start_up_checks() -> None:
    checks = ConfigChecks(
        startup=lambda cfg: [Problem("s", "start")],
        advisory=lambda cfg: [Problem("a", "advice", "warning")],
        endpoints=lambda cfg: [Endpoint("e", "h", 1)],
    )

    def refuse(host: str, port: int, timeout: float) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    cfg = JobConfig({})
    assert [p.key for p in check_job_config(checks, cfg, connect=refuse)] == ["s", "a", "e"]
    assert [p.key for p in check_job_config(checks, cfg, probe=False, connect=refuse)] == ["s", "a"]

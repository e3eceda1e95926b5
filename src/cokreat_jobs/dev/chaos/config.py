"""What every chaos run of every job sets (topics, parallelism, checkpoints, a restart strategy that never
gives up, retries, DEBUG logs), user-delete's configuration, and the secrets seeded into every run for the
data-protection check."""

from __future__ import annotations

from collections.abc import Iterable

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.dev.chaos.stack import Stack

JOB = "user-delete"

# Known secrets seeded into every chaos run's configuration: the data-protection check greps the cluster's
# logs and the failed topic for them (and for the run's user ids).
SEEDED_SECRET = "chaos-SECRET-7f3a9c1e5b"
SEEDED_SA_KEY = "-----BEGIN PRIVATE KEY-----chaosSAkey4d2b8e-----END PRIVATE KEY-----"


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

"""What every chaos run of every job sets (topics, parallelism, checkpoints, a restart strategy that never
gives up, retries, DEBUG logs), or, for the scenarios run with the shipped defaults, all but the restart and
checkpoint settings; user-delete's configuration; the secrets seeded into every run for the data-protection
check; and the check that a defaults run really ran with the shipped settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.dev.chaos.stack import Stack

JOB = "user-delete"

# Known secrets seeded into every chaos run's configuration: the data-protection check greps the cluster's
# logs and the failed topic for them (and for the run's user ids). No code path of user-delete or
# auto-creator-v2 uses them (user-delete has no credential; the stack's storage is a local directory, which
# takes none), so they only catch the configuration itself leaking; the secret a job really reads is the
# service account of `seeded_service_account` (content-auto-creator's Drive downloads).
SEEDED_SECRET = "chaos-SECRET-7f3a9c1e5b"
SEEDED_SA_KEY = "-----BEGIN PRIVATE KEY-----chaosSAkey4d2b8e-----END PRIVATE KEY-----"
SEEDED_SECRETS = (SEEDED_SECRET, "chaosSAkey4d2b8e")


def seeded_service_account(token_uri: str) -> tuple[dict[str, str], list[str]]:
    """A Google service account made for one run, that content-auto-creator really uses for its Drive
    downloads (a JWT signed with its key is exchanged for a token at `token_uri`, the sandbox): its JSON, and
    the secrets the data-protection check seeks (each line of the key's body, so a part of the key leaked
    raw or JSON-escaped is found)."""
    import uuid

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_id = f"chaos-sa-key-{uuid.uuid4().hex}"
    # the key's body lines (64 characters each; a short last line could match by chance, so not that one)
    body = [line for line in pem.splitlines() if len(line) >= 32 and not line.startswith("-----")]
    info = {
        "type": "service_account",
        "project_id": "cokreat-chaos",
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": "drive-reader@cokreat-chaos.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    return info, body


# The restart and checkpoint settings of the chaos runs that do not use the shipped defaults: checkpoints
# every 2 s and a restart strategy that never gives up, so a long run with many faults exercises recovery
# without ending FAILED. They hide what the shipped settings (task.* of conf/base.conf: fixed-delay, 3
# attempts 30 s apart, checkpoints every 60 s, 0 tolerated checkpoint failures) do under the same faults,
# so some scenarios run without them (`defaults=True`).
NEVER_GIVE_UP = [
    "task.checkpointing.interval=2000",
    "task.restart-strategy.type=exponential-delay",
    "task.restart-strategy.delay=1000",
    "task.restart-strategy.max-delay=8000",
    "task.checkpointing.tolerable-failures=100000",
]
# The keys those overrides set: a defaults run must leave every one of them at the job's shipped value.
RESTART_CHECKPOINT_KEYS = (
    "task.checkpointing.interval",
    "task.checkpointing.timeout",
    "task.checkpointing.tolerable-failures",
    "task.restart-strategy.type",
    "task.restart-strategy.attempts",
    "task.restart-strategy.delay",
    "task.restart-strategy.max-delay",
)


def chaos_overrides(stack: Stack, topic: str, defaults: bool = False) -> list[str]:
    """What every chaos run of every job sets: its topics, parallelism 2, retries that outlast a storm,
    DEBUG logs and a seeded secret (for the data-protection check); unless `defaults`, checkpoints every
    2 s and a restart strategy that never gives up (NEVER_GIVE_UP)."""
    return [
        f"kafka.broker-servers={stack.broker.bootstrap}",
        f"kafka.input.topic={topic}",
        f"kafka.failed.topic={topic}.failed",
        f"kafka.groupId=g-{topic}",
        "task.parallelism=2",
        *([] if defaults else NEVER_GIVE_UP),
        "task.async.capacity=20",
        "http.retry.max_attempts=10",
        "http.retry.backoff_ms=100",
        "http.read_timeout_ms=5000",
        "log.level=DEBUG",
        f'cloud_storage_secret="{SEEDED_SECRET}"',
    ]


def job_config(stack: Stack, topic: str, extra: Iterable[str] = (), defaults: bool = False) -> JobConfig:
    overrides = [
        *chaos_overrides(stack, topic, defaults),
        f"program-service-baseUrl={stack.server.url}",
        f'g_service_acct_cred="{{\\"private_key\\": \\"{SEEDED_SA_KEY}\\"}}"',
        *extra,
    ]
    return load_config(JOB, overrides=overrides, env={})


def restart_checkpoint_settings(cfg: JobConfig) -> dict[str, Any]:
    """The restart and checkpoint keys of a job's configuration (unset ones as None)."""
    return {k: cfg.get(k, None) for k in RESTART_CHECKPOINT_KEYS}


def defaults_problems(
    job: str, cfg: JobConfig, checkpoint_config: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """For a run that claims the shipped defaults: the settings it ran with, and what differs from the job's
    shipped configuration (`load_config(job)` with no overrides), in the submitted configuration and in
    the running job's checkpoint configuration (Flink's ``/jobs/{id}/checkpoints/config``: ``interval``,
    ``timeout``, ``tolerable_failed_checkpoints``). None: the checkpoint configuration could not be read,
    itself a problem (the check would otherwise pass unseen)."""
    shipped = restart_checkpoint_settings(load_config(job, env={}))
    used = restart_checkpoint_settings(cfg)
    problems = [
        f"{k}={used[k]!r}, shipped {shipped[k]!r}" for k in RESTART_CHECKPOINT_KEYS if used[k] != shipped[k]
    ]
    running: dict[str, Any] = {}
    if checkpoint_config is None:
        problems.append("the running job's checkpoint configuration could not be read")
    else:
        running = {
            "interval": checkpoint_config.get("interval"),
            "timeout": checkpoint_config.get("timeout"),
            "tolerable_failed_checkpoints": checkpoint_config.get("tolerable_failed_checkpoints"),
        }
        expected = {
            "interval": shipped["task.checkpointing.interval"],
            "timeout": shipped["task.checkpointing.timeout"],
            "tolerable_failed_checkpoints": shipped["task.checkpointing.tolerable-failures"] or 0,
        }
        for k, want in expected.items():
            if want is not None and running[k] != int(want):
                problems.append(f"the running job's checkpoint {k} is {running[k]!r}, shipped {want!r}")
    return {"submitted": used, "running_checkpoints": running, "shipped": shipped}, [
        f"not the shipped defaults: {p}" for p in problems
    ]

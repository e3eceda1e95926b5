"""user-delete's configuration checks (``core/checks.py``): at start, the brokers and program-service's base
URL; in ``config check`` also a release-7 / release-8 input-topic mix-up."""

from __future__ import annotations

from cokreat_jobs.core.checks import (
    ConfigChecks,
    Endpoint,
    Problem,
    check_base_url,
    check_kafka,
    kafka_endpoints,
    url_endpoint,
)
from cokreat_jobs.core.config import JobConfig, load_config

BASE_URL_KEY = "program-service-baseUrl"
RELEASE_7_TOPIC = "kafka.input.topic"
RELEASE_8_TOPIC = "kafka.input.user_delete_topic"


def startup(cfg: JobConfig) -> list[Problem]:
    return check_kafka(cfg) + check_base_url(cfg, BASE_URL_KEY)


def _named(cfg: JobConfig, packaged: JobConfig, key: str) -> str | None:
    """The key's value when the deployment set it (it differs from the packaged default under its job.env)."""
    value = cfg.get_str(key, "")
    return value if value and value != packaged.get_str(key, "") else None


def advisory(cfg: JobConfig) -> list[Problem]:
    """Both release-7's ``kafka.input.topic`` and release-8's ``kafka.input.user_delete_topic`` set, to
    different topics: only one is read, and which one the deployment meant is not clear."""
    if not cfg.has(RELEASE_8_TOPIC):
        return []
    packaged = load_config(
        cfg.job or "user-delete", overrides=[f"job.env={cfg.get_str('job.env', 'sunbirddev')}"], env={}
    )
    old, new = _named(cfg, packaged, RELEASE_7_TOPIC), _named(cfg, packaged, RELEASE_8_TOPIC)
    if old is None or new is None or old == new:
        return []
    return [
        Problem(
            RELEASE_8_TOPIC,
            f"{new!r} differs from {RELEASE_7_TOPIC} {old!r}: a release-7 and a release-8 key name different "
            "topics; keep the one the deployment means",
        )
    ]


def endpoints(cfg: JobConfig) -> list[Endpoint]:
    found = url_endpoint(BASE_URL_KEY, cfg.get_str(BASE_URL_KEY, ""))
    return kafka_endpoints(cfg) + ([found] if found else [])


CHECKS = ConfigChecks(startup=startup, advisory=advisory, endpoints=endpoints)

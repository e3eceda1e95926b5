"""user-delete's configuration checks (``core/checks.py``): at start, the brokers, program-service's base
URL and the failed topic (named, and not an input topic); in ``config check`` also a release-7 / release-8
input-topic mix-up and a failed topic shared with the content jobs."""

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
from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.jobs.user_delete.logic import input_topics

BASE_URL_KEY = "program-service-baseUrl"
RELEASE_7_TOPIC = "kafka.input.topic"
RELEASE_8_TOPIC = "kafka.input.user_delete_topic"
FAILED_TOPIC = "kafka.failed.topic"
# the content jobs' failed topic, `{env}.auto.creation.job.request.failed`: also the value the Scala
# cokreat-user-delete.conf shipped (copied from auto-creator-v2's; that job never wrote a failed topic)
CONTENT_FAILED_SUFFIX = ".auto.creation.job.request.failed"


def check_failed_topic(cfg: JobConfig) -> list[Problem]:
    """The failed topic is named (``kafka.failed.topic``, which wins over the packaged ``{env}``-derived
    default) and is none of the topics the job reads: its records would come back as input."""
    topic = cfg.get_str(FAILED_TOPIC, "").strip()
    if not topic:
        return [Problem(FAILED_TOPIC, "is empty: name the topic failed deletions (personal data) go to")]
    try:
        read = input_topics(cfg)
    except ConfigError:  # a release-8 shape without its topic: input_shape's own error says so at start
        return []
    if topic in read:
        return [Problem(FAILED_TOPIC, f"{topic!r} is a topic the job reads: failed events would come back")]
    return []


def startup(cfg: JobConfig) -> list[Problem]:
    return check_kafka(cfg) + check_base_url(cfg, BASE_URL_KEY) + check_failed_topic(cfg)


def shared_failed_topic(cfg: JobConfig) -> list[Problem]:
    """A failed topic the content jobs write too: user ids and names would sit beside their records."""
    topic = cfg.get_str(FAILED_TOPIC, "").strip()
    if not topic.endswith(CONTENT_FAILED_SUFFIX):
        return []
    return [
        Problem(
            FAILED_TOPIC,
            f"{topic!r} is the content jobs' failed topic (the Scala cokreat-user-delete.conf shipped it; "
            "that job wrote no failed topic): user-delete's failed records hold user ids and names, give "
            "them a topic of their own, e.g. {env}.delete.user.failed, with the input topic's retention "
            "and access",
            "warning",
        )
    ]


def _named(cfg: JobConfig, packaged: JobConfig, key: str) -> str | None:
    """The key's value when the deployment set it (it differs from the packaged default under its job.env)."""
    value = cfg.get_str(key, "")
    return value if value and value != packaged.get_str(key, "") else None


def advisory(cfg: JobConfig) -> list[Problem]:
    return _release_mix_up(cfg) + shared_failed_topic(cfg)


def _release_mix_up(cfg: JobConfig) -> list[Problem]:
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

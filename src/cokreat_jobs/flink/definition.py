"""What a job contributes to the shared pipeline: its name, its processor, its key, an optional next stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cokreat_jobs.core.checks import ConfigChecks
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import Metrics, Processor

__all__ = [
    "COUNTER_NAMES",
    "EVENTS_COUNT_NAMES",
    "JobDefinition",
    "NextStage",
    "ReferenceNames",
    "counter_names",
]

# Outcome -> counter name: ours (and content-auto-creator's Scala names) ...
COUNTER_NAMES = {
    "total": "total-message-count",
    "success": "success-message-count",
    "skipped": "skipped-message-count",
    "failed": "failed-message-count",
    "error": "error-message-count",
    "retry": "retry-count",
}
# ... and the Scala auto-creator-v2's and user-delete's (no error or retry counter there: ours are kept)
EVENTS_COUNT_NAMES = {
    **COUNTER_NAMES,
    "total": "total-events-count",
    "success": "success-events-count",
    "skipped": "skipped-events-count",
    "failed": "failed-events-count",
}


def counter_names(cfg: JobConfig, defaults: dict[str, str] | None = None) -> dict[str, str]:
    """Outcome -> Flink counter name, e.g. "retry" -> "retry-count"; each set by `metrics.<outcome>`."""
    names = dict(defaults or COUNTER_NAMES)
    for k in list(names):
        names[k] = cfg.get_str(f"metrics.{k}", names[k]) or names[k]
    return names


@dataclass(frozen=True)
class ReferenceNames:
    """What the Scala job was deployed as, used when its config shape is loaded (`JobDefinition.reference`):
    its job name, which was its metric group too (`BaseJobConfig.jobName`), and its counter names."""

    job: str
    counters: dict[str, str]


@dataclass(frozen=True)
class NextStage:
    """A second async operator, fed with the requests the first stage's `handed-on` outcomes carry.

    Its outcome is the event's final one (the first stage counts `total`, the next stage the result), and
    its failed records go to the same failed topic. A separate operator so that it has its own parallelism
    and in-flight capacity, and the first stage's slots are not held while it waits.
    """

    # uid suffix ("<job>-<name>", what savepoints restore by: never change it), and operator name by default
    name: str
    processor_factory: Callable[[JobConfig, Metrics], Processor]
    # e.g. task.link-collection.parallelism (default 1, as the reference)
    parallelism_key: str
    # the operator's name (Flink UI, metrics' operator_name label), e.g. the reference's; default `name`
    operator_name: str = ""


@dataclass(frozen=True)
class JobDefinition:
    """What a job contributes to the shared pipeline."""

    name: str
    # Builds the processor inside the Flink worker (it owns HTTP sessions, so it cannot be pickled).
    processor_factory: Callable[[JobConfig, Metrics], Processor]
    # The key that keeps one object's events in order (e.g. object.id); "" when the event has none.
    key_of: Callable[[dict[str, Any]], str]
    # Metric names are configurable so dashboards built on the Scala jobs keep working.
    metric_prefix_key: str = "metrics"
    next_stage: NextStage | None = None
    # False: no key_by; the async operator reads the Kafka rows directly (one Python operator, each record
    # crosses the JVM/Python boundary once). Events of one key then stay in order only as far as Kafka keeps
    # them: a key's records share a partition when the producer keys them, and the per-key lock orders them
    # within a subtask. For jobs whose effects for one key commute (user-delete: deleting a user twice).
    keyed: bool = True
    # What the job checks in its configuration at start (and `config check` besides), jobs/<job>/checks.py.
    checks: ConfigChecks = ConfigChecks()
    # The Kafka topics the job reads (one source, every topic); None: `kafka.input.topic` alone. A job whose
    # config has more than one shape (user-delete: release-7's key, release-8's two) says which it reads.
    input_topics: Callable[[JobConfig], list[str]] | None = None
    # The name of the first process operator (Flink UI, the metrics' operator_name label): the reference's.
    # Only the name: its uid stays "<job>-process", what savepoints restore by.
    process_name: str = "process"
    # The reference's names when the loaded config has the reference's shape, else None (ours apply): the
    # defaults of `job.name`, `metrics.group` and `metrics.*`. user-delete: release-8's keys.
    reference: Callable[[JobConfig], ReferenceNames | None] | None = None

    def _reference(self, cfg: JobConfig) -> ReferenceNames | None:
        return self.reference(cfg) if self.reference is not None else None

    def job_name(self, cfg: JobConfig) -> str:
        """The Flink job's name: `job.name`; unset, the reference's for its config shape, else ours."""
        ref = self._reference(cfg)
        return cfg.get_str("job.name", "") or (ref.job if ref else self.name)

    def metric_group(self, cfg: JobConfig) -> str:
        """The group of the job's metrics: `metrics.group`; unset, the reference's job name for its config
        shape (its group was its job name), else ours. Independent of `job.name`."""
        ref = self._reference(cfg)
        return cfg.get_str("metrics.group", "") or (ref.job if ref else self.name)

    def counter_names(self, cfg: JobConfig) -> dict[str, str]:
        """Outcome -> counter name: `metrics.<outcome>`; unset, the reference's for its shape, else ours."""
        ref = self._reference(cfg)
        return counter_names(cfg, ref.counters if ref else None)

    def topics(self, cfg: JobConfig) -> list[str]:
        if self.input_topics is None:
            return [cfg.get_str("kafka.input.topic")]
        return self.input_topics(cfg)

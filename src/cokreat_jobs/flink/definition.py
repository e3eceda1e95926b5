"""What a job contributes to the shared pipeline: its name, its processor, its key, an optional next stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cokreat_jobs.core.checks import ConfigChecks
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import Metrics, Processor

__all__ = ["JobDefinition", "NextStage"]


@dataclass(frozen=True)
class NextStage:
    """A second async operator, fed with the requests the first stage's `handed-on` outcomes carry.

    Its outcome is the event's final one (the first stage counts `total`, the next stage the result), and
    its failed records go to the same failed topic. A separate operator so that it has its own parallelism
    and in-flight capacity, and the first stage's slots are not held while it waits.
    """

    # operator name, and uid suffix: "<job>-<name>"
    name: str
    processor_factory: Callable[[JobConfig, Metrics], Processor]
    # e.g. task.link-collection.parallelism (default 1, as the reference)
    parallelism_key: str


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

    def topics(self, cfg: JobConfig) -> list[str]:
        if self.input_topics is None:
            return [cfg.get_str("kafka.input.topic")]
        return self.input_topics(cfg)

"""content-auto-creator on Flink: Kafka (auto-create requests) -> create / update / upload / review / publish
through the content APIs -> link into collections -> failed topic.

Also the file `flink run -py` submits:
`flink run -py job.py [--config FILE | --config.file.path FILE] [--set KEY=VALUE]...`.
"""

from __future__ import annotations

import sys
from typing import Any

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import Metrics, Processor
from cokreat_jobs.flink.definition import JobDefinition
from cokreat_jobs.jobs.content_auto_creator.checks import CHECKS
from cokreat_jobs.jobs.content_auto_creator.processor import ContentAutoCreator
from cokreat_jobs.jobs.content_auto_creator.settings import JOB_NAME


def make_processor(cfg: JobConfig, metrics: Metrics) -> Processor:
    return ContentAutoCreator.from_config(cfg, metrics)


def content_key(event: dict[str, Any]) -> str:
    # one object's events in order (its content is created, then updated, by the same steps)
    obj = event.get("object")
    oid = obj.get("id") if isinstance(obj, dict) else None
    return oid if isinstance(oid, str) else ""


DEFINITION = JobDefinition(
    name=JOB_NAME,
    processor_factory=make_processor,
    key_of=content_key,
    checks=CHECKS,
    # the reference's operator name (uid content-auto-creator-process, what savepoints restore by)
    process_name="content-auto-creator-process",
)


if __name__ == "__main__":
    # import by module name so Flink pickles the definition by reference, not this __main__ copy
    from cokreat_jobs.flink.runner import job_main
    from cokreat_jobs.jobs.content_auto_creator import job as _job

    job_main(_job.DEFINITION, sys.argv[1:])

"""auto-creator-v2 on Flink: Kafka (import requests) -> import into the graph and external stores -> link
into collection units -> failed topic.

Also the file `flink run -py` submits:
`flink run -py job.py [--config FILE | --config.file.path FILE] [--set KEY=VALUE]...`.
"""

from __future__ import annotations

import sys
from typing import Any

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import Metrics, Processor
from cokreat_jobs.flink.definition import JobDefinition, NextStage
from cokreat_jobs.jobs.auto_creator_v2.checks import CHECKS
from cokreat_jobs.jobs.auto_creator_v2.linker import CollectionLinker
from cokreat_jobs.jobs.auto_creator_v2.processor import AutoCreatorV2
from cokreat_jobs.jobs.auto_creator_v2.settings import JOB_NAME


def make_processor(cfg: JobConfig, metrics: Metrics) -> Processor:
    return AutoCreatorV2.from_config(cfg, metrics)


def make_linker(cfg: JobConfig, metrics: Metrics) -> Processor:
    return CollectionLinker.from_config(cfg, metrics)


def object_key(event: dict[str, Any]) -> str:
    # one object's imports in order
    edata = event.get("edata")
    meta = edata.get("metadata") if isinstance(edata, dict) else None
    ident = meta.get("identifier") if isinstance(meta, dict) else None
    return ident if isinstance(ident, str) else ""


DEFINITION = JobDefinition(
    name=JOB_NAME,
    processor_factory=make_processor,
    key_of=object_key,
    # the reference's second operator, with its parallelism key
    # (uid auto-creator-v2-link-collection; operator name the reference's)
    next_stage=NextStage(
        "link-collection", make_linker, "task.link-collection.parallelism", "link-collection-process"
    ),
    checks=CHECKS,
    process_name="auto-creator-v2",  # the reference's operator name (uid auto-creator-v2-process)
)


if __name__ == "__main__":
    from cokreat_jobs.flink.runner import job_main
    from cokreat_jobs.jobs.auto_creator_v2 import job as _job

    job_main(_job.DEFINITION, sys.argv[1:])

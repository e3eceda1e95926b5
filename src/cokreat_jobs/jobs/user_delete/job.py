"""user-delete on Flink: Kafka (user deletions; with release-8 keys, ownership transfers too) ->
program-service -> failed topic.

Also the file `flink run -py` submits:
`flink run -py job.py [--config FILE | --config.file.path FILE] [--set KEY=VALUE]...`.
"""

from __future__ import annotations

import sys
from typing import Any

from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import Metrics, Processor
from cokreat_jobs.flink.definition import EVENTS_COUNT_NAMES, JobDefinition, ReferenceNames
from cokreat_jobs.jobs.user_delete.checks import CHECKS
from cokreat_jobs.jobs.user_delete.logic import (
    JOB_NAME,
    REFERENCE_JOB_NAME,
    TRANSFER_ACTION,
    UserDeletion,
    input_topics,
    is_release_8,
)


def make_processor(cfg: JobConfig, metrics: Metrics) -> Processor:
    return UserDeletion.from_config(cfg, metrics)


def user_key(event: dict[str, Any]) -> str:
    # one user's events in order; the id is only a key here, never logged
    edata = event.get("edata")
    if not isinstance(edata, dict):
        return ""
    if edata.get("action") == TRANSFER_ACTION:  # the giving user's
        profile = edata.get("fromUserProfile")
        uid = profile.get("userId") if isinstance(profile, dict) else None
    else:
        uid = edata.get("userId")
    return uid if isinstance(uid, str) else ""


# A release-8 config is a deployment of the Scala cokreat-user-delete: its job name, metric group and
# *-events-count names stay, so its dashboards find the series (docs/OPERATIONS.md, metrics migration).
REFERENCE = ReferenceNames(REFERENCE_JOB_NAME, EVENTS_COUNT_NAMES)


def reference_names(cfg: JobConfig) -> ReferenceNames | None:
    return REFERENCE if is_release_8(cfg) else None


DEFINITION = JobDefinition(
    name=JOB_NAME,
    processor_factory=make_processor,
    key_of=user_key,
    # No key_by: deleting a user's data twice, or two deletions in either order, ends the same; the Kafka
    # rows go straight into the async operator (one Python operator instead of two, no shuffle), which is
    # what makes this job as lean as a bare PyFlink async pipeline (docs/PERFORMANCE.md).
    keyed=False,
    checks=CHECKS,
    # release-7's kafka.input.topic, or release-8's two topics, read by the one source (logic.input_shape)
    input_topics=input_topics,
    # the Scala job's operator (release-8: `user-delete` and `ownership-transfer`, both this one)
    process_name="user-delete",
    reference=reference_names,
)


if __name__ == "__main__":
    # import by module name so Flink pickles the definition by reference, not this __main__ copy
    from cokreat_jobs.flink.runner import job_main
    from cokreat_jobs.jobs.user_delete import job as _job

    job_main(_job.DEFINITION, sys.argv[1:])

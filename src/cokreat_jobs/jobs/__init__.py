"""The jobs, by the names their Scala originals were deployed under: the one job registry.

One package per job, the same file names for the same roles: ``job.py`` wires the Flink graph (and is the
file ``flink run -py`` submits), the other modules are plain logic. No job imports another.

- ``user_delete``, ``content_auto_creator``, ``auto_creator_v2``: the jobs
- :data:`JOB_MODULES`: job name -> the module of its ``job.py``
- :func:`job_module`, :func:`job_definition`, :func:`job_file`
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cokreat_jobs.flink.definition import JobDefinition

JOB_MODULES = {
    "user-delete": "cokreat_jobs.jobs.user_delete.job",
    "content-auto-creator": "cokreat_jobs.jobs.content_auto_creator.job",
    "auto-creator-v2": "cokreat_jobs.jobs.auto_creator_v2.job",
}


def job_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(JOB_MODULES[name])
    except KeyError:
        raise KeyError(f"unknown job {name!r}; jobs: {', '.join(sorted(JOB_MODULES))}") from None


def job_file(name: str) -> Path:
    """The file `flink run -py` submits for this job."""
    module = job_module(name)
    assert module.__file__ is not None
    return Path(module.__file__).resolve()


def job_definition(name: str) -> JobDefinition:
    """What the job contributes to the shared pipeline (its ``DEFINITION``)."""
    definition: JobDefinition = job_module(name).DEFINITION
    return definition

"""The jobs, by the names their Scala originals were deployed under."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

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

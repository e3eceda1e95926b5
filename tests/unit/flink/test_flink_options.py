"""HARDENING 10: the Flink options a job is started with; local runs keep the MiniCluster's REST API (no
auth, jar upload) on loopback unless the configuration says otherwise. No JVM: the options are plain data."""

from __future__ import annotations

from typing import Any

import pytest

from cokreat_jobs.core.config import load_config
from cokreat_jobs.flink import runner
from cokreat_jobs.flink.definition import JobDefinition
from cokreat_jobs.flink.pipeline import flink_options


def test_local_runs_bind_the_rest_api_to_loopback() -> None:
    options = flink_options(load_config("user-delete", env={}), local=True)
    assert options["rest.bind-address"] == "127.0.0.1"
    assert options["rest.address"] == "127.0.0.1"
    # the blob server (and the task manager's own servers) listen on the bind hosts
    assert options["jobmanager.bind-host"] == "127.0.0.1"
    assert options["taskmanager.bind-host"] == "127.0.0.1"


def test_the_config_decides_when_it_names_them() -> None:
    cfg = load_config(
        "user-delete", overrides=["flink.rest.bind-address=0.0.0.0", "flink.rest.port=8089"], env={}
    )
    options = flink_options(cfg, local=True)
    assert options["rest.bind-address"] == "0.0.0.0"  # asked for: passed through as it is
    assert options["rest.address"] == "127.0.0.1"
    assert options["rest.port"] == "8089"
    cfg = load_config("user-delete", overrides=['flink={ rest.address = "10.0.0.5" }'], env={})
    assert flink_options(cfg, local=True)["rest.address"] == "10.0.0.5"


def test_a_job_submitted_to_a_cluster_keeps_the_cluster_s_own_addresses() -> None:
    # under `flink run -py` these options would redirect the client, not bind a server
    options = flink_options(load_config("user-delete", env={}))
    assert not set(options) & {
        "rest.bind-address",
        "rest.address",
        "jobmanager.bind-host",
        "taskmanager.bind-host",
    }


def test_the_other_options_are_unchanged() -> None:
    cfg = load_config("user-delete", overrides=["task.restart-strategy.attempts=7"], env={})
    options = flink_options(cfg, local=True)
    assert options["restart-strategy.type"] == "fixed-delay"
    assert options["restart-strategy.fixed-delay.attempts"] == "7"
    assert options["execution.checkpointing.tolerable-failed-checkpoints"] == "0"


def test_the_configured_checkpoint_timeout_is_applied() -> None:
    shipped = flink_options(load_config("content-auto-creator", env={}))
    assert shipped["execution.checkpointing.timeout"] == "4200000 ms"
    cfg = load_config("user-delete", overrides=["task.checkpointing.timeout=90000"], env={})
    assert flink_options(cfg)["execution.checkpointing.timeout"] == "90000 ms"


class _Stop(Exception):
    pass


def test_run_local_starts_the_minicluster_with_the_local_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cokreat-jobs run` (and so make demo, bench and the e2e tests, through LocalJobRun) asks for them."""
    asked: dict[str, Any] = {}

    def configuration(cfg: Any, *, local: bool = False) -> str:
        asked["local"] = local
        return "conf"

    class Env:
        @staticmethod
        def get_execution_environment(conf: Any) -> str:
            asked["conf"] = conf
            return "env"

    def build(definition: Any, cfg: Any, env: Any = None) -> Any:
        asked["env"] = env
        raise _Stop

    monkeypatch.setattr(runner, "flink_configuration", configuration)
    monkeypatch.setattr(runner, "StreamExecutionEnvironment", Env)
    monkeypatch.setattr(runner, "build_pipeline", build)
    definition = JobDefinition(name="x", processor_factory=lambda cfg, m: None, key_of=lambda e: "")  # type: ignore[arg-type,return-value]
    with pytest.raises(_Stop):
        runner.run_local(definition, load_config("user-delete", env={}))
    assert asked == {"local": True, "conf": "conf", "env": "env"}

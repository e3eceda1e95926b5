"""flink/runner.py's job entry point: the arguments Sunbird's chart passes, checks before the graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.flink import runner
from cokreat_jobs.jobs import job_definition


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{f}"],
        ["--config={f}"],
        ["--config.file.path", "{f}"],
        ["--config.file.path={f}"],
    ],
)
def test_both_spellings_of_the_config_file(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "user-delete.conf"
    conf.write_text('kafka.groupId = "from-the-file"\n')
    built: dict[str, Any] = {}

    class Env:
        def execute(self, name: str) -> None:
            built["executed"] = name

    def build(definition: Any, cfg: Any, env: Any = None) -> Env:
        built["group"] = cfg.get_str("kafka.groupId")
        return Env()

    monkeypatch.setattr(runner, "build_pipeline", build)
    args = [a.format(f=conf) for a in argv] + ["--set", "job.name=n"]
    runner.job_main(job_definition("user-delete"), args)
    assert built == {"group": "from-the-file", "executed": "n"}


def test_the_parsed_arguments() -> None:
    args = runner.parse_job_args(
        "j", ["--config.file.path", "/data/flink/conf/j.conf", "--set", "a=1", "--set", "b=2"]
    )
    assert args.config == "/data/flink/conf/j.conf" and args.overrides == ["a=1", "b=2"]
    assert runner.parse_job_args("j", []).config is None


def _no_pipeline(definition: Any, cfg: Any, env: Any = None) -> Any:
    raise AssertionError("the graph must not be built")


def test_a_missing_include_stops_the_job_before_the_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "user-delete.conf"
    conf.write_text('include file("/data/flink/conf/base-config.conf")\n')
    monkeypatch.setattr(runner, "build_pipeline", _no_pipeline)
    with pytest.raises(ConfigError, match="/data/flink/conf/base-config.conf"):
        runner.job_main(job_definition("user-delete"), ["--config.file.path", str(conf)])


def test_start_up_checks_stop_the_job_before_the_graph_listing_every_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "build_pipeline", _no_pipeline)
    argv = ["--set", "program-service-baseUrl=program-service:9000", "--set", "kafka.broker-servers=kafka"]
    with pytest.raises(ConfigError) as caught:
        runner.job_main(job_definition("user-delete"), argv)
    assert "program-service-baseUrl" in str(caught.value) and "kafka.broker-servers" in str(caught.value)


def test_run_local_checks_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from cokreat_jobs.core.config import load_config

    def no_env(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no Flink environment before the checks")

    monkeypatch.setattr(runner, "flink_configuration", no_env)
    cfg = load_config("content-auto-creator", overrides=["cloud_storage_type=dropbox"], env={})
    with pytest.raises(ConfigError, match="cloud_storage_type"):
        runner.run_local(job_definition("content-auto-creator"), cfg)

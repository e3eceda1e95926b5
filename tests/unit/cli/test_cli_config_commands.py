"""`cokreat-jobs config show|check JOB` and `--config.file.path` as `--config`'s other spelling."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pyhocon import ConfigFactory

from cokreat_jobs.cli.main import main
from cokreat_jobs.dev.stack import local


@pytest.fixture(autouse=True)
def no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "read_endpoints", lambda: None)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), env={"COKREAT__LOG__ID_HASH_SALT": None})


# (the --set that puts a secret in, the secret that must not be printed)
SECRETS = [
    ("cloud_storage_secret=Sup3rS3cret", "Sup3rS3cret"),
    ("cloud_storage_key=AKIAEXAMPLEKEYID", "AKIAEXAMPLEKEYID"),
    ('content_auto_creator.g_service_acct_cred="{\\"private_key\\": \\"PEMPEM\\"}"', "PEMPEM"),
    ("log.id_hash_salt=salt-4f1c", "salt-4f1c"),
    ("neo4j.password=neo-pw-1", "neo-pw-1"),
    ("lms-cassandra.password=cass-pw-1", "cass-pw-1"),
    ("http.api_token=tok-123456", "tok-123456"),
    ("x.token=tok-abcdef", "tok-abcdef"),
    ("x.sig=sigsigsig", "sigsigsig"),
    ("x.sas_token=sv2020", "sv2020"),
    ("x.account_key=acctkey1", "acctkey1"),
    ("neo4j.routePath=bolt://neo4j:userinfo-pw@graph:7687", "userinfo-pw"),
    ('x.conn="DefaultEndpointsProtocol=https;AccountName=a;AccountKey=AzKey123;"', "AzKey123"),
    ("x.download=https://h/f?sig=QuerySig1&se=1", "QuerySig1"),
]


@pytest.mark.parametrize("fmt", ["hocon", "json"])
@pytest.mark.parametrize(("override", "secret"), SECRETS, ids=[s for s, _ in SECRETS])
def test_config_show_masks_every_secret_form(override: str, secret: str, fmt: str) -> None:
    result = invoke("config", "show", "content-auto-creator", "--format", fmt, "--set", override)
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    assert "***" in result.output


def test_config_show_json_is_the_sorted_resolved_configuration() -> None:
    result = invoke("config", "show", "user-delete", "--format", "json", "--set", "job.env=qa")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["kafka"]["input"]["topic"] == "qa.delete.user"
    assert list(data) == sorted(data) and list(data["kafka"]) == sorted(data["kafka"])
    assert data["cloud_storage_secret"] == ""  # empty: nothing to hide, shown as it is


def test_config_show_hocon_parses_back_to_the_same_values() -> None:
    as_json = json.loads(invoke("config", "show", "auto-creator-v2", "--format", "json").output)
    as_hocon = invoke("config", "show", "auto-creator-v2")
    assert as_hocon.exit_code == 0, as_hocon.output
    assert ConfigFactory.parse_string(as_hocon.output).as_plain_ordered_dict() == as_json


def test_config_show_reads_the_file_by_either_spelling(tmp_path: Path) -> None:
    conf = tmp_path / "user-delete.conf"
    conf.write_text('kafka.groupId = "from-the-file"\n')
    for args in (["--config", str(conf)], ["--config.file.path", str(conf)], [f"--config.file.path={conf}"]):
        result = invoke("config", "show", "user-delete", "--format", "json", *args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["kafka"]["groupId"] == "from-the-file"


def test_a_missing_include_is_one_line_and_exit_1(tmp_path: Path) -> None:
    conf = tmp_path / "user-delete.conf"
    conf.write_text('include file("/data/flink/conf/base-config.conf")\n')
    for command in ("show", "check"):
        result = invoke("config", command, "user-delete", "--config.file.path", str(conf))
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "/data/flink/conf/base-config.conf" in lines[0]


def test_run_takes_config_file_path_and_stops_on_a_missing_include(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cokreat_jobs.flink import runner

    conf = tmp_path / "user-delete.conf"
    conf.write_text('kafka.groupId = "g"\n')
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        runner,
        "run_local",
        lambda definition, cfg: seen.setdefault("group", cfg.get_str("kafka.groupId")) and 0,
    )
    assert invoke("run", "user-delete", "--config.file.path", str(conf)).exit_code == 0
    assert seen == {"group": "g"}

    conf.write_text('include "base-config.conf"\n')
    result = invoke("run", "user-delete", "--config.file.path", str(conf))
    assert result.exit_code == 1 and "base-config.conf" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def listening() -> Any:
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def test_config_check_ok_exit_0(listening: int) -> None:
    result = invoke(
        "config",
        "check",
        "user-delete",
        "--set",
        f"kafka.broker-servers=127.0.0.1:{listening}",
        "--set",
        f"program-service-baseUrl=http://127.0.0.1:{listening}/program",
    )
    assert (result.exit_code, result.output) == (0, "ok\n")


def test_config_check_lists_every_problem_exit_1(listening: int) -> None:
    closed = _closed_port()
    result = invoke(
        "config",
        "check",
        "content-auto-creator",
        "--set",
        f"kafka.broker-servers=127.0.0.1:{listening}",
        "--set",
        "service.search.basePath=search:9000/search",
        "--set",
        f"service.content_service.basePath=http://127.0.0.1:{closed}/content",
        "--set",
        "content_auto_creator.drive_api_base=https://127.0.0.1:1",
        "--set",
        "cloud_storage_type=azure",
        "--set",
        'content_auto_creator.artifact_upload_allowed_source="/drive"',
        "--timeout",
        "2",
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert (
        lines[0] == "error: service.search.basePath: 'search:9000/search' must start with http:// or https://"
    )
    assert any(line.startswith("error: cloud_storage_container:") for line in lines)
    assert any(
        line.startswith("warning: content_auto_creator.artifact_upload_allowed_source: '/drive'")
        for line in lines
    )
    assert (
        f"error: service.content_service.basePath: 127.0.0.1:{closed} is not reachable (Connection refused)"
        in lines
    )
    assert not any("kafka" in line for line in lines)


def test_config_check_warnings_alone_exit_1_and_no_connect_skips_the_probe() -> None:
    closed = _closed_port()
    result = invoke(
        "config",
        "check",
        "auto-creator-v2",
        "--no-connect",
        "--set",
        "cloud_storage_type=local",
        "--set",
        f"kafka.broker-servers=127.0.0.1:{closed}",
        "--set",
        "graph.store=sqlite",
        "--set",
        "graph.sqlite.url=sqlite:///g.db",
        "--set",
        "external.store=sqlite",
        "--set",
        "external.sqlite.url=sqlite:///e.db",
        "--set",
        'auto_creator_v2.repository_allowed_sources=["docs.google"]',
    )
    assert result.exit_code == 1
    assert result.output.startswith("warning: auto_creator_v2.repository_allowed_sources: 'docs.google'")
    assert len(result.output.strip().splitlines()) == 1

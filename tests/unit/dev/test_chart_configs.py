"""The reference's deployed configs (tests/data/reference-configs/): stored as the chart has them, rendered
with only the placeholders filled and the listed lines changed, loaded by our jobs without a problem, and
every key of them in the migration table."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
from pyhocon import ConfigFactory

from cokreat_jobs.core.checks import errors
from cokreat_jobs.core.config import load_config
from cokreat_jobs.dev.samples.chart_configs import (
    CHART_SETS,
    INCLUDE_LINE,
    LINE_CHANGES,
    placeholders,
    render,
)
from cokreat_jobs.jobs import job_definition

DATA = Path(__file__).resolve().parents[2] / "data" / "reference-configs"
CASES = [(cs, job) for cs, spec in CHART_SETS.items() for job in spec.jobs]
CASSANDRA_PORT = 19042


def values() -> dict[str, object]:
    return placeholders(
        env_name="local",
        kafka="127.0.0.1:9092",
        sandbox="http://127.0.0.1:8765",
        storage_account="devstoreaccount1",
        storage_secret="c2VjcmV0",
        storage_container="contents",
        storage_endpoint="http://127.0.0.1:10000/devstoreaccount1",
        neo4j_route="http://127.0.0.1:7474",
        cassandra_host="127.0.0.1",
        user_delete_topic="local.delete.user",
        ownership_transfer_topic="local.user.ownership.transfer",
        user_delete_group="local-cokreat-user-delete-group",
    )


def test_every_stored_text_is_named_with_its_source_and_unchanged() -> None:
    sources = json.loads((DATA / "sources.json").read_text())["entries"]
    stored = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*.conf"))
    assert sorted(e["file"] for e in sources) == stored
    for e in sources:
        assert e["path"] == "kubernetes/helm_charts/datapipeline_jobs/values.j2"
        assert len(e["commit"]) == 40 and e["repo"].count("/") == 1 and e["ref"].startswith("release-")
        text = (DATA / e["file"]).read_bytes()
        assert hashlib.sha256(text).hexdigest() == e["sha256"], f"{e['file']} differs from its source"
    # each job's block and its base config, from the releases named
    assert {(e["repo"], e["ref"]) for e in sources} == {
        ("Sunbird-Knowlg/sunbird-learning-platform", "release-5.6.0"),
        ("Sunbird-coKreat/coKreat-jobs", "release-7.0.0"),
        ("amitpriyadarshi/coKreat-jobs", "release-8.0.0"),
    }


@pytest.mark.parametrize(("chart_set", "job"), CASES)
def test_render_fills_placeholders_and_changes_only_the_listed_lines(
    chart_set: str, job: str, tmp_path: Path
) -> None:
    port = CASSANDRA_PORT if chart_set.startswith("knowlg") else None
    out = render(DATA, chart_set, job, tmp_path, values(), cassandra_port=port)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)  # noqa: S701
    for name, stored in out.stored.items():
        # what jinja2 alone makes of the stored text (what Ansible's template step does) ...
        plain = env.from_string(stored).render(**values()).splitlines()
        rendered = out.rendered[name].splitlines()
        assert "{{" not in out.rendered[name] and "{%" not in out.rendered[name]
        assert len(plain) == len(rendered)
        # ... and the only lines render() changes beyond it: those LINE_CHANGES lists for this file
        changed = {a.strip() for a, b in zip(plain, rendered, strict=True) if a != b}
        listed = {line for cs, file, line, _ in LINE_CHANGES if cs == chart_set and file == name}
        if name == "base-config.conf" and port is None:
            listed = set()  # user-delete: no Cassandra; its port line stays as deployed
        assert changed == listed, name
    assert f'include file("{out.base_conf}")' in out.rendered[out.job_conf.name]
    assert INCLUDE_LINE in out.stored[out.job_conf.name]


def test_a_placeholder_without_a_value_is_an_error(tmp_path: Path) -> None:
    partial = values()
    del partial["program_service_baseurl"]
    with pytest.raises(jinja2.UndefinedError, match="program_service_baseurl"):
        render(DATA, "cokreat-8.0.0", "user-delete", tmp_path, partial)


@pytest.mark.parametrize(("chart_set", "job"), CASES)
def test_our_job_loads_the_rendered_config_with_no_start_up_problem(
    chart_set: str, job: str, tmp_path: Path
) -> None:
    port = CASSANDRA_PORT if chart_set.startswith("knowlg") else None
    out = render(DATA, chart_set, job, tmp_path, values(), cassandra_port=port)
    cfg = load_config(job, out.job_conf, env={})
    definition = job_definition(job)
    assert errors(definition.checks.startup(cfg)) == []
    if job == "user-delete":
        assert cfg.get_str("program-service-baseUrl") == "http://127.0.0.1:8765"
    if job == "auto-creator-v2":
        # the deployed Neo4j 3.3's HTTP route and the node's port (the one line changed)
        assert cfg.get_str("neo4j.routePath") == "http://127.0.0.1:7474"
        assert cfg.get_int("lms-cassandra.port") == CASSANDRA_PORT
    if job == "content-auto-creator":
        assert cfg.get_str("cloud_storage_type") == "azure"
        assert cfg.get_int("content_auto_creator.maxIteration") == 1  # as deployed, not our default


def migration_keys() -> set[str]:
    """The keys docs/OPERATIONS.md's migration table names in its first column: in full, or relative to the
    parent of the last full one before them (`job.statebackend.blob.storage.account`, `.container`;
    `content_auto_creator.actions`, `allowed_object_types`)."""
    ops = (Path(__file__).resolve().parents[3] / "docs" / "OPERATIONS.md").read_text()
    table = ops[ops.index("## Migration from the Scala jobs") :].split("\n## ", 1)[0]
    keys: set[str] = set()
    for row in table.splitlines():
        cells = row.split("|")
        if len(cells) < 3:
            continue
        names = re.findall(r"`([^`]+)`", cells[1])
        if not names:
            continue
        parent = ""
        for i, raw in enumerate(names):
            name = raw.rstrip("*").rstrip(".")
            relative = name.startswith(".") or (i > 0 and "." not in name)
            full = f"{parent}.{name.lstrip('.')}" if relative and parent else name.lstrip(".")
            keys.add(full)
            if not name.startswith("."):
                keys.add(name)  # `gdrive.application_name` after `content_auto_creator.x` is either
                if i > 0 and parent:
                    keys.add(f"{parent}.{name}")
            if not relative:
                parent = full.rsplit(".", 1)[0] if "." in full else ""
    return keys


def leaf_keys(tree: Any, prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        key = prefix + str(k).strip('"')
        out += leaf_keys(v, key + ".") if isinstance(v, dict) else [key]
    return out


@pytest.mark.parametrize(("chart_set", "job"), CASES)
def test_every_key_of_the_deployed_configs_is_in_the_migration_table(
    chart_set: str, job: str, tmp_path: Path
) -> None:
    """An operator reading the table finds what each key of their deployed config does here (applied,
    accepted and unused, or replaced), under the key itself or a prefix of it (`redis.*`)."""
    out = render(DATA, chart_set, job, tmp_path, values(), cassandra_port=CASSANDRA_PORT)
    documented = migration_keys()
    tree = ConfigFactory.parse_file(str(out.job_conf)).as_plain_ordered_dict()
    missing = [
        key for key in leaf_keys(tree) if not any(key == d or key.startswith(d + ".") for d in documented)
    ]
    assert missing == []

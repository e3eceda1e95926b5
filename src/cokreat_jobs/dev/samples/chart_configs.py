"""The reference's deployed configs, rendered for a local stack.

Sunbird deploys each Scala job with the ``datapipeline_jobs`` Helm chart: Ansible renders the chart's
``values.j2`` with jinja2, and the chart's ConfigMap mounts two of its blocks as files under
``/data/flink/conf/``: ``base_config`` as ``base-config.conf`` and the job's own block as ``<job>.conf``,
which ``include``s the first and which the job is started with (``--config.file.path``). The blocks are
kept, as they are in the reference repositories, under ``tests/data/reference-configs/``
(``sources.json`` names the repository, commit, path, lines and sha256 of each).

:func:`render` fills their placeholders for a local stack (the jinja2 variables: endpoints, topic and group
names, the deployment's settings, with values as Sunbird's Ansible defaults have them where they are not
endpoints) and changes nothing else but the lines :data:`LINE_CHANGES` lists, each for a reason a local
stack cannot avoid. jinja2 runs with ``StrictUndefined``, so a placeholder left without a value is an error,
not an empty string. The end-to-end test ``tests/e2e/test_reference_configs.py`` starts each job with the
rendered file; :data:`RUN_OVERRIDES` are the only ``--set`` it adds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CHART_CONF_DIR",
    "CHART_SETS",
    "LINE_CHANGES",
    "RUN_OVERRIDES",
    "ChartSet",
    "Rendered",
    "placeholders",
    "render",
]

# where the chart's ConfigMap puts the files in the job's pod
CHART_CONF_DIR = "/data/flink/conf"
INCLUDE_LINE = f'include file("{CHART_CONF_DIR}/base-config.conf")'


@dataclass(frozen=True)
class ChartSet:
    """One values.j2: the stored folder, and which of its blocks is which of our jobs."""

    folder: str  # under tests/data/reference-configs/
    jobs: Mapping[str, str]  # our job name -> the stored file of its block


CHART_SETS: dict[str, ChartSet] = {
    # Sunbird-Knowlg/sunbird-learning-platform release-5.6.0: the knowledge platform's chart
    "knowlg-5.6.0": ChartSet(
        "knowlg-release-5.6.0",
        {"content-auto-creator": "content-auto-creator.conf", "auto-creator-v2": "auto-creator-v2.conf"},
    ),
    # Sunbird-coKreat/coKreat-jobs release-7.0.0 and release-8.0.0: coKreat's own chart
    "cokreat-7.0.0": ChartSet("cokreat-release-7.0.0", {"user-delete": "cokreat-user-delete.conf"}),
    "cokreat-8.0.0": ChartSet("cokreat-release-8.0.0", {"user-delete": "cokreat-user-delete.conf"}),
}

# The only lines that change beyond the placeholders: (chart set, stored file, line as stored, why).
# The replacement of each is computed by render(); tests/unit/dev/test_chart_configs.py asserts that these,
# and nothing else, differ.
LINE_CHANGES: tuple[tuple[str, str, str, str], ...] = (
    *(
        (name, file, INCLUDE_LINE, "no chart mount here: the rendered base-config.conf")
        for name, s in CHART_SETS.items()
        for file in s.jobs.values()
    ),
    (
        "knowlg-5.6.0",
        "base-config.conf",
        'port = "9042"',
        "Cassandra's port is written into the chart, not a placeholder; the test's node listens elsewhere",
    ),
)

# The only settings a local run adds to the rendered file, as --set, and why:
# - flink.rest.port: LocalJobRun's own, to read the job's counters from its MiniCluster;
# - http.allow_private_networks: the sandbox and the storage emulator listen on loopback, which the download
#   guard refuses unless allowed (a deployment's services are not on loopback: nothing to allow there).
RUN_OVERRIDES = ("flink.rest.port", "http.allow_private_networks")

# Sunbird's Ansible defaults for what is not an endpoint (kept as the deployments have them)
_SETTINGS: dict[str, Any] = {
    "producer_max_request_size": 1572864,
    "checkpoint_compression_enabled": True,
    "checkpoint_interval": 60000,
    "checkpoint_pause_between_seconds": 5000,
    "restart_attempts": 3,
    "restart_delay": 30000,
    "flink_container_name": "dev-data-store",
    "cloudstorage_replace_absolute_path": "false",
    "cloudstorage_relative_path_prefix_content": "CONTENT_STORAGE_BASE_PATH",
    "cloudstorage_metadata_list": json.dumps(
        ["appIcon", "artifactUrl", "posterImage", "previewUrl", "thumbnail", "assetsMap", "certTemplate"]
        + ["itemSetPreviewUrl", "grayScaleAppIcon", "sourceURL", "variants", "downloadUrl", "streamingUrl"]
        + ["toc_url", "data", "question", "solutions", "editorState", "media", "pdfUrl", "transcripts"]
    ),
    "auto_creator_g_service_acct_cred": "",
    "content_auto_creator_consumer_parallelism": 1,
    "content_auto_creator_parallelism": 1,
    "auto_creator_v2_consumer_parallelism": 1,
    "auto_creator_v2_parallelism": 1,
    "assessment_keyspace_name": "dev_question_store",
    "hierarchy_keyspace_name": "dev_hierarchy_store",
    "oci_flink_s3_storage_endpoint": "",
    "cloud_storage_endpoint": "",
    "cloud_storage_container": "",
}


def placeholders(
    *,
    env_name: str,
    kafka: str,
    sandbox: str,
    storage_type: str = "azure",
    storage_account: str = "",
    storage_secret: str = "",
    storage_container: str = "",
    storage_endpoint: str = "",
    neo4j_route: str = "bolt://localhost:7687",
    cassandra_host: str = "localhost",
    user_delete_topic: str = "",
    ownership_transfer_topic: str = "",
    user_delete_group: str = "",
) -> dict[str, Any]:
    """Every variable the stored blocks use, for a local stack (all services on the sandbox)."""
    values = dict(_SETTINGS)
    values |= {
        "env_name": env_name,
        # both charts' spellings of the brokers and ZooKeeper (KRaft: no ZooKeeper; accepted, unused)
        "kafka_brokers": kafka,
        "sunbird_kafka_brokers": kafka,
        "zookeepers": "localhost:2181",
        "sunbird_zookeepers": "localhost:2181",
        "cloud_service_provider": storage_type,
        "azure_account": storage_account or "devstoreaccount1",
        "csp_account": storage_account or "devstoreaccount1",
        "cloud_public_storage_accountname": storage_account,
        "cloud_public_storage_secret": storage_secret,
        "cloud_storage_content_bucketname": storage_container,
        "cloudstorage_sdk_endpoint": storage_endpoint,
        "cloudstorage_base_path": storage_endpoint,
        "valid_cloudstorage_base_urls": json.dumps([storage_endpoint] if storage_endpoint else []),
        "dp_redis_host": "localhost",
        "inquiry_redis_host": "localhost",
        "core_cassandra_connection_ip": cassandra_host,
        "inquiry_cassandra_connection_ip": cassandra_host,
        "neo4j_route_path": neo4j_route,
        "search_es_host": "localhost:9200",
        "kp_schema_base_path": f"{sandbox}/schemas",
        "kp_content_service_base_url": sandbox,
        "kp_search_service_base_url": sandbox,
        "kp_learning_service_base_url": sandbox,
        "lms_service_base_url": sandbox,
        "source_base_url": f"{sandbox}/api",
        "program_service_baseurl": sandbox,
        "user_delete_kafka_topic_name": user_delete_topic,
        "ownership_transfer_kafka_topic_name": ownership_transfer_topic,
        "user_delete_group": user_delete_group,
    }
    return values


@dataclass(frozen=True)
class Rendered:
    """The files of one job as its pod has them, written to a local folder."""

    job_conf: Path  # what --config.file.path names
    base_conf: Path
    stored: dict[str, str]  # file name -> the stored text
    rendered: dict[str, str]  # file name -> the text written


def _jinja(text: str, values: Mapping[str, Any]) -> str:
    import jinja2  # dev extra: only the tests and local runs render charts

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)  # noqa: S701 (HOCON, not HTML)
    return env.from_string(text).render(**values)


def render(
    data_dir: Path,
    chart_set: str,
    job: str,
    out_dir: Path,
    values: Mapping[str, Any],
    cassandra_port: int | None = None,
) -> Rendered:
    """Render ``job``'s block of ``chart_set`` and its base config into ``out_dir``, placeholders from
    ``values``; the lines of :data:`LINE_CHANGES` changed to the local include path and Cassandra port."""
    spec = CHART_SETS[chart_set]
    folder = data_dir / spec.folder
    job_file = spec.jobs[job]
    stored = {
        "base-config.conf": (folder / "base-config.conf").read_text(),
        job_file: (folder / job_file).read_text(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    base_path = out_dir / "base-config.conf"
    base = _jinja(stored["base-config.conf"], values)
    if cassandra_port is not None:
        base, n = re.subn(r'(?m)^(\s*)port = "9042"$', rf'\g<1>port = "{cassandra_port}"', base)
        if n != 1:
            raise ValueError(f"{chart_set}: expected one Cassandra port line in base-config.conf, found {n}")
    text = _jinja(stored[job_file], values)
    if INCLUDE_LINE not in text:
        raise ValueError(f"{chart_set}/{job_file}: the chart's include line is not there")
    text = text.replace(INCLUDE_LINE, f"include file({json.dumps(str(base_path))})")
    base_path.write_text(base)
    job_path = out_dir / job_file
    job_path.write_text(text)
    return Rendered(job_path, base_path, stored, {"base-config.conf": base, job_file: text})

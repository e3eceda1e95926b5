"""adapters/config_checks.py: the storage and store settings a job needs, checked before the first event."""

from __future__ import annotations

from typing import Any

import pytest

from cokreat_jobs.adapters.config_checks import (
    check_external_store,
    check_graph_store,
    check_storage,
    storage_endpoints,
    store_endpoints,
)
from cokreat_jobs.core.checks import Endpoint
from cokreat_jobs.core.config import JobConfig


def installed(package: str) -> bool:
    return True


def nothing_installed(package: str) -> bool:
    return False


def keys(problems: list[Any]) -> list[str]:
    return [p.key for p in problems]


def test_local_storage_needs_nothing() -> None:
    assert check_storage(JobConfig({"cloud_storage_type": "local"}), nothing_installed) == []
    # an empty type is no local disk by surprise (the Scala jobs refused it too)
    assert keys(check_storage(JobConfig({"cloud_storage_type": ""}), nothing_installed)) == [
        "cloud_storage_type"
    ]


def test_an_unknown_type_is_an_error() -> None:
    problems = check_storage(JobConfig({"cloud_storage_type": "dropbox"}), installed)
    assert keys(problems) == ["cloud_storage_type"] and "not supported" in problems[0].message


def test_a_cloud_type_needs_its_container() -> None:
    problems = check_storage(JobConfig({"cloud_storage_type": "aws"}), installed)
    assert keys(problems) == ["cloud_storage_container"]


def test_a_cloud_type_needs_its_backend_package() -> None:
    cfg = JobConfig(
        {
            "cloud_storage_type": "azure",
            "cloud_storage_container": "c",
            "cloud_storage_key": "acct",
            "cloud_storage_secret": "k",
        }
    )
    assert check_storage(cfg, installed) == []
    problems = check_storage(cfg, nothing_installed)
    assert keys(problems) == ["cloud_storage_type"] and "adlfs" in problems[0].message


def test_the_real_backend_lookup_runs() -> None:
    # whatever is installed here, the default lookup answers without raising
    cfg = JobConfig({"cloud_storage_type": "s3", "cloud_storage_container": "c"})
    assert all(p.key == "cloud_storage_type" for p in check_storage(cfg))


def test_azure_needs_account_and_key() -> None:
    cfg = JobConfig({"cloud_storage_type": "azure", "cloud_storage_container": "c"})
    assert keys(check_storage(cfg, installed)) == ["cloud_storage_key"]
    cfg = cfg.with_overrides({"cloud_storage_key": "account"})
    assert keys(check_storage(cfg, installed)) == ["cloud_storage_secret"]


@pytest.mark.parametrize(
    ("key", "secret", "missing"),
    [
        ("", "", None),
        ("AKIA", "s", None),
        ("AKIA", "", "cloud_storage_secret"),
        ("", "s", "cloud_storage_key"),
    ],
)
def test_s3_needs_both_or_neither_of_key_and_secret(key: str, secret: str, missing: str | None) -> None:
    cfg = JobConfig(
        {
            "cloud_storage_type": "aws",
            "cloud_storage_container": "c",
            "cloud_storage_key": key,
            "cloud_storage_secret": secret,
        }
    )
    assert keys(check_storage(cfg, installed)) == ([missing] if missing else [])


def test_gcs_accepts_a_json_secret_or_email_and_key() -> None:
    base = {"cloud_storage_type": "gcloud", "cloud_storage_container": "c"}
    assert (
        check_storage(JobConfig({**base, "cloud_storage_secret": '{"type": "service_account"}'}), installed)
        == []
    )
    assert (
        check_storage(
            JobConfig({**base, "cloud_storage_key": "a@b", "cloud_storage_secret": "pk"}), installed
        )
        == []
    )
    assert keys(check_storage(JobConfig({**base, "cloud_storage_secret": "pk"}), installed)) == [
        "cloud_storage_key"
    ]


def test_endpoint_and_public_base_must_be_urls_when_set() -> None:
    cfg = JobConfig(
        {
            "cloud_storage_type": "s3",
            "cloud_storage_container": "c",
            "cloud_storage_endpoint": "minio:9000",
            "cloud_storage": {"public_base_url": "ftp://x"},
        }
    )
    assert keys(check_storage(cfg, installed)) == ["cloud_storage_endpoint"]
    fixed = cfg.with_overrides({"cloud_storage_endpoint": "http://minio:9000"})
    assert keys(check_storage(fixed, installed)) == ["cloud_storage.public_base_url"]
    good = cfg.with_overrides(
        {"cloud_storage_endpoint": "http://minio:9000", "cloud_storage.public_base_url": ""}
    )
    assert check_storage(good, installed) == []
    assert storage_endpoints(good) == [Endpoint("cloud_storage_endpoint", "minio", 9000)]


def test_graph_store() -> None:
    assert check_graph_store(JobConfig({"neo4j": {"routePath": "bolt://neo:7687"}})) == []
    assert (
        check_graph_store(JobConfig({"graph": {"store": "neo4j"}, "neo4j": {"routePath": "neo4j+s://n"}}))
        == []
    )
    assert keys(check_graph_store(JobConfig({}))) == ["neo4j.routePath"]
    # Cypher over HTTP (how Neo4j 3.3 / 3.4, Bolt 1 / 2 only, is written): the store takes it, and the check
    assert check_graph_store(JobConfig({"neo4j": {"routePath": "http://neo:7474"}})) == []
    assert check_graph_store(JobConfig({"neo4j": {"routePath": "https://neo"}})) == []
    assert keys(check_graph_store(JobConfig({"neo4j": {"routePath": "ftp://neo:21"}}))) == ["neo4j.routePath"]
    assert keys(check_graph_store(JobConfig({"neo4j": {"routePath": "neo:7687"}}))) == ["neo4j.routePath"]
    assert keys(check_graph_store(JobConfig({"neo4j": {"routePath": "bolt://neo:x"}}))) == ["neo4j.routePath"]
    forced_bolt = {"neo4j": {"routePath": "http://neo:7474"}, "graph": {"neo4j": {"protocol": "bolt"}}}
    assert keys(check_graph_store(JobConfig(forced_bolt))) == ["graph.neo4j.protocol"]
    assert keys(check_graph_store(JobConfig({"graph": {"store": "sqlite"}}))) == ["graph.sqlite.url"]
    assert (
        check_graph_store(JobConfig({"graph": {"store": "sqlite", "sqlite": {"url": "sqlite:///g.db"}}}))
        == []
    )
    assert keys(check_graph_store(JobConfig({"graph": {"store": "janus"}}))) == ["graph.store"]


def test_external_store() -> None:
    assert check_external_store(JobConfig({"lms-cassandra": {"host": "c1,c2", "port": "9042"}})) == []
    assert keys(check_external_store(JobConfig({"lms-cassandra": {"host": "", "port": "x"}}))) == [
        "lms-cassandra.host",
        "lms-cassandra.port",
    ]
    assert keys(check_external_store(JobConfig({"external": {"store": "sqlite"}}))) == ["external.sqlite.url"]
    assert keys(check_external_store(JobConfig({"external": {"store": "mongo"}}))) == ["external.store"]


def test_store_endpoints_for_the_selected_stores_only() -> None:
    cfg = JobConfig({"neo4j": {"routePath": "bolt://neo"}, "lms-cassandra": {"host": "c1, c2", "port": 9043}})
    assert store_endpoints(cfg) == [
        Endpoint("neo4j.routePath", "neo", 7687),
        Endpoint("lms-cassandra.host", "c1", 9043),
        Endpoint("lms-cassandra.host", "c2", 9043),
    ]
    # an HTTP route is probed at its own port, 7474 by default (not Bolt's 7687)
    http = cfg.with_overrides({"neo4j.routePath": "http://neo", "external.store": "sqlite"})
    assert store_endpoints(http) == [Endpoint("neo4j.routePath", "neo", 7474)]
    assert store_endpoints(cfg.with_overrides({"graph.store": "sqlite", "external.store": "sqlite"})) == []


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        (
            {"cloud_storage_type": "oci", "cloud_storage_container": "c", "cloud_storage_endpoint": "h"},
            "cloud_storage_endpoint",
        ),
        ({"cloud_storage_type": "cephs3", "cloud_storage_container": "c"}, "cloud_storage_endpoint"),
        (
            {
                "cloud_storage_type": "oci",
                "cloud_storage_container": "c",
                "cloud_storage_endpoint": "http://s3.local",
            },
            "cloud_storage_region",
        ),
    ],
)
def test_storage_config_errors_carry_the_key_they_are_about(settings: dict[str, str], key: str) -> None:
    """The key comes with the error, not from the message's first word (a message may open otherwise)."""
    from cokreat_jobs.adapters.storage import CloudStorage
    from cokreat_jobs.core.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        CloudStorage.from_config(JobConfig(settings))
    assert caught.value.key == key
    assert keys(check_storage(JobConfig(settings), installed)) == [caught.value.key]

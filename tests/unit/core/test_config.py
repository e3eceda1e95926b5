from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from cokreat_jobs.core.config import (
    JobConfig,
    conf_dir,
    load_config,
    packaged_config_path,
    parse_override,
    parse_value,
)
from cokreat_jobs.core.errors import ConfigError
from cokreat_jobs.jobs import JOB_MODULES

JOBS = tuple(JOB_MODULES)

ROOT = Path(__file__).resolve().parents[3]


def load(job: str, *overrides: str, env: dict[str, str] | None = None, **kw: object) -> JobConfig:
    return load_config(job, overrides=overrides, env=env or {}, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ packaged files


def test_packaged_files_exist_and_repo_conf_points_at_them() -> None:
    for job in JOBS:
        assert packaged_config_path(job).is_file()
    assert (conf_dir() / "base.conf").is_file()
    repo_conf = ROOT / "conf"
    assert repo_conf.is_symlink()
    assert repo_conf.resolve() == conf_dir().resolve()


def test_unknown_job_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown job"):
        load("no-such-job")


@pytest.mark.parametrize(
    ("job", "topic", "failed", "group"),
    [
        (
            "user-delete",
            "sunbirddev.delete.user",
            "sunbirddev.delete.user.failed",
            "sunbirddev_cokreat_user_delete_group",
        ),
        (
            "content-auto-creator",
            "sunbirddev.auto.creation.job.request",
            "sunbirddev.auto.creation.job.request.failed",
            "sunbirddev-content-auto-creator-group",
        ),
        (
            "auto-creator-v2",
            "sunbirddev.object.import.request",
            "sunbirddev.auto.creation.job.request.failed",
            "sunbirddev-auto-creator-v2-group",
        ),
    ],
)
def test_topics_and_groups(job: str, topic: str, failed: str, group: str) -> None:
    cfg = load(job)
    assert cfg.job == job
    assert cfg.get_str("kafka.input.topic") == topic
    assert cfg.get_str("kafka.failed.topic") == failed
    assert cfg.get_str("kafka.groupId") == group


@pytest.mark.parametrize("job", JOBS)
def test_base_defaults(job: str) -> None:
    cfg = load(job)
    assert cfg.get_str("kafka.broker-servers") == "localhost:9092"
    assert cfg.get_str("kafka.zookeeper") == "localhost:2181"
    assert cfg.get_str("kafka.auto.offset.reset") == "earliest"
    assert cfg.get_int("kafka.max_record_bytes") == 1048576
    assert cfg.get_int("task.consumer.parallelism") == 1
    assert cfg.get_int("task.parallelism") == 1
    assert cfg.get_int("task.checkpointing.interval") == 60000
    assert cfg.get_int("task.checkpointing.pause.between.seconds") == 30000
    assert cfg.get_int("task.restart-strategy.attempts") == 3
    assert cfg.get_int("task.restart-strategy.delay") == 30000
    assert cfg.get_int("task.async.capacity") == 100
    assert cfg.get_str("job.env") == "sunbirddev"
    assert cfg.get_list("http.allow_private_networks") == []
    assert cfg.get_int("http.retry.max_attempts") == 5
    assert cfg.get_int("http.retry.backoff_ms") == 200
    assert cfg.get_int("http.retry.max_backoff_ms") == 10000
    assert cfg.get_int("http.connect_timeout_ms") == 5000
    assert cfg.get_int("http.read_timeout_ms") == 30000
    # metric group and counter names unset: the job's (flink/definition.py) decide, by config shape
    assert cfg.get_dict("metrics", {}) == {}
    # The Scala base's substitution resolves.
    assert (
        cfg.get_str("job.statebackend.base.url") == "wasbs://kp-checkpoints@blob.storage.account/flink-jobs"
    )
    # A string in the Scala file, read as a number as Typesafe Config did.
    assert cfg.get_int("lms-cassandra.port") == 9042
    assert cfg.has("redis.host")
    for key in ("key", "secret", "container", "endpoint"):
        assert cfg.get_str(f"cloud_storage_{key}") == ""
    if job != "user-delete":  # the jobs that upload: the type unset, so the Scala jobs' meaning (azure) holds
        assert not cfg.has("cloud_storage_type")
        assert cfg.get_str("cloud_storage_region") == ""


def test_user_delete_keys() -> None:
    cfg = load("user-delete")
    assert cfg.get_str("program-service-baseUrl").startswith("http://")
    assert cfg.get_int("user-delete.maxIteration") == 3


def test_content_auto_creator_keys() -> None:
    cfg = load("content-auto-creator")
    p = "content_auto_creator."
    assert cfg.get_list(p + "actions") == ["auto-create"]
    assert cfg.get_list(p + "allowed_object_types") == ["Content"]
    assert cfg.get_list(p + "allowed_content_stages") == ["create", "upload", "review", "publish"]
    assert cfg.get_list(p + "content_mandatory_fields") == [
        "name",
        "code",
        "mimeType",
        "primaryCategory",
        "artifactUrl",
        "lastPublishedBy",
    ]
    removed = cfg.get_list(p + "content_props_to_removed")
    for key in ("identifier", "downloadUrl", "variants", "status", "pkgVersion", "versionKey", "channel"):
        assert key in removed
    for key in ("objectType", "origin", "originData", "previewUrl", "streamingUrl", "lastPublishedBy"):
        assert key in removed
    assert len(removed) > 50
    assert cfg.get_list(p + "content_create_props") == [
        "name",
        "code",
        "mimeType",
        "contentType",
        "framework",
        "processId",
        "primaryCategory",
    ]
    assert cfg.get_list(p + "artifact_upload_allowed_source") == []
    assert cfg.get_int(p + "artifact_upload_max_size") == 52428800
    assert cfg.get_list(p + "bulk_upload_mime_types") == ["video/mp4"]
    assert cfg.get_str(p + "g_service_acct_cred") == ""
    assert cfg.get_int(p + "maxIteration") == 3
    assert cfg.get_float(p + "api_call_delay") == 0
    assert cfg.get_str(p + "temp_file_location") == "/tmp/content"
    assert cfg.get_list("search_exists_fields") == ["originData"]
    assert cfg.get_list("search_fields") == [
        "identifier",
        "mimeType",
        "pkgVersion",
        "channel",
        "status",
        "origin",
        "originData",
        "artifactUrl",
    ]
    assert cfg.get_str("service.search.basePath").startswith("http://")
    assert cfg.get_str("service.content_service.basePath").startswith("http://")
    assert cfg.get_str("cloud_storage.folder.content") == "content"
    assert cfg.get_str("cloud_storage.folder.artifact") == "artifact"


def test_auto_creator_v2_keys() -> None:
    cfg = load("auto-creator-v2")
    assert cfg.get_str("service.content.basePath").startswith("http://")
    assert cfg.get_str("source.baseUrl").startswith("http://")
    assert cfg.get_str("questionset.keyspace") == "dev_hierarchy_store"
    assert cfg.get_str("question.keyspace") == "dev_question_store"
    assert cfg.has("schema.basePath")
    assert cfg.get_dict("schema.supportedVersion") == {"itemset": "2.0"}
    assert cfg.get_list("object.cloud_props") == [
        "variants",
        "downloadUrl",
        "appIcon",
        "posterImage",
        "pdfUrl",
    ]
    assert cfg.get_list("object.override_manifest_props") == [
        "variants",
        "downloadUrl",
        "previewUrl",
        "pdfUrl",
        "lastPublishedBy",
    ]
    assert cfg.get_list("expandable_objects") == ["QuestionSet"]
    assert cfg.get_list("non_expandable_objects") == ["Question"]
    assert cfg.get_list("graph_enabled_objecttypes") == ["Question"]
    assert cfg.get_int("task.link-collection.parallelism") == 1
    assert cfg.get_str("neo4j.routePath") == "bolt://localhost:7687"
    assert cfg.get_str("lms-cassandra.host") == "localhost"
    assert cfg.get_bool("cloudstorage.metadata.replace_absolute_path") is False
    assert cfg.get_int("auto-creator-v2.maxIteration") == 3
    assert cfg.get_int("auto_creator_v2.link_delay_ms") == 0
    assert cfg.get_str("graph.store") == "neo4j"
    assert cfg.get_str("external.store") == "cassandra"


# -------------------------------------------------------------------------------------------- overrides


def test_overrides_are_hocon_values() -> None:
    cfg = load(
        "content-auto-creator",
        'k.list=["a","b"]',
        "k.num=5",
        "k.float=2.5",
        "k.word=abc",
        'k.quoted="a b"',
        "k.obj={a: 1, b: [x]}",
        "k.bool=true",
        "k.url=http://127.0.0.1:8765/content",
        "k.zero=007",
        "k.spaces= padded ",
        "k.empty=",
    )
    assert cfg.get("k.list") == ["a", "b"]
    assert cfg.get("k.num") == 5
    assert cfg.get("k.float") == 2.5
    assert cfg.get("k.word") == "abc"
    assert cfg.get("k.quoted") == "a b"
    assert cfg.get("k.obj") == {"a": 1, "b": ["x"]}
    assert cfg.get("k.bool") is True
    assert cfg.get("k.url") == "http://127.0.0.1:8765/content"
    assert cfg.get("k.zero") == "007"
    assert cfg.get("k.spaces") == "padded"
    assert cfg.get("k.empty") == ""


def test_override_replaces_lists_and_merges_objects() -> None:
    cfg = load(
        "auto-creator-v2",
        'expandable_objects=["QuestionSet","Collection"]',
        'schema.supportedVersion={questionset: "1.0"}',
    )
    assert cfg.get_list("expandable_objects") == ["QuestionSet", "Collection"]
    assert cfg.get_dict("schema.supportedVersion") == {"itemset": "2.0", "questionset": "1.0"}


def test_override_of_job_env_renames_derived_topics() -> None:
    cfg = load("user-delete", "job.env=prod")
    assert cfg.get_str("kafka.input.topic") == "prod.delete.user"
    assert cfg.get_str("kafka.groupId") == "prod_cokreat_user_delete_group"
    explicit = load("user-delete", "job.env=prod", "kafka.input.topic=mine")
    assert explicit.get_str("kafka.input.topic") == "mine"


def test_override_substitution() -> None:
    cfg = load("user-delete", 'kafka.failed.topic=${job.env}".dead"')
    assert cfg.get_str("kafka.failed.topic") == "sunbirddev.dead"


def test_override_null_means_absent() -> None:
    cfg = load("user-delete", "program-service-baseUrl=null")
    assert not cfg.has("program-service-baseUrl")
    assert cfg.get_str("program-service-baseUrl", "fallback") == "fallback"


@pytest.mark.parametrize("entry", ["novalue", "=5", "bad key=1"])
def test_bad_override_entries(entry: str) -> None:
    with pytest.raises(ConfigError):
        load("user-delete", entry)


def test_bad_hocon_value() -> None:
    with pytest.raises(ConfigError, match="k"):
        load("user-delete", "k=[unclosed")


def test_unresolvable_substitution() -> None:
    with pytest.raises(ConfigError, match="resolve"):
        load("user-delete", "k=${no.such.key}")


def test_parse_helpers() -> None:
    assert parse_override("a.b= c=d") == ("a.b", " c=d")
    assert parse_value("null") is None
    assert parse_value("-3") == -3
    assert parse_value("1e3") == 1000.0
    assert parse_value("yes") == "yes"
    assert parse_value("[1, 2]") == [1, 2]


# ---------------------------------------------------------------------------------------------- environment


def test_environment_overrides() -> None:
    env = {
        "COKREAT__KAFKA__BROKER_SERVERS": "broker:9093",
        "COKREAT__PROGRAM_SERVICE_BASEURL": "http://ingress/program",
        "COKREAT__kafka__groupId": "g1",
        "COKREAT__HTTP__RETRY__MAX_ATTEMPTS": "7",
        "COKREAT__HTTP__ALLOW_PRIVATE_NETWORKS": '["127.0.0.1:8765"]',
        "COKREAT__NEW__THING": "x",
        "COKREAT_OTHER": "ignored: one underscore",
        "KAFKA__BROKER_SERVERS": "ignored: no prefix",
    }
    cfg = load("user-delete", env=env)
    assert cfg.get_str("kafka.broker-servers") == "broker:9093"
    assert cfg.get_str("program-service-baseUrl") == "http://ingress/program"
    assert cfg.get_str("kafka.groupId") == "g1"
    assert cfg.get_int("http.retry.max_attempts") == 7
    assert cfg.get_list("http.allow_private_networks") == ["127.0.0.1:8765"]
    assert cfg.get_str("new.thing") == "x"
    assert not cfg.has("other")


def test_environment_matches_underscore_and_hyphen_keys() -> None:
    env = {
        "COKREAT__CONTENT_AUTO_CREATOR__MAXITERATION": "9",
        "COKREAT__TASK__CONTENT_AUTO_CREATOR__PARALLELISM": "2",
        "COKREAT__CLOUD_STORAGE_SECRET": "s3cr3t",
    }
    cfg = load("content-auto-creator", env=env)
    assert cfg.get_int("content_auto_creator.maxIteration") == 9
    assert cfg.get_int("task.content-auto-creator.parallelism") == 2
    assert cfg.get_str("cloud_storage_secret") == "s3cr3t"


def test_overrides_beat_environment() -> None:
    cfg = load("user-delete", "kafka.groupId=from-set", env={"COKREAT__KAFKA__GROUPID": "from-env"})
    assert cfg.get_str("kafka.groupId") == "from-set"


def test_ambiguous_environment_name(tmp_path: Path) -> None:
    conf = tmp_path / "amb.conf"
    conf.write_text('a_b = 1\n"a-b" = 2\n')
    with pytest.raises(ConfigError, match="several keys"):
        load("user-delete", config_file=conf, env={"COKREAT__A_B": "3"})


def test_os_environ_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COKREAT__KAFKA__GROUPID", "from-os")
    assert load_config("user-delete").get_str("kafka.groupId") == "from-os"


# --------------------------------------------------------------------------------------------- config files

SCALA_BASE = """
kafka {
  broker-servers = "localhost:9092"
  zookeeper = "localhost:2181"
}
job {
  enable.distributed.checkpointing = false
  statebackend {
    blob {
      storage {
        account = "blob.storage.account"
        container = "kp-checkpoints"
        checkpointing.dir = "flink-jobs"
      }
    }
    base.url = "wasbs://"${job.statebackend.blob.storage.container}"@"${job.statebackend.blob.storage.account}"/"${job.statebackend.blob.storage.checkpointing.dir}
  }
}
task {
  checkpointing.compressed = true
  checkpointing.pause.between.seconds = 30000
  parallelism = 1
  checkpointing.interval = 60000
  restart-strategy.attempts = 3
  restart-strategy.delay = 30000 # in milli-seconds
}
lms-cassandra {
  host = "localhost"
  port = "9042"
}
neo4j {
  routePath = "bolt://localhost:7687"
  graph = "domain"
}
schema {
  basePath = "https://example.org/schemas/local"
  supportedVersion = {"itemset": "2.0"}
}
media_download_duration = "300 seconds"
"""

SCALA_CAC = """include "base-config.conf"

kafka {
  input.topic = "dev.auto.creation.job.request"
  failed.topic = "dev.auto.creation.job.request.failed"
  groupId = "dev-content-auto-creator-group"
}
task {
  consumer.parallelism = 1
  parallelism = 1
  content-auto-creator.parallelism = 1
  checkpointing.timeout = 4200000
}
content_auto_creator {
        actions=auto-create
        allowed_object_types=["Content"]
        artifact_upload_allowed_source="https://drive.google.com, example.org"
        api_call_delay=1
        maxIteration=1
    }
    search_exists_fields=["originData"]
service {
  search.basePath = "http://11.2.6.6/search"
  content_service.basePath = "http://11.2.6.6/content"
}
cloud_storage_type=""
"""


def test_scala_conf_with_its_include_beside_it(tmp_path: Path) -> None:
    (tmp_path / "base-config.conf").write_text(SCALA_BASE)
    (tmp_path / "content-auto-creator.conf").write_text(SCALA_CAC)
    cfg = load("content-auto-creator", config_file=tmp_path / "content-auto-creator.conf")
    assert cfg.get_str("kafka.input.topic") == "dev.auto.creation.job.request"
    assert cfg.get_str("schema.basePath") == "https://example.org/schemas/local"
    assert cfg.get_list("content_auto_creator.actions") == ["auto-create"]
    assert cfg.get_list("content_auto_creator.artifact_upload_allowed_source") == [
        "https://drive.google.com",
        "example.org",
    ]
    assert cfg.get_int("content_auto_creator.maxIteration") == 1
    assert cfg.get_str("service.content_service.basePath") == "http://11.2.6.6/content"
    # Keys the Scala file does not name keep the packaged defaults.
    assert cfg.get_int("http.retry.max_attempts") == 5
    assert cfg.get_list("content_auto_creator.bulk_upload_mime_types") == ["video/mp4"]
    assert (
        cfg.get_str("job.statebackend.base.url") == "wasbs://kp-checkpoints@blob.storage.account/flink-jobs"
    )


def test_scala_conf_without_its_include_stops_at_load(tmp_path: Path) -> None:
    # COMPAT A1: pyhocon only warns, and the job then ran against the packaged localhost defaults.
    (tmp_path / "cac.conf").write_text(SCALA_CAC)
    with pytest.raises(ConfigError, match=r"includes .*base-config\.conf, which does not exist"):
        load("content-auto-creator", config_file=tmp_path / "cac.conf")


@pytest.mark.parametrize(
    "statement",
    [
        'include file("{missing}")',
        'include required(file("{missing}"))',
        'include "{missing}"',
        'include required("{missing}")',
    ],
)
def test_every_missing_include_form_is_an_error_naming_the_file(tmp_path: Path, statement: str) -> None:
    missing = tmp_path / "flink" / "conf" / "base-config.conf"
    conf = tmp_path / "job.conf"
    conf.write_text(statement.format(missing=missing) + "\nkafka.groupId = g\n")
    with pytest.raises(ConfigError) as caught:
        load("user-delete", config_file=conf)
    assert str(missing) in str(caught.value)
    assert str(conf) in str(caught.value)


def test_a_missing_include_inside_an_included_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "middle.conf").write_text('include "deeper.conf"\n')
    (tmp_path / "job.conf").write_text('include "middle.conf"\n')
    with pytest.raises(ConfigError, match="deeper.conf"):
        load("user-delete", config_file=tmp_path / "job.conf")


def test_a_present_include_loads_and_pyhocon_logging_is_left_as_it_was(tmp_path: Path) -> None:
    import logging

    logger = logging.getLogger("pyhocon.config_parser")
    before = (logger.level, logger.propagate, list(logger.handlers))
    (tmp_path / "other.conf").write_text('kafka.groupId = "from-include"\n')
    (tmp_path / "job.conf").write_text(f'include file("{tmp_path / "other.conf"}")\n')
    assert load("user-delete", config_file=tmp_path / "job.conf").get_str("kafka.groupId") == "from-include"
    (tmp_path / "bad.conf").write_text('include "nope.conf"\n')
    with pytest.raises(ConfigError, match="nope.conf"):
        load("user-delete", config_file=tmp_path / "bad.conf")
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


def test_scala_conf_copied_into_the_packaged_folder_layout(tmp_path: Path) -> None:
    # Our base-config.conf alias lets a Scala file sit beside our own files.
    for name in ("base.conf", "base-config.conf"):
        (tmp_path / name).write_text((conf_dir() / name).read_text())
    (tmp_path / "cac.conf").write_text(SCALA_CAC)
    cfg = load("content-auto-creator", config_file=tmp_path / "cac.conf")
    assert cfg.get_int("task.async.capacity") == 100


def test_config_file_substitution_sees_later_overrides(tmp_path: Path) -> None:
    conf = tmp_path / "mine.conf"
    conf.write_text('kafka.input.topic = ${job.env}".mine"\n')
    cfg = load("user-delete", "job.env=qa", config_file=conf)
    assert cfg.get_str("kafka.input.topic") == "qa.mine"


def test_missing_and_unparsable_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load("user-delete", config_file=tmp_path / "nope.conf")
    bad = tmp_path / "bad.conf"
    bad.write_text("a = {")
    with pytest.raises(ConfigError, match="cannot parse"):
        load("user-delete", config_file=bad)


# ------------------------------------------------------------------------------------------------ JobConfig


def test_missing_key_names_it() -> None:
    cfg = JobConfig({"a": {"b": 1}})
    with pytest.raises(ConfigError, match="'a.c'"):
        cfg.get("a.c")
    with pytest.raises(ConfigError, match="'a.b.c'"):
        cfg.get_str("a.b.c")
    assert cfg.get("a.c", None) is None
    assert cfg.get_int("a.c", 4) == 4


def test_typed_getters() -> None:
    cfg = JobConfig(
        {
            "s": "x",
            "n": 3,
            "ns": " 42 ",
            "f": 1.0,
            "fs": "2.5",
            "b": True,
            "bs": "yes",
            "l": ["a", {"k": 1}],
            "cs": " a, b ,,c ",
            "d": {"x": {"y": 1}},
        }
    )
    assert cfg.get_str("n") == "3"
    assert cfg.get_str("b") == "true"
    assert cfg.get_int("ns") == 42
    assert cfg.get_int("f") == 1
    assert cfg.get_float("fs") == 2.5
    assert cfg.get_float("n") == 3.0
    assert cfg.get_bool("bs") is True
    assert cfg.get_list("l") == ["a", {"k": 1}]
    assert cfg.get_list("cs") == ["a", "b", "c"]
    assert cfg.get_dict("d") == {"x": {"y": 1}}
    for getter, key in [
        (cfg.get_int, "s"),
        (cfg.get_int, "b"),
        (cfg.get_float, "s"),
        (cfg.get_bool, "n"),
        (cfg.get_str, "l"),
        (cfg.get_list, "n"),
        (cfg.get_dict, "s"),
    ]:
        with pytest.raises(ConfigError, match=f"'{key}'"):
            getter(key)


def test_values_handed_out_are_copies() -> None:
    cfg = JobConfig({"l": [1], "d": {"a": 1}})
    cfg.get_list("l").append(2)
    cfg.get_dict("d")["b"] = 2
    cfg.as_dict()["l"].append(3)
    assert cfg.get("l") == [1]
    assert cfg.get("d") == {"a": 1}


def test_with_overrides_returns_a_new_config() -> None:
    cfg = load("user-delete")
    new = cfg.with_overrides(
        {"kafka.broker-servers": "127.0.0.1:1", "schema.supportedVersion": {"question": "1.0"}, "x.y": [1]}
    )
    assert new.get_str("kafka.broker-servers") == "127.0.0.1:1"
    assert new.get_dict("schema.supportedVersion") == {"itemset": "2.0", "question": "1.0"}
    assert new.get("x.y") == [1]
    assert new.job == "user-delete"
    assert cfg.get_str("kafka.broker-servers") == "localhost:9092"
    # Strings are literal, not parsed.
    assert cfg.with_overrides({"k": "[1]"}).get("k") == "[1]"


def test_pickle_round_trip_and_repr_hides_values() -> None:
    cfg = load("content-auto-creator", "cloud_storage_secret=topsecret")
    again = pickle.loads(pickle.dumps(cfg))
    assert again == cfg
    assert again.job == "content-auto-creator"
    assert again.get_str("cloud_storage_secret") == "topsecret"
    assert "topsecret" not in repr(cfg)
    assert JobConfig(cfg.as_dict(), cfg.job) == cfg


def test_tree_view() -> None:
    tree = load("user-delete").tree
    assert tree.get_string("kafka.input.topic") == "sunbirddev.delete.user"


def test_a_missing_include_is_an_error_when_logging_records_no_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    monkeypatch.setattr(logging, "logThreads", False)
    (tmp_path / "job.conf").write_text('include "absent.conf"\n')
    with pytest.raises(ConfigError, match="absent.conf"):
        load("user-delete", config_file=tmp_path / "job.conf")

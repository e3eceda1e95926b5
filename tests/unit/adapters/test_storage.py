"""Cloud storage: local uploads through fsspec, and the URLs and options built for every type of the Scala
jobs' cloud-store SDK (azure, aws, gcloud, cephs3, oci). tests/integration/test_storage_servers.py uploads to
real servers of each protocol."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.adapters.retry import RetryPolicy
from cokreat_jobs.adapters.storage import CloudStorage, storage_path
from cokreat_jobs.core.config import JobConfig, load_config
from cokreat_jobs.core.errors import ConfigError, PermanentError, TransientError


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "my-book.pdf"
    path.parent.mkdir()
    path.write_bytes(b"%PDF-1.4 content")
    return path


def test_storage_path() -> None:
    assert storage_path("content", "do_1", "artifact", "a.pdf") == "content/do_1/artifact/a.pdf"
    assert storage_path("/content/", "", "do_1/", "/a.pdf") == "content/do_1/a.pdf"


def test_local_upload_returns_the_public_url(tmp_path: Path, source: Path) -> None:
    root = tmp_path / "storage"
    storage = CloudStorage("local", local_path=str(root), public_base_url="http://127.0.0.1:8765/files/")
    url = asyncio.run(storage.upload_file(source, "content/do_1/artifact/my-book.pdf"))
    assert url == "http://127.0.0.1:8765/files/content/do_1/artifact/my-book.pdf"
    assert (root / "content/do_1/artifact/my-book.pdf").read_bytes() == b"%PDF-1.4 content"
    assert [p.name for p in (root / "content/do_1/artifact").iterdir()] == ["my-book.pdf"]  # no .part left


def test_local_upload_overwrites(tmp_path: Path, source: Path) -> None:
    storage = CloudStorage("local", local_path=str(tmp_path / "s"))
    storage.upload_file_sync(source, "a/b.pdf")
    source.write_bytes(b"v2")
    storage.upload_file_sync(source, "a/b.pdf")
    assert (tmp_path / "s/a/b.pdf").read_bytes() == b"v2"


def test_local_root_as_file_url_and_file_url_answer(tmp_path: Path, source: Path) -> None:
    root = tmp_path / "st ore"
    storage = CloudStorage("local", local_path=root.as_uri())
    url = storage.upload_file_sync(source, "content/x/a b.pdf")
    assert (root / "content/x/a b.pdf").exists()
    assert url == (root / "content/x/a b.pdf").as_uri()


def test_public_url_is_percent_encoded() -> None:
    storage = CloudStorage("local", public_base_url="http://h/files")
    assert storage.public_url("content/x/a b#.pdf") == "http://h/files/content/x/a%20b%23.pdf"


@pytest.mark.parametrize("path", ["../escape.pdf", "content/../../x", "/", "", "a/./../b"])
def test_unsafe_paths_are_refused(path: str) -> None:
    storage = CloudStorage("local")
    with pytest.raises(PermanentError):
        storage.fsspec_url(path)


def test_missing_source_is_permanent(tmp_path: Path) -> None:
    storage = CloudStorage("local", local_path=str(tmp_path))
    with pytest.raises(PermanentError, match="no such file"):
        storage.upload_file_sync(tmp_path / "nope.pdf", "a/nope.pdf")


class FakeFs:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.puts: list[tuple[str, str]] = []

    def put_file(self, local: str, remote: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection reset")
        self.puts.append((local, remote))


class Factory:
    def __init__(self, fs: Any = None) -> None:
        self.fs = fs or FakeFs()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, protocol: str, **options: Any) -> Any:
        self.calls.append((protocol, options))
        return self.fs


def test_s3(source: Path) -> None:
    factory = Factory()
    storage = CloudStorage("aws", container="bucket", key="AKIA", secret="s3cr3t", fs_factory=factory)
    url = storage.upload_file_sync(source, "content/do_1/artifact/a.pdf")
    assert url == "https://bucket.s3.amazonaws.com/content/do_1/artifact/a.pdf"
    assert factory.calls == [("s3", {"key": "AKIA", "secret": "s3cr3t"})]
    assert factory.fs.puts == [(str(source), "s3://bucket/content/do_1/artifact/a.pdf")]


def test_s3_with_endpoint() -> None:
    factory = Factory()
    storage = CloudStorage("S3", container="b", endpoint="http://minio:9000/", fs_factory=factory)
    assert storage.public_url("x/a.pdf") == "http://minio:9000/b/x/a.pdf"
    storage.filesystem()
    assert factory.calls == [("s3", {"client_kwargs": {"endpoint_url": "http://minio:9000"}})]


def test_azure() -> None:
    factory = Factory()
    storage = CloudStorage("azure", container="c", key="acct", secret="k==", fs_factory=factory)
    assert storage.fsspec_url("x/a.pdf") == "az://c/x/a.pdf"
    assert storage.public_url("x/a.pdf") == "https://acct.blob.core.windows.net/c/x/a.pdf"
    storage.filesystem()
    assert factory.calls == [("az", {"account_name": "acct", "account_key": "k=="})]


def test_gcs_with_json_secret_or_key_pair() -> None:
    factory = Factory()
    storage = CloudStorage(
        "gcloud", container="g", secret='{"type": "service_account", "x": 1}', fs_factory=factory
    )
    assert storage.fsspec_url("x/a.pdf") == "gs://g/x/a.pdf"
    assert storage.public_url("x/a.pdf") == "https://storage.googleapis.com/g/x/a.pdf"
    storage.filesystem()
    assert factory.calls[0] == ("gs", {"token": {"type": "service_account", "x": 1}})

    factory2 = Factory()
    CloudStorage(
        "gcs", container="g", key="sa@p.iam", secret="-----KEY\\nX", fs_factory=factory2
    ).filesystem()
    token = factory2.calls[0][1]["token"]
    assert token["client_email"] == "sa@p.iam" and token["private_key"] == "-----KEY\nX"


def test_public_base_url_overrides_any_type() -> None:
    storage = CloudStorage("aws", container="b", public_base_url="https://cdn.test/", fs_factory=Factory())
    assert storage.public_url("x/a.pdf") == "https://cdn.test/x/a.pdf"


def test_missing_backend_names_the_package(source: Path) -> None:
    def no_backend(protocol: str, **options: Any) -> Any:
        raise ImportError(f"Install s3fs to access {protocol}")

    storage = CloudStorage(
        "oci", container="b", endpoint="https://ns.compat.objectstorage.r-1.oraclecloud.com"
    )
    storage._fs_factory = no_backend
    with pytest.raises(PermanentError, match="s3fs"):
        storage.upload_file_sync(source, "x/a.pdf")


def test_the_backends_come_with_the_package() -> None:
    # the shipped manifests name azure: its backend (and the others') must be installed with the package
    import adlfs  # noqa: F401
    import gcsfs  # noqa: F401
    import s3fs  # noqa: F401


def test_transient_errors_are_retried_then_given_up(source: Path) -> None:
    sleeps: list[float] = []
    retry = RetryPolicy(max_attempts=3, backoff_ms=1, max_backoff_ms=2)
    factory = Factory(FakeFs(failures=2))
    storage = CloudStorage("s3", container="b", retry=retry, fs_factory=factory, sleep=sleeps.append)
    assert storage.upload_file_sync(source, "x/a.pdf").endswith("/x/a.pdf")
    assert len(sleeps) == 2

    failing = CloudStorage(
        "s3", container="b", retry=retry, fs_factory=Factory(FakeFs(failures=9)), sleep=sleeps.append
    )
    with pytest.raises(TransientError, match="after 3 attempts"):
        failing.upload_file_sync(source, "x/a.pdf")


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="not supported"):
        CloudStorage("ftp")
    with pytest.raises(ConfigError, match="cloud_storage_container"):
        CloudStorage("aws")
    with pytest.raises(ConfigError, match="cloud_storage_key .*account name"):
        CloudStorage("azure", container="c")
    with pytest.raises(ConfigError, match="not a URL"):
        CloudStorage("cephs3", container="c", endpoint="ceph.internal")


@pytest.mark.parametrize("kind", ["", "  "])
def test_an_empty_type_is_refused_not_local(kind: str, tmp_path: Path) -> None:
    # the SDK refused an empty type; writing to the pod's disk instead would lose every upload
    with pytest.raises(ConfigError, match="cloud_storage_type is empty.*local"):
        CloudStorage(kind, local_path=str(tmp_path))


@pytest.mark.parametrize("kind", ["cephs3", "oci"])
def test_s3_compatible_types_need_an_endpoint(kind: str) -> None:
    with pytest.raises(ConfigError, match="cloud_storage_endpoint is required"):
        CloudStorage(kind, container="c", key="k", secret="s")


def test_cephs3_speaks_path_style_s3_at_its_endpoint(source: Path) -> None:
    factory = Factory()
    storage = CloudStorage(
        "cephs3",
        container="contents",
        key="ak",
        secret="sk",
        endpoint="https://obj.dev.sunbird.org/",
        fs_factory=factory,
    )
    url = storage.upload_file_sync(source, "content/do_1/artifact/a.pdf")
    assert url == "https://obj.dev.sunbird.org/contents/content/do_1/artifact/a.pdf"
    assert factory.fs.puts == [(str(source), "s3://contents/content/do_1/artifact/a.pdf")]
    protocol, options = factory.calls[0]
    assert protocol == "s3"
    assert options["key"] == "ak" and options["secret"] == "sk"
    assert options["client_kwargs"] == {"endpoint_url": "https://obj.dev.sunbird.org"}
    assert options["config_kwargs"]["s3"] == {"addressing_style": "path"}
    assert options["config_kwargs"]["request_checksum_calculation"] == "when_required"


def test_oci_signs_for_the_region_of_its_endpoint() -> None:
    factory = Factory()
    endpoint = "https://axabc.compat.objectstorage.ap-hyderabad-1.oraclecloud.com"
    storage = CloudStorage("OCI", container="b", key="k", secret="s", endpoint=endpoint, fs_factory=factory)
    assert storage.region == "ap-hyderabad-1"
    assert storage.public_url("x/a.pdf") == f"{endpoint}/b/x/a.pdf"
    storage.filesystem()
    options = factory.calls[0][1]
    assert options["client_kwargs"] == {"endpoint_url": endpoint, "region_name": "ap-hyderabad-1"}
    assert options["config_kwargs"]["s3"] == {"addressing_style": "path"}
    # a configured region wins; an endpoint that names none needs one
    assert (
        CloudStorage("oci", container="b", endpoint=endpoint, region="us-ashburn-1").region == "us-ashburn-1"
    )
    with pytest.raises(ConfigError, match="cloud_storage_region is required"):
        CloudStorage("oci", container="b", endpoint="https://s3.oci.example")


def test_azure_endpoint_is_a_blob_service_url() -> None:
    # Azurite (http, the account in the path) or a sovereign cloud: a connection string keeps both
    factory = Factory()
    storage = CloudStorage(
        "azure",
        container="c",
        key="devstoreaccount1",
        secret="k==",
        endpoint="http://127.0.0.1:10000/devstoreaccount1/",
        fs_factory=factory,
    )
    assert storage.public_url("x/a.pdf") == "http://127.0.0.1:10000/devstoreaccount1/c/x/a.pdf"
    storage.filesystem()
    assert factory.calls == [
        (
            "az",
            {
                "connection_string": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                "AccountKey=k==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
            },
        )
    ]


def test_an_absent_type_is_the_scala_jobs_azure(tmp_path: Path) -> None:
    cfg = JobConfig({"cloud_storage_container": "contents", "cloud_storage_key": "sunbirdprodstorage"})
    storage = CloudStorage.from_config(cfg, fs_factory=Factory())
    assert storage.kind == "azure"
    assert storage.public_url("content/do_1/a.pdf") == (
        "https://sunbirdprodstorage.blob.core.windows.net/contents/content/do_1/a.pdf"
    )
    # the packaged defaults leave the type unset: without a container the job refuses to start, and says
    # which type it assumed; it never writes to cloud_storage.local.path unless told local
    with pytest.raises(ConfigError, match="container is required for cloud_storage_type 'azure'"):
        CloudStorage.from_config(load_config("content-auto-creator", env={}))
    with pytest.raises(ConfigError, match="container is required for cloud_storage_type 'azure'"):
        CloudStorage.from_config(load_config("auto-creator-v2", env={}))
    local = load_config(
        "auto-creator-v2",
        overrides=["cloud_storage_type=local", f"cloud_storage.local.path={tmp_path}"],
        env={},
    )
    assert CloudStorage.from_config(local).kind == "local"


def test_secrets_stay_out_of_repr_and_errors(source: Path) -> None:
    class Refusing(FakeFs):
        def put_file(self, local: str, remote: str) -> None:
            raise PermissionError("403 Forbidden")

    storage = CloudStorage(
        "aws", container="b", key="AKIAKEY", secret="TOPSECRET", fs_factory=Factory(Refusing())
    )
    assert "TOPSECRET" not in repr(storage) and "AKIAKEY" not in repr(storage)
    with pytest.raises(PermanentError) as info:
        storage.upload_file_sync(source, "x/a.pdf")
    assert "TOPSECRET" not in str(info.value)


def test_from_config(tmp_path: Path) -> None:
    cfg = JobConfig(
        {
            "cloud_storage_type": "local",
            "cloud_storage_secret": "x",
            "cloud_storage": {"local": {"path": str(tmp_path)}, "public_base_url": "http://h:1/s"},
        }
    )
    storage = CloudStorage.from_config(cfg)
    assert storage.kind == "local"
    assert storage.local_root == tmp_path
    assert storage.public_url("a/b.pdf") == "http://h:1/s/a/b.pdf"

    s3 = CloudStorage.from_config(
        JobConfig(
            {
                "cloud_storage_type": "aws",
                "cloud_storage_container": "b",
                "cloud_storage_endpoint": "http://m",
            }
        )
    )
    assert s3.public_url("a.pdf") == "http://m/b/a.pdf"

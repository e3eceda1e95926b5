"""Every storage type of the Scala jobs' cloud-store SDK, uploaded through our adapter to a real server of its
protocol (tests/integration/conftest.py starts them): each test loads the job's configuration with the
type's ``cloud_storage_*`` keys, uploads a file through ``CloudStorage``, reads it back from the server with
that protocol's own client, and checks the public URL has the SDK's form and serves the bytes.

- ``azure``: Azurite, Microsoft's Azure Storage emulator (npm), through adlfs.
- ``aws``, ``cephs3``, ``oci``: moto's S3 server mode (PyPI). Chosen because it installs with pip from the
  pinned dev dependencies and is up in about a second; a real Ceph or OCI is not available here, and MinIO
  or versitygw would have to be built with Go at setup. moto speaks the S3 REST API over HTTP with SigV4,
  which is what s3fs sends for all three types; the endpoint is ``localhost`` by name, so an upload that
  addressed the bucket as a virtual host (``<bucket>.localhost``) would not connect: cephs3 and oci passing
  shows their path-style addressing.
- ``gcloud``: fake-gcs-server (Go), when ``make gcs-emulator`` has built it; skipped otherwise.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.adapters.storage import CloudStorage
from cokreat_jobs.core.config import load_config

StorageServer = Any  # tests/integration/conftest.py's servers: name, url, pid, log_file (account, key)

pytestmark = pytest.mark.integration

BODY = b"%PDF-1.4 a small artifact\n" * 40
OBJECT = "content/do_1136/artifact/my-book.pdf"


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    path = tmp_path / "my-book.pdf"
    path.write_bytes(BODY)
    return path


def storage_for(job: str, *settings: str) -> CloudStorage:
    cfg = load_config(job, overrides=list(settings), env={})
    return CloudStorage.from_config(cfg)


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def test_azure_blob_on_azurite(azurite: StorageServer, source: Path) -> None:
    from azure.storage.blob import BlobServiceClient

    account, key = azurite.account, azurite.key
    endpoint = f"{azurite.url}/{account}"
    service = BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint={endpoint};"
    )
    service.create_container("contents", public_access="blob")
    storage = storage_for(
        "content-auto-creator",
        "cloud_storage_type=azure",
        f"cloud_storage_key={account}",
        f"cloud_storage_secret={key}",
        "cloud_storage_container=contents",
        f"cloud_storage_endpoint={endpoint}",
    )
    url = storage.upload_file_sync(source, OBJECT)
    assert url == f"{endpoint}/contents/{OBJECT}"
    assert service.get_blob_client("contents", OBJECT).download_blob().readall() == BODY
    assert http_get(url) == BODY  # the URL serves it, as https://<account>.blob.core.windows.net/... does
    # without the endpoint, the URL the SDK returned on Azure
    real = storage_for(
        "content-auto-creator", "cloud_storage_key=sunbirdprodstorage", "cloud_storage_container=contents"
    )
    assert real.kind == "azure"  # unset type: the Scala jobs' azure
    assert real.public_url(OBJECT) == f"https://sunbirdprodstorage.blob.core.windows.net/contents/{OBJECT}"


def _s3_client(server: StorageServer):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id="ak",
        aws_secret_access_key="sk",
        region_name="us-east-1",
    )


@pytest.mark.parametrize(
    ("kind", "bucket", "extra"),
    [
        ("aws", "aws-bucket", []),
        ("cephs3", "ceph-bucket", []),
        ("oci", "oci-bucket", ["cloud_storage_region=ap-hyderabad-1"]),
    ],
)
def test_s3_family_on_an_s3_server(
    s3_server: StorageServer, source: Path, kind: str, bucket: str, extra: list[str]
) -> None:
    client = _s3_client(s3_server)
    client.create_bucket(Bucket=bucket)
    # a public-read bucket, as the contents bucket the services download from
    public = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    client.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]})
    )
    endpoint = s3_server.url.replace("127.0.0.1", "localhost")  # by name: see the module docstring
    storage = storage_for(
        "auto-creator-v2",
        f"cloud_storage_type={kind}",
        "cloud_storage_key=ak",
        "cloud_storage_secret=sk",
        f"cloud_storage_container={bucket}",
        f"cloud_storage_endpoint={endpoint}",
        *extra,
    )
    url = storage.upload_file_sync(source, OBJECT)
    assert url == f"{endpoint}/{bucket}/{OBJECT}"
    got = client.get_object(Bucket=bucket, Key=OBJECT)["Body"].read()
    assert got == BODY
    assert http_get(url) == BODY
    # uploading again replaces the object (the jobs re-upload on a retried event)
    source.write_bytes(b"v2")
    assert storage.upload_file_sync(source, OBJECT) == url
    assert http_get(url) == b"v2"


def test_aws_public_url_without_an_endpoint() -> None:
    storage = storage_for(
        "auto-creator-v2", "cloud_storage_type=aws", "cloud_storage_container=b", "cloud_storage_key=k"
    )
    assert storage.public_url(OBJECT) == f"https://b.s3.amazonaws.com/{OBJECT}"


def test_gcloud_on_fake_gcs_server(gcs_server: StorageServer, source: Path) -> None:
    request = urllib.request.Request(
        f"{gcs_server.url}/storage/v1/b",
        data=json.dumps({"name": "gcs-bucket"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()
    storage = storage_for(
        "content-auto-creator",
        "cloud_storage_type=gcloud",
        "cloud_storage_container=gcs-bucket",
        f"cloud_storage_endpoint={gcs_server.url}",
    )
    url = storage.upload_file_sync(source, OBJECT)
    assert url == f"{gcs_server.url}/gcs-bucket/{OBJECT}"
    quoted = urllib.request.quote(OBJECT, safe="")
    assert http_get(f"{gcs_server.url}/storage/v1/b/gcs-bucket/o/{quoted}?alt=media") == BODY
    assert http_get(url) == BODY

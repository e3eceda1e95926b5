"""Cloud storage through fsspec, configured by the Scala jobs' ``cloud_storage_*`` keys.

The Scala jobs write through Sunbird's cloud-store SDK (``StorageServiceFactory``), whose types are ``azure``,
``aws``, ``gcloud``, ``cephs3`` and ``oci``; an absent ``cloud_storage_type`` is ``azure`` there
(``CloudStorageUtil``: ``getString("cloud_storage_type", "azure")``) and here. ``cloud_storage_type`` and
what it means (fsspec URL of a file; credentials; the public URL the SDK's upload returned):

- ``azure``: ``az://<container>/<path>`` (adlfs); account name = key, account key = secret;
  ``https://<key>.blob.core.windows.net/<container>/<path>``. With ``cloud_storage_endpoint`` (the blob
  service URL: Azurite's ``http://127.0.0.1:10000/devstoreaccount1``, a sovereign cloud's
  ``https://<key>.blob.core.chinacloudapi.cn``) files go there, URL ``<endpoint>/<container>/<path>``.
- ``aws`` (or ``s3``): ``s3://<container>/<path>`` (s3fs); access key = key, secret key = secret;
  ``https://<container>.s3.amazonaws.com/<path>``. An endpoint (not read by the SDK for ``aws``) sends the
  files there, URL ``<endpoint>/<container>/<path>``.
- ``cephs3`` and ``oci``: the S3 API at ``cloud_storage_endpoint`` (required: the job refuses to start
  without it), path-style addressing, SigV4, and no checksum headers the S3 API did not always have (Ceph
  and OCI's compatibility API refuse some); URL ``<endpoint>/<container>/<path>``. OCI signs for a region:
  ``cloud_storage_region``, else the one in the endpoint's host
  (``<namespace>.compat.objectstorage.<region>.oraclecloud.com``), else the job refuses to start.
- ``gcloud`` (or ``gcs``): ``gs://<container>/<path>`` (gcsfs); a service-account JSON in the secret, or
  client email = key and private key = secret (as the SDK's jclouds provider), else the environment's
  default credentials; ``https://storage.googleapis.com/<container>/<path>``. An endpoint (an emulator)
  sends the files there (anonymously when no credentials are given), URL ``<endpoint>/<container>/<path>``.
- ``local``: the directory ``cloud_storage.local.path`` (a path or a ``file://`` URL); no credentials;
  ``<cloud_storage.public_base_url>/<path>`` (locally the sandbox serves the directory over HTTP there), or
  with no public base the file's ``file://`` URL (fine for tests; content-service refuses it). Only an
  explicit ``local`` writes to the local disk: an empty ``cloud_storage_type`` is refused (the SDK refused
  it too), so a production config never falls back to a pod's disk.

``cloud_storage.public_base_url`` overrides the public base of any type. ``cloud_storage_region`` (ours)
is optional for ``aws`` / ``cephs3``.

The backends (adlfs, s3fs, gcsfs) are dependencies of the package; each is imported on the first upload.
fsspec calls block, so they run in a worker thread. Credentials are never logged (``repr`` shows the type
and container only; ``core.redaction`` masks account keys, connection strings and request signatures).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import orjson

from cokreat_jobs.adapters.retry import Retryable, RetryPolicy, call_with_retries_sync
from cokreat_jobs.core.errors import ConfigError, PermanentError, describe_exception

if TYPE_CHECKING:
    from cokreat_jobs.core.config import JobConfig

__all__ = ["DEFAULT_LOCAL_PATH", "REFERENCE_DEFAULT_TYPE", "CloudStorage", "storage_path"]

logger = logging.getLogger(__name__)

DEFAULT_LOCAL_PATH = "/tmp/cokreat-storage"

# The SDK's meaning of an absent cloud_storage_type (coKreat-jobs' CloudStorageUtil).
REFERENCE_DEFAULT_TYPE = "azure"

_KINDS = {
    "local": "local",
    "file": "local",
    "aws": "s3",
    "s3": "s3",
    "cephs3": "cephs3",
    "ceph": "cephs3",
    "oci": "oci",
    "azure": "azure",
    "az": "azure",
    "gcloud": "gcs",
    "gcs": "gcs",
    "gcp": "gcs",
}
_S3_FAMILY = ("s3", "cephs3", "oci")
_ENDPOINT_REQUIRED = ("cephs3", "oci")
_BACKEND_PACKAGE = {"s3": "s3fs", "cephs3": "s3fs", "oci": "s3fs", "azure": "adlfs", "gcs": "gcsfs"}
_PROTOCOL = {"local": "file", "s3": "s3", "cephs3": "s3", "oci": "s3", "azure": "az", "gcs": "gs"}
_SUPPORTED = "azure, aws, gcloud, cephs3, oci or local"
# <namespace>.compat.objectstorage.<region>.oraclecloud.com: OCI's S3 compatibility endpoint
_OCI_REGION_RE = re.compile(
    r"\.compat\.objectstorage\.([a-z0-9-]+)\.(?:oraclecloud\.com|oci\.customer-oci\.com)$"
)
_GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


def storage_path(*segments: str) -> str:
    """Segments joined with ``/``, empty ones and stray slashes dropped (``content/do_1/artifact/a.pdf``)."""
    return "/".join(s.strip("/") for s in segments if s and s.strip("/"))


def _local_root(value: str) -> Path:
    if value.startswith("file://"):
        return Path(unquote(urlsplit(value).path))
    return Path(value).expanduser()


def _safe_relative(path: str) -> str:
    rel = path.replace("\\", "/").strip("/")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise PermanentError(f"invalid storage path {path!r}")
    return "/".join(parts)


def _default_factory(protocol: str, **options: Any) -> Any:
    if protocol == "gs":
        # gcsfs's default class (ExtendedGcsFileSystem, GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT) first asks the
        # storage-control gRPC API for each bucket's type (zonal / hierarchical): a minute's timeout where
        # that API is absent (emulators). The JSON-API class writes standard buckets, as the SDK did
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(**options)
    import fsspec

    return fsspec.filesystem(protocol, **options)


class CloudStorage:
    """Uploads files and answers their public URLs.

    ``fs_factory(protocol, **options)`` builds the fsspec filesystem (``fsspec.filesystem`` by default);
    tests inject their own.
    """

    def __init__(
        self,
        kind: str = "local",
        *,
        container: str = "",
        key: str = "",
        secret: str = "",
        endpoint: str = "",
        region: str = "",
        local_path: str = DEFAULT_LOCAL_PATH,
        public_base_url: str = "",
        retry: RetryPolicy | None = None,
        fs_factory: Callable[..., Any] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        given = kind.strip().lower()
        if not given:
            raise ConfigError(
                f"cloud_storage_type is empty: set it to {_SUPPORTED} (the Scala jobs read an unset type "
                f"as {REFERENCE_DEFAULT_TYPE} and refused an empty one; only explicit local writes to disk)",
                key="cloud_storage_type",
            )
        normalised = _KINDS.get(given)
        if normalised is None:
            raise ConfigError(
                f"cloud_storage_type {kind!r} is not supported: use {_SUPPORTED}", key="cloud_storage_type"
            )
        self.kind = normalised
        self.container = container.strip().strip("/")
        if self.kind != "local" and not self.container:
            raise ConfigError(
                f"cloud_storage_container is required for cloud_storage_type {kind!r}",
                key="cloud_storage_container",
            )
        if self.kind == "azure" and not key.strip():
            raise ConfigError(
                f"cloud_storage_key (the storage account name) is required for cloud_storage_type {kind!r}",
                key="cloud_storage_key",
            )
        self.endpoint = endpoint.strip().rstrip("/")
        if self.kind in _ENDPOINT_REQUIRED and not self.endpoint:
            raise ConfigError(
                f"cloud_storage_endpoint is required for cloud_storage_type {kind!r}: the S3 API URL of the "
                + ("Ceph object gateway" if self.kind == "cephs3" else "OCI S3 compatibility endpoint"),
                key="cloud_storage_endpoint",
            )
        if self.endpoint and not urlsplit(self.endpoint).netloc:
            raise ConfigError(
                f"cloud_storage_endpoint {self.endpoint!r} is not a URL (http(s)://host[:port])",
                key="cloud_storage_endpoint",
            )
        self.region = region.strip() or self._derived_region()
        if self.kind == "oci" and not self.region:
            raise ConfigError(
                "cloud_storage_region is required for cloud_storage_type 'oci' when the endpoint is not "
                "<namespace>.compat.objectstorage.<region>.oraclecloud.com",
                key="cloud_storage_region",
            )
        self.local_root = _local_root(local_path or DEFAULT_LOCAL_PATH)
        self._key = key
        self._secret = secret
        self._public_base = public_base_url.strip().rstrip("/")
        self._retry = retry or RetryPolicy(max_attempts=3)
        self._fs_factory = fs_factory
        self._fs: Any = None
        self._fs_lock = threading.Lock()
        self._sleep = sleep

    @classmethod
    def from_config(cls, cfg: JobConfig, **kwargs: Any) -> CloudStorage:
        """The storage of ``cfg``; an absent ``cloud_storage_type`` is the Scala jobs' ``azure``."""
        kwargs.setdefault("retry", RetryPolicy.from_config(cfg))
        return cls(
            cfg.get_str("cloud_storage_type", REFERENCE_DEFAULT_TYPE),
            container=cfg.get_str("cloud_storage_container", ""),
            key=cfg.get_str("cloud_storage_key", ""),
            secret=cfg.get_str("cloud_storage_secret", ""),
            endpoint=cfg.get_str("cloud_storage_endpoint", ""),
            region=cfg.get_str("cloud_storage_region", ""),
            local_path=cfg.get_str("cloud_storage.local.path", DEFAULT_LOCAL_PATH),
            public_base_url=cfg.get_str("cloud_storage.public_base_url", ""),
            **kwargs,
        )

    def _derived_region(self) -> str:
        if self.kind != "oci":
            return ""
        match = _OCI_REGION_RE.search((urlsplit(self.endpoint).hostname or "").lower())
        return match.group(1) if match else ""

    # -- names

    def fsspec_url(self, relative_path: str) -> str:
        """Where ``relative_path`` is written, as an fsspec URL (a plain path for local storage)."""
        rel = _safe_relative(relative_path)
        if self.kind == "local":
            return str(self.local_root / rel)
        return f"{_PROTOCOL[self.kind]}://{self.container}/{rel}"

    def public_url(self, relative_path: str) -> str:
        """The URL the services download ``relative_path`` from."""
        rel = quote(_safe_relative(relative_path), safe="/")
        if self._public_base:
            return f"{self._public_base}/{rel}"
        if self.kind == "local":
            return (self.local_root / unquote(rel)).absolute().as_uri()
        if self.endpoint:  # cephs3 and oci always: path-style, as the SDK's jclouds S3 provider returned
            return f"{self.endpoint}/{self.container}/{rel}"
        if self.kind == "s3":
            return f"https://{self.container}.s3.amazonaws.com/{rel}"
        if self.kind == "azure":
            return f"https://{self._key}.blob.core.windows.net/{self.container}/{rel}"
        return f"https://storage.googleapis.com/{self.container}/{rel}"

    # -- filesystem

    def _storage_options(self) -> dict[str, Any]:
        if self.kind == "local":
            return {"auto_mkdir": True}
        if self.kind in _S3_FAMILY:
            return self._s3_options()
        if self.kind == "azure":
            if self.endpoint:
                # adlfs's account_host is https only and drops a path (Azurite's /<account>): a connection
                # string names the blob endpoint as it is
                parts = [
                    f"DefaultEndpointsProtocol={urlsplit(self.endpoint).scheme or 'https'}",
                    f"AccountName={self._key}",
                    *([f"AccountKey={self._secret}"] if self._secret else []),
                    f"BlobEndpoint={self.endpoint}",
                ]
                return {"connection_string": ";".join(parts) + ";"}
            options: dict[str, Any] = {"account_name": self._key}
            if self._secret:
                options["account_key"] = self._secret
            return options
        options = {}
        token = self._gcs_token()
        if token is not None:
            options["token"] = token
        elif self.endpoint:
            options["token"] = "anon"  # an emulator and no credentials: no lookup of a metadata server
        if self.endpoint:
            options["endpoint_url"] = self.endpoint
        return options

    def _s3_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self._key or self._secret:
            options.update(key=self._key, secret=self._secret)
        client_kwargs: dict[str, Any] = {}
        if self.endpoint:
            client_kwargs["endpoint_url"] = self.endpoint
        if self.region:
            client_kwargs["region_name"] = self.region
        if client_kwargs:
            options["client_kwargs"] = client_kwargs
        if self.kind in _ENDPOINT_REQUIRED:
            # as the SDK's jclouds settings for OCI (virtual-host-buckets false, signer 4); botocore's newer
            # default CRC checksums (aws-chunked uploads) are sent only where the operation requires them
            options["config_kwargs"] = {
                "s3": {"addressing_style": "path"},
                "signature_version": "s3v4",
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        return options

    def _gcs_token(self) -> Any:
        secret = self._secret.strip()
        if secret.startswith("{"):
            try:
                return orjson.loads(secret)
            except orjson.JSONDecodeError:
                raise ConfigError(
                    "cloud_storage_secret looks like JSON but does not parse", key="cloud_storage_secret"
                ) from None
        if secret and self._key:
            return {
                "type": "service_account",
                "client_email": self._key,
                "private_key": secret.replace("\\n", "\n"),
                "token_uri": _GOOGLE_TOKEN_URI,
            }
        return None  # the environment's default credentials

    def filesystem(self) -> Any:
        """The fsspec filesystem, built on first use."""
        with self._fs_lock:
            if self._fs is None:
                factory = self._fs_factory or _default_factory
                if self.kind == "azure":
                    # azure-core logs every request's URL and headers at INFO; errors still reach the log
                    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(
                        logging.WARNING
                    )
                try:
                    self._fs = factory(_PROTOCOL[self.kind], **self._storage_options())
                except ImportError as e:
                    package = _BACKEND_PACKAGE.get(self.kind, "the fsspec backend")
                    raise PermanentError(
                        f"cloud_storage_type {self.kind!r} needs the Python package {package} "
                        f"(pip install {package}): {e}"
                    ) from None
            return self._fs

    # -- upload

    def upload_file_sync(self, local_path: str | os.PathLike[str], remote_relative_path: str) -> str:
        """Upload a local file to ``remote_relative_path``; returns its public URL. Blocking."""
        source = Path(local_path)
        if not source.is_file():
            raise PermanentError(f"cannot upload {source.name!r}: no such file")
        target = self.fsspec_url(remote_relative_path)

        def attempt() -> str:
            try:
                self._put(source, target)
                return self.public_url(remote_relative_path)
            except PermanentError:
                raise
            except (PermissionError, IsADirectoryError, NotADirectoryError) as e:
                message = f"cloud storage refused {remote_relative_path!r}: {describe_exception(e)}"
                raise PermanentError(message) from None
            except Exception as e:  # network and service errors of the backends have no common base
                raise Retryable(describe_exception(e)) from e

        return call_with_retries_sync(
            attempt,
            self._retry,
            what=f"cloud storage upload of {remote_relative_path!r}",
            sleep=self._sleep,
            log=logger,
            log_message="retrying a storage upload",
            log_fields={"storage": self.kind},
        )

    def _put(self, source: Path, target: str) -> None:
        fs = self.filesystem()
        if self.kind == "local":
            # Write beside the target, then rename: the file server never serves a half-written file.
            partial = f"{target}.{uuid.uuid4().hex}.part"
            try:
                fs.put_file(str(source), partial)
                fs.mv(partial, target)
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)
        else:
            fs.put_file(str(source), target)

    async def upload_file(self, local_path: str | os.PathLike[str], remote_relative_path: str) -> str:
        """Upload a local file to ``remote_relative_path`` (in a worker thread); returns its public URL."""
        return await asyncio.to_thread(self.upload_file_sync, local_path, remote_relative_path)

    def __repr__(self) -> str:
        return f"CloudStorage(kind={self.kind!r}, container={self.container!r})"

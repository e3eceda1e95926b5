"""Cloud storage through fsspec, configured by the Scala jobs' ``cloud_storage_*`` keys.

``cloud_storage_type`` and what it means (fsspec URL of a file; credentials; public URL without an endpoint):

- ``local`` (or empty): the local directory; no credentials; ``<cloud_storage.public_base_url>/<path>``.
- ``aws`` / ``s3``: ``s3://<container>/<path>``; key and secret;
  ``https://<container>.s3.amazonaws.com/<path>``.
- ``azure``: ``az://<container>/<path>``; account name = key, account key = secret;
  ``https://<key>.blob.core.windows.net/<container>/<path>``.
- ``gcloud`` / ``gcs``: ``gs://<container>/<path>``; a service-account JSON in the secret, or client email =
  key and private key = secret (else the environment's default credentials);
  ``https://storage.googleapis.com/<container>/<path>``.

With ``cloud_storage_endpoint`` set (MinIO, Azurite, a CDN...), files are written through that endpoint and
the public URL is ``<endpoint>/<container>/<path>``. ``cloud_storage.public_base_url`` overrides the public
base of any type.

The local directory is ``cloud_storage.local.path`` (a path or a ``file://`` URL); locally the sandbox serves
its files over HTTP at ``cloud_storage.public_base_url``. With no public base, the public URL is the file's
``file://`` URL (fine for tests; content-service refuses it).

Backends are created lazily, on the first upload: a deployment without ``s3fs``/``adlfs``/``gcsfs`` gets a
clear error naming the package, and no job needs all three. fsspec calls block, so they run in a worker
thread. Credentials are never logged (``repr`` shows the type and container only).
"""

from __future__ import annotations

import asyncio
import logging
import os
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

__all__ = ["DEFAULT_LOCAL_PATH", "CloudStorage", "storage_path"]

logger = logging.getLogger(__name__)

DEFAULT_LOCAL_PATH = "/tmp/cokreat-storage"

_KINDS = {
    "": "local",
    "local": "local",
    "file": "local",
    "aws": "s3",
    "s3": "s3",
    "azure": "azure",
    "az": "azure",
    "gcloud": "gcs",
    "gcs": "gcs",
    "gcp": "gcs",
}
_BACKEND_PACKAGE = {"s3": "s3fs", "azure": "adlfs", "gcs": "gcsfs"}
_PROTOCOL = {"local": "file", "s3": "s3", "azure": "az", "gcs": "gs"}
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
        local_path: str = DEFAULT_LOCAL_PATH,
        public_base_url: str = "",
        retry: RetryPolicy | None = None,
        fs_factory: Callable[..., Any] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        normalised = _KINDS.get(kind.strip().lower())
        if normalised is None:
            raise ConfigError(
                f"cloud_storage_type {kind!r} is not supported: use local, aws (s3), azure or gcloud (gcs)"
            )
        self.kind = normalised
        self.container = container.strip().strip("/")
        if self.kind != "local" and not self.container:
            raise ConfigError(f"cloud_storage_container is required for cloud_storage_type {kind!r}")
        self.endpoint = endpoint.strip().rstrip("/")
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
        kwargs.setdefault("retry", RetryPolicy.from_config(cfg))
        return cls(
            cfg.get_str("cloud_storage_type", "local"),
            container=cfg.get_str("cloud_storage_container", ""),
            key=cfg.get_str("cloud_storage_key", ""),
            secret=cfg.get_str("cloud_storage_secret", ""),
            endpoint=cfg.get_str("cloud_storage_endpoint", ""),
            local_path=cfg.get_str("cloud_storage.local.path", DEFAULT_LOCAL_PATH),
            public_base_url=cfg.get_str("cloud_storage.public_base_url", ""),
            **kwargs,
        )

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
        if self.endpoint:
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
        if self.kind == "s3":
            options: dict[str, Any] = {}
            if self._key or self._secret:
                options.update(key=self._key, secret=self._secret)
            if self.endpoint:
                options["client_kwargs"] = {"endpoint_url": self.endpoint}
            return options
        if self.kind == "azure":
            options = {"account_name": self._key}
            if self._secret:
                options["account_key"] = self._secret
            if self.endpoint:
                options["account_host"] = urlsplit(self.endpoint).netloc or self.endpoint
            return options
        options = {}
        token = self._gcs_token()
        if token is not None:
            options["token"] = token
        if self.endpoint:
            options["endpoint_url"] = self.endpoint
        return options

    def _gcs_token(self) -> Any:
        secret = self._secret.strip()
        if secret.startswith("{"):
            try:
                return orjson.loads(secret)
            except orjson.JSONDecodeError:
                raise ConfigError("cloud_storage_secret looks like JSON but does not parse") from None
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
                factory = self._fs_factory
                if factory is None:
                    import fsspec

                    factory = fsspec.filesystem
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

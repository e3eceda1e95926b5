"""HARDENING 8: one redaction (``core/redaction.py``) on every text that leaves a job.

Each secret form below is checked on ``redact`` itself and then on every exit: a log line (message, text
field, nested field, exception), a failed-topic record (``failInfo.error`` of an event's record, with the
secret in the exception, in its cause, or given as text; a malformed record's reason), the ``importError``
that content-auto-creator writes to a content, and a metric label (the per-service gauges' group name).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cokreat_jobs.adapters.protection import ServiceProtection, registered_services
from cokreat_jobs.core.errors import PermanentError
from cokreat_jobs.core.failed import failed_event, malformed_record
from cokreat_jobs.core.logs import configure_logging, get_logger, log_event
from cokreat_jobs.core.redaction import redact, redact_data
from cokreat_jobs.jobs.content_auto_creator.processor import ContentAutoCreator
from cokreat_jobs.jobs.content_auto_creator.settings import Settings

# (name, text, the secret that must not survive)
FORMS: list[tuple[str, str, str]] = [
    # the forms the log redactor knew before
    ("cloud_storage_secret", "cloud_storage_secret=abc123x more", "abc123x"),
    ("json-secret", 'config {"cloud_storage_secret": "abc123y", "x": 1}', "abc123y"),
    ("python-repr", "{'access_token': 'tok.en1', 'x': 1}", "tok.en1"),
    ("auth-header", "Authorization: Bearer eyJhbGciOiJSUzI1.payload.sig", "eyJhbGciOiJSUzI1"),
    ("bearer", "sent Bearer abcdefghijkl to the API", "abcdefghijkl"),
    ("query-access-token", "https://h/x?access_token=zzzq1&b=1", "zzzq1"),
    ("sa-key-id", '{"type": "service_account", "private_key_id": "k1d9", "client_email": "a@b"}', "k1d9"),
    ("pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n-----END RSA PRIVATE KEY-----", "MIIEpAIB"),
    ("escaped-pem", 'cred="{\\"private_key\\": \\"-----BEGIN PRIVATE KEY-----\\\\nMIIx\\\\n\\"}"', "MIIx"),
    ("password", "password = hunter2", "hunter2"),
    # the forms it missed
    (
        "azure-connection-string",
        "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=c2VjcmV0S2V5+MTIz/NDU2==;"
        "EndpointSuffix=core.windows.net",
        "c2VjcmV0S2V5+MTIz/NDU2==",
    ),
    ("account_key", "cloud_storage.azure.account_key = akSECRET77", "akSECRET77"),
    ("account_key-json", '{"account_key": "akSECRET78", "account": "acct1"}', "akSECRET78"),
    ("secret=", "https://h/cb?client=web&secret=sVal99&x=1", "sVal99"),
    ("bare-secret", "secret=sVal98", "sVal98"),
    (
        "sas-sig",
        "GET https://acct1.blob.core.windows.net/c/b.pdf?sv=2021-08-06&se=2030-01-01T00%3A00Z&sr=b&sp=r"
        "&sig=AbC%2BdEf%2Fgh%3D answered 403",
        "AbC%2BdEf%2Fgh%3D",
    ),
    (
        "x-amz-signature",
        "https://b1.s3.amazonaws.com/k.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240101T000000Z"
        "&X-Amz-Signature=0123abcdef4567&X-Amz-SignedHeaders=host",
        "0123abcdef4567",
    ),
    ("x-amz-security-token", "X-Amz-Security-Token=FwoGZXIvYXdzEJr", "FwoGZXIvYXdzEJr"),
    ("x-goog-signature", "https://storage.googleapis.com/b/o?X-Goog-Signature=9f8e7d6c5b", "9f8e7d6c5b"),
    ("url-userinfo", "download of https://uploader:pa55word@files.test/a.pdf failed", "pa55word"),
    ("url-userinfo-bolt", "cannot reach bolt://neo4j:n3o4jpw@graph:7687", "n3o4jpw"),
    ("db_password", "db_password=hunter3", "hunter3"),
    ("neo4j_password-json", '{"neo4j_password": "hunter4"}', "hunter4"),
    ("upper-password", "NEO4J_PASSWORD=hunter5", "hunter5"),
    ("lms-password", "lms-cassandra.password: 'hunter6'", "hunter6"),
    ("id-hash-salt", "log.id_hash_salt = saltySALT42", "saltySALT42"),
]
IDS = [f[0] for f in FORMS]


@pytest.mark.parametrize(("name", "text", "secret"), FORMS, ids=IDS)
def test_redact_masks_each_form(name: str, text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out, out
    assert "***" in out
    assert redact(out) == out  # stable: redacting twice changes nothing more


def test_redact_keeps_ordinary_text() -> None:
    for text in (
        "nothing secret here: a=1",
        "cloud_storage_key=account1",  # the account name, not a secret
        "design=flat; signed=yes; config=x",
        "https://files.test/a.pdf?x=1&y=2",
        "refused address 127.0.0.1 (port 1)",
        "HTTP 404 User not found in Sunbird",
    ):
        assert redact(text) == text


def test_redact_keeps_the_non_secret_parts() -> None:
    assert redact("https://u:p@files.test/a.pdf") == "https://***@files.test/a.pdf"
    out = redact("AccountName=acct1;AccountKey=K1==;EndpointSuffix=core.windows.net")
    assert out == "AccountName=acct1;AccountKey=***;EndpointSuffix=core.windows.net"
    assert redact("?sv=1&sig=S1&se=2") == "?sv=1&sig=***&se=2"


def test_redact_data_walks_containers() -> None:
    data = {
        "url": "https://u:pw9@h/x",
        "list": ["secret=s1", 3],
        "password": "plain",
        "n": {"k": "AccountKey=z"},
    }
    out = redact_data(data)
    text = json.dumps(out)
    for secret in ("pw9", "s1", "plain", "=z"):
        assert secret not in text, text
    assert out["list"][1] == 3


# ------------------------------------------------------------------------------------------------- logs


@pytest.fixture()
def stream() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    root = logging.getLogger()
    old_level = root.level
    handler = configure_logging("DEBUG", stream=buf)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.mark.parametrize(("name", "text", "secret"), FORMS, ids=IDS)
def test_log_lines_are_redacted(stream: io.StringIO, name: str, text: str, secret: str) -> None:
    log = get_logger("exits")
    log_event(log, "INFO", f"msg {text}", note=text, detail={"steps": [text], "inner": {"why": text}})
    try:
        raise RuntimeError(text)
    except RuntimeError:
        log_event(log, "ERROR", "boom", exc_info=True)
    logging.getLogger("plain").warning("plain %s", text)
    out = stream.getvalue()
    assert out.count("\n") == 3
    assert secret not in out, out
    # each line still parses (masking never breaks the JSON)
    for line in out.splitlines():
        json.loads(line)


# ---------------------------------------------------------------------------------------- failed records


def _nested(text: str) -> BaseException:
    try:
        try:
            raise ValueError(text)
        except ValueError as inner:
            raise PermanentError("the call failed") from inner
    except PermanentError as outer:
        return outer


@pytest.mark.parametrize(("name", "text", "secret"), FORMS, ids=IDS)
def test_failed_records_are_redacted(name: str, text: str, secret: str) -> None:
    event = {"mid": "m1", "edata": {"iteration": 1}}
    for error in (RuntimeError(text), _nested(text), text):
        record = failed_event(event, "job", error, "permanent")
        assert secret not in record["failInfo"]["error"], record["failInfo"]["error"]
        assert "***" in record["failInfo"]["error"]
    malformed = malformed_record(b"not json", "job", f"not JSON: {text}", "t", 0, 1)
    assert secret not in malformed["failInfo"]["error"]


def test_failed_records_keep_the_original_event() -> None:
    # the event itself is replayed as it was: only the text the job adds is redacted
    event = {"mid": "m1", "edata": {"iteration": 1, "metadata": {"artifactUrl": "https://h/a?sig=S2"}}}
    record = failed_event(event, "job", RuntimeError("sig=S2"), "permanent")
    assert record["edata"]["metadata"]["artifactUrl"] == "https://h/a?sig=S2"
    assert "S2" not in record["failInfo"]["error"]


# ------------------------------------------------------------------------------------------- importError


class _Api:
    """Just enough of ContentApi for an event to reach its artifact download."""

    def __init__(self) -> None:
        self.contents: dict[str, dict[str, Any]] = {}
        self.on_retry: Any = None

    async def search_by_origin(self, *args: Any) -> list[dict[str, Any]]:
        return []

    async def create(self, content: dict[str, Any], channel: str) -> Any:
        from cokreat_jobs.sunbird.content_api import CreateResult

        self.contents[content["identifier"]] = {"versionKey": "1", **content}
        return CreateResult(content["identifier"], False)

    async def read(self, content_id: str, channel: str) -> dict[str, Any] | None:
        return dict(self.contents.get(content_id) or {}) or None

    async def update(self, content_id: str, content: dict[str, Any], channel: str) -> Any:
        import orjson

        from cokreat_jobs.core.response import HttpResponse

        self.contents[content_id].update(content)
        return HttpResponse(200, {}, orjson.dumps({"responseCode": "OK", "result": {}}))

    async def system_update(self, content_id: str, fields: dict[str, Any], channel: str) -> None:
        self.contents[content_id].update(fields)

    async def close(self) -> None:
        pass


class _Downloader:
    def __init__(self, message: str) -> None:
        self.message = message

    async def download(self, url: str, dest: Any, *, max_bytes: int | None = None) -> Any:
        raise PermanentError(self.message)

    async def close(self) -> None:
        pass


def _content_event() -> dict[str, Any]:
    return {
        "eid": "BE_JOB_REQUEST",
        "mid": "LP.1.redact",
        "context": {"channel": "ch_1"},
        "object": {"id": "do_red_1", "ver": "1"},
        "edata": {
            "action": "auto-create",
            "iteration": 1,
            "objectType": "Content",
            "repository": "https://source.test/do_red_1",
            "metadata": {
                "name": "A content",
                "code": "c1",
                "mimeType": "application/pdf",
                "primaryCategory": "Learning Resource",
                "artifactUrl": "https://files.test/a.pdf",
                "lastPublishedBy": "user_1",
                "identifier": "do_red_1",
            },
        },
    }


@pytest.mark.parametrize(("name", "text", "secret"), FORMS, ids=IDS)
def test_import_error_is_redacted(tmp_path: Path, name: str, text: str, secret: str) -> None:
    api = _Api()
    processor = ContentAutoCreator(
        Settings(temp_dir=str(tmp_path / "tmp")),
        api,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        _Downloader(f"download failed: {text}"),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
    )
    outcome = asyncio.run(processor.process(_content_event()))
    assert outcome.is_failed, outcome
    content = api.contents["do_red_1"]
    assert content["status"] == "Failed"
    assert secret not in content["importError"], content["importError"]
    assert "***" in content["importError"]
    assert secret not in outcome.failed_record["failInfo"]["error"]


# ------------------------------------------------------------------------------------------ metric labels


@pytest.mark.parametrize(("name", "text", "secret"), FORMS, ids=IDS)
def test_metric_labels_are_redacted(name: str, text: str, secret: str) -> None:
    # the per-service gauges are published under the registered service names: <job>.http.<service>.*
    protection = ServiceProtection(f"svc {text}", max_in_flight=1)
    try:
        labels = [n for n in registered_services() if n.startswith("svc ")]
        assert labels, registered_services()
        assert all(secret not in label for label in labels), labels
    finally:
        del protection

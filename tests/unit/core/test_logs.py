from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest

from cokreat_jobs.core.logs import configure_logging, get_logger, hash_id, log_event, redact


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    old_level = root.level
    buf = io.StringIO()
    handler = configure_logging("DEBUG", stream=buf)
    yield buf
    root.removeHandler(handler)
    root.setLevel(old_level)


def lines(buf: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in buf.getvalue().splitlines()]


def test_log_event_writes_one_json_object_a_line(stream: io.StringIO) -> None:
    log = get_logger("cokreat.test")
    log_event(
        log,
        "INFO",
        "event done",
        job="user-delete",
        mid="m1",
        object_id=hash_id("user-1"),
        outcome="success",
        duration_ms=12.5,
        skipped_field=None,
    )
    log_event(log, logging.DEBUG, "multi\nline message")
    out = lines(stream)
    assert len(out) == 2
    first = out[0]
    assert first["level"] == "INFO"
    assert first["logger"] == "cokreat.test"
    assert first["msg"] == "event done"
    assert (first["job"], first["mid"], first["outcome"], first["duration_ms"]) == (
        "user-delete",
        "m1",
        "success",
        12.5,
    )
    assert first["object_id"] == hash_id("user-1")
    assert "skipped_field" not in first
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert out[1]["msg"] == "multi\nline message"


def test_plain_logging_calls_are_json_too(stream: io.StringIO) -> None:
    logging.getLogger("plain").warning("hello %s", "world")
    assert lines(stream)[0]["msg"] == "hello world"


def test_fields_cannot_overwrite_the_line_keys(stream: io.StringIO) -> None:
    log_event(get_logger("x"), "INFO", "real", msg="fake", level="fake", detail={"a": [1]}, obj=object())
    line = lines(stream)[0]
    assert line["msg"] == "real"
    assert line["level"] == "INFO"
    assert line["field_msg"] == "fake"
    assert line["detail"] == {"a": [1]}
    assert line["obj"].startswith("<object")


def test_exceptions_are_logged_redacted(stream: io.StringIO) -> None:
    try:
        raise RuntimeError("failed with access_token=abc123")
    except RuntimeError:
        log_event(get_logger("x"), "ERROR", "boom", exc_info=True)
    line = lines(stream)[0]
    assert "RuntimeError" in line["exc"]
    assert "abc123" not in line["exc"]


def test_level_filtering(stream: io.StringIO) -> None:
    log = get_logger("quiet")
    log.setLevel(logging.WARNING)
    try:
        log_event(log, "INFO", "dropped")
        log_event(log, "ERROR", "kept")
    finally:
        log.setLevel(logging.NOTSET)
    assert [line["msg"] for line in lines(stream)] == ["kept"]


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    old_level = root.level
    h1 = configure_logging("INFO", stream=io.StringIO())
    h2 = configure_logging("WARNING", stream=io.StringIO())
    try:
        assert len(root.handlers) == before + 1
        assert h1 not in root.handlers and h2 in root.handlers
        assert root.level == logging.WARNING
    finally:
        root.removeHandler(h2)
        root.setLevel(old_level)


def test_hash_id() -> None:
    h = hash_id("user-1")
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert hash_id("user-1") == h
    assert hash_id("user-2") != h
    assert hash_id("") == "" and hash_id(None) == ""
    import hashlib

    assert h != hashlib.sha256(b"user-1").hexdigest()[:16]  # salted


def test_hash_id_with_a_deployment_salt_is_a_keyed_hash() -> None:
    import hashlib
    import hmac

    h = hash_id("user-1", salt="deploy-a-4f1c")
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert h == hmac.new(b"deploy-a-4f1c", b"user-1", hashlib.sha256).hexdigest()[:16]
    assert h == hash_id("user-1", salt="deploy-a-4f1c")  # stable: joinable across restarts and processes
    assert h != hash_id("user-1", salt="deploy-b-9e2d") and h != hash_id("user-1")
    assert hash_id("", salt="x") == "" and hash_id(None, salt="x") == ""


def test_id_hasher_reads_the_salt_from_config() -> None:
    from cokreat_jobs.core.config import load_config
    from cokreat_jobs.core.logs import IdHasher

    cfg = load_config("user-delete", overrides=["log.id_hash_salt=deploy-a-4f1c"], env={})
    hasher = IdHasher.from_config(cfg)
    assert hasher.keyed and hasher("user-1") == hash_id("user-1", salt="deploy-a-4f1c")
    # the environment sets it too (a secret mounted as a variable)
    cfg = load_config("user-delete", env={"COKREAT__LOG__ID_HASH_SALT": "deploy-b-9e2d"})
    assert IdHasher.from_config(cfg)("user-1") == hash_id("user-1", salt="deploy-b-9e2d")
    # unset (or blank): the built-in salt, the hashes of earlier versions, and the hasher says it is not keyed
    blank = load_config("user-delete", overrides=['log.id_hash_salt=""'], env={})
    for unset in (load_config("user-delete", env={}), blank):
        hasher = IdHasher.from_config(unset)
        assert not hasher.keyed and hasher("user-1") == hash_id("user-1")


# the shape of an Azure storage account key (base64 of 64 bytes); Azurite's public development key
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("cloud_storage_secret=abc123 more", "abc123"),
        ('config {"cloud_storage_secret": "abc123", "x": 1}', "abc123"),
        ("{'access_token': 'tok.en', 'x': 1}", "tok.en"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("headers={'Authorization': 'Bearer eyJhbGciOi'}", "eyJhbGciOi"),
        ("https://h/x?access_token=zzz&b=1", "zzz"),
        ('{"type": "service_account", "private_key_id": "k1d", "client_email": "a@b"}', "k1d"),
        ('cred="{\\"private_key\\": \\"-----BEGIN PRIVATE KEY-----\\\\nMII\\\\n\\"}"', "MII"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n-----END RSA PRIVATE KEY-----", "MIIEpAIB"),
        ("sent Bearer abcdefghijkl to the API", "abcdefghijkl"),
        ("password = hunter2", "hunter2"),
        # Azure storage: connection strings (adlfs, azure-storage-blob), SharedKey signatures, SAS URLs
        (f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={AZ_KEY};EndpointSuffix=x", AZ_KEY[:20]),
        (f"ValueError: connection_string={AZ_KEY}", AZ_KEY[:20]),
        (f"{{'conn_str': 'AccountName=acct;AccountKey={AZ_KEY};'}}", AZ_KEY[:20]),
        (f"Authorization: SharedKey acct:{AZ_KEY[:44]}", AZ_KEY[:40]),
        (f"request signed SharedKey acct:{AZ_KEY[:44]} refused", AZ_KEY[:40]),
        ("https://acct.blob.core.windows.net/c/a.pdf?sv=2022&sr=b&sig=AbCdEfGh%2B%3D", "AbCdEfGh"),
        # the S3 family: SigV4 headers, botocore/s3fs option reprs
        ("Credential=AKIAX/20261204/us-east-1/s3/aws4_request, Signature=0a1b2c3d4e", "0a1b2c3d4e"),
        ("{'key': 'AKIAX', 'secret': 'S3SECRETVALUE', 'client_kwargs': {}}", "S3SECRETVALUE"),
    ],
)
def test_redact_masks_secrets(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "***" in out


def test_redact_keeps_ordinary_text_and_structure() -> None:
    assert redact("nothing secret here: a=1") == "nothing secret here: a=1"
    assert redact('{"cloud_storage_secret": "abc", "x": 1}') == '{"cloud_storage_secret": "***", "x": 1}'
    assert redact("cloud_storage_key=account1") == "cloud_storage_key=account1"


def test_messages_are_redacted(stream: io.StringIO) -> None:
    log_event(get_logger("x"), "INFO", "using cloud_storage_secret=abc123", note="access_token: tok123")
    line = lines(stream)[0]
    assert "abc123" not in line["msg"]
    assert "tok123" not in line["note"]

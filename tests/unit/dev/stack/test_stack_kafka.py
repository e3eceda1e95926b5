"""The local broker's KRaft cluster id never reads as an option to Kafka's storage tool."""

from __future__ import annotations

import uuid

import pytest

from cokreat_jobs.dev.stack import kafka


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 as the first byte encodes to '-' in URL-safe base64: the first draw must be refused
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x10" * 16)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cid = kafka.new_cluster_id()
    assert not cid.startswith("-") and len(cid) == 22
    assert cid == "EBAQEBAQEBAQEBAQEBAQEA"

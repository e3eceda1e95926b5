"""The poison scenario's hostile records, through user-delete's operators in memory (flink/testing.py): each
kind ends in the failed topic exactly once with the reason the scenario checks (`EXPECTED_REASON`), found the
way the scenario finds it (by Kafka coordinates for raw-text records, by mid for events), so that the number
kinds are counted failed with a reason, never lost, and none raises out of an operator."""

from __future__ import annotations

from collections import Counter

from cokreat_jobs.core.config import load_config
from cokreat_jobs.dev.chaos.batches import EXPECTED_REASON, HOSTILE_KINDS, failed_kind, make_batch
from cokreat_jobs.flink.testing import PipelineDriver, kafka_row
from cokreat_jobs.jobs.user_delete.job import DEFINITION
from cokreat_jobs.ops.replay import decide


def test_each_hostile_kind_fails_once_with_its_reason() -> None:
    batch = make_batch("poison-unit", 0, hostile_fraction=1.0)
    # no users: only the hostile records, one of each kind
    assert sorted(batch.hostile.values()) == sorted(HOSTILE_KINDS)
    rows = [kafka_row(value, topic="in", offset=i) for i, (_, value) in enumerate(batch.records)]
    cfg = load_config("user-delete", overrides=["program-service-baseUrl=http://127.0.0.1:1"], env={})
    result = PipelineDriver(DEFINITION, cfg).run(rows)

    assert result.counts["total"] == result.counts["failed"] == len(HOSTILE_KINDS)
    found: Counter[str] = Counter()
    for record in result.failed:
        if "raw" in record:
            kind = batch.hostile[record["source"]["offset"]]
        else:
            kind = failed_kind(record)
            assert kind is not None, record
            # no count of replays in it: replay leaves it for a person rather than looping on it
            assert decide(record, "user-delete", 3)[0] != "move" or kind == "wrong-types"
        assert record["failInfo"]["reason"] == EXPECTED_REASON[kind], (kind, record["failInfo"])
        found[kind] += 1
    assert found == Counter(HOSTILE_KINDS)

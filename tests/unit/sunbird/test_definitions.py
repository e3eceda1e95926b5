"""Definitions: packaged default, local directory, HTTP URL, cache TTL, stale on failure, errors."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from cokreat_jobs.core.config import load_config
from cokreat_jobs.core.errors import PermanentError
from cokreat_jobs.sunbird.definitions import DefinitionLoader, definition_folder, packaged_schemas_dir

REFERENCE = Path(__file__).parents[3].parent / "shared/reference/schemas"


def test_folder_name() -> None:
    assert (
        definition_folder("QuestionSetImage") == "questionset" and definition_folder("Question") == "question"
    )


def test_packaged_default_matches_the_reference() -> None:
    cfg = load_config("auto-creator-v2", env={})
    loader = DefinitionLoader.from_config(cfg)
    assert loader.base == str(packaged_schemas_dir())
    qs = asyncio.run(loader.get("QuestionSet"))
    assert qs.external_table == "questionset_hierarchy" and qs.primary_key == ("identifier",)
    assert set(qs.relations) == {"children", "collection"}
    assert set(qs.external_props) == {"hierarchy", "instructions", "outcomeDeclaration"}
    assert "timeLimits" in qs.object_props and "name" not in qs.object_props
    q = asyncio.run(loader.get("QuestionImage"))
    assert q.external_table == "question_data" and q.external_type("body") == "blob"
    if REFERENCE.is_dir():
        for kind in ("question", "questionset"):
            for name in ("schema.json", "config.json"):
                ours = json.loads((packaged_schemas_dir() / kind / "1.0" / name).read_text())
                assert ours == json.loads((REFERENCE / kind / "1.0" / name).read_text())


def test_local_dir_cache_ttl_and_stale(tmp_path: Path) -> None:
    shutil.copytree(packaged_schemas_dir(), tmp_path / "s")
    now = [0.0]
    loader = DefinitionLoader(str(tmp_path / "s"), {"question": "1.0"}, ttl_s=10, clock=lambda: now[0])

    async def go() -> None:
        a = await loader.get("Question")
        cfg_path = tmp_path / "s/question/1.0/config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["external"]["tableName"] = "changed"
        cfg_path.write_text(json.dumps(cfg))
        assert (await loader.get("Question")) is a  # cached
        now[0] = 11
        assert (await loader.get("Question")).external_table == "changed"
        now[0] = 30
        shutil.rmtree(tmp_path / "s/question")
        assert (await loader.get("Question")).external_table == "changed"  # stale beats nothing
        with pytest.raises(PermanentError, match="no definition file"):
            await loader.get("Content")

    asyncio.run(go())


def test_http_base_path(tmp_path: Path) -> None:
    from cokreat_jobs.dev.sandbox.server import ServerThread

    storage = tmp_path / "storage"
    shutil.copytree(packaged_schemas_dir(), storage / "schemas")
    server = ServerThread(tmp_path / "sb", {"storage_dir": str(storage)}).start()
    try:
        cfg = load_config(
            "auto-creator-v2",
            overrides=[f"schema.basePath={server.base_url}/_files/schemas", "http.retry.max_attempts=1"],
            env={},
        )

        async def go() -> None:
            loader = DefinitionLoader.from_config(cfg)
            try:
                assert loader.is_http
                assert (await loader.get("QuestionSet")).external_table == "questionset_hierarchy"
                with pytest.raises(PermanentError, match="HTTP 404"):
                    await loader.get("Content")
            finally:
                await loader.close()

        asyncio.run(go())
    finally:
        server.stop()

"""`cokreat-jobs hash-id`: the hash user-delete logs for an id, so an operator can find that user's lines."""

from __future__ import annotations

from click.testing import CliRunner

from cokreat_jobs.cli.main import main


def test_hash_id_prints_the_hash_user_delete_logs() -> None:
    from cokreat_jobs.core.logs import hash_id

    salted = CliRunner().invoke(main, ["hash-id", "--set", "log.id_hash_salt=deploy-a-4f1c", "u-1", "u-2"])
    assert salted.exit_code == 0, salted.output
    assert (
        salted.stdout == f"{hash_id('u-1', salt='deploy-a-4f1c')}\n{hash_id('u-2', salt='deploy-a-4f1c')}\n"
    )
    piped = CliRunner().invoke(main, ["hash-id", "--set", "log.id_hash_salt=deploy-a-4f1c"], input="u-1\n")
    assert piped.stdout == f"{hash_id('u-1', salt='deploy-a-4f1c')}\n"
    unset = CliRunner().invoke(main, ["hash-id", "u-1"], env={"COKREAT__LOG__ID_HASH_SALT": ""})
    assert unset.stdout == f"{hash_id('u-1')}\n" and "not set" in unset.stderr

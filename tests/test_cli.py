"""The `intake` command, run as a user would run it."""

from __future__ import annotations

import sqlalchemy as sa

from service.settings import Settings, default_data_dir
from tests.support.cli import run_intake
from tests.support.database import database_engine, query_rows, query_scalar


def test_db_upgrade_then_keys_create_prints_the_key_alone_on_the_last_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run_intake("db", "upgrade", database_url=url).returncode == 0
    made = run_intake("keys", "create", "--role", "analyst", "--name", "Test unit", database_url=url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("isk_") and " " not in key
    stored = query_scalar(url, "SELECT secret_sha256 FROM api_key")
    assert key.split("_", 2)[2] not in stored  # only the hash is kept
    listed = run_intake("keys", "list", database_url=url)
    assert "analyst" in listed.stdout and key not in listed.stdout


def test_an_unknown_role_is_refused(tmp_path):
    result = run_intake(
        "keys", "create", "--role", "superuser", "--name", "x", database_url=f"sqlite:///{tmp_path}/x.db"
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_db_purge_deletes_only_idempotency_records_past_their_retention(tmp_path):
    url = f"sqlite:///{tmp_path / 'purge.db'}"
    assert run_intake("db", "upgrade", database_url=url).returncode == 0
    with database_engine(url) as engine, engine.begin() as connection:
        for scope, age_hours in [("old", 48), ("recent", 1)]:
            connection.execute(
                sa.text(
                    "INSERT INTO idempotency_record (scope, key_sha256, request_sha256, status_code, response_sealed, "
                    "created_at) VALUES (:scope, 'k', 'r', 201, x'00', datetime('now', :age))"
                ),
                {"scope": scope, "age": f"-{age_hours} hours"},
            )
    result = run_intake("db", "purge", database_url=url)
    assert result.returncode == 0, result.stderr
    assert "deleted 1" in result.stdout
    assert [row.scope for row in query_rows(url, "SELECT scope FROM idempotency_record")] == ["recent"]


def test_keys_revoke_takes_the_whole_key_and_never_prints_its_secret(tmp_path):
    url = f"sqlite:///{tmp_path / 'revoke.db'}"
    assert run_intake("db", "upgrade", database_url=url).returncode == 0
    key = run_intake("keys", "create", "--role", "submitter", "--name", "x", database_url=url).stdout.split()[-1]
    revoked = run_intake("keys", "revoke", key, database_url=url)
    assert revoked.returncode == 0, revoked.stderr
    key_id, secret = key.split("_")[1], key.split("_", 2)[2]
    assert f"revoked key {key_id}" in revoked.stdout
    assert secret not in revoked.stdout + revoked.stderr
    again = run_intake("keys", "revoke", key_id, database_url=url)
    assert again.returncode == 1 and secret not in again.stderr


def test_every_command_says_which_database_it_uses(tmp_path):
    url = f"sqlite:///{tmp_path / 'which.db'}"
    listed = run_intake("keys", "list", database_url=url)
    assert listed.stderr.splitlines()[0] == f"intake: database {url}"


def test_the_data_folder_is_one_absolute_place_whatever_folder_the_cli_runs_in(tmp_path, monkeypatch):
    assert default_data_dir().is_absolute()
    monkeypatch.delenv("INTAKE_DATA_DIR", raising=False)
    assert Settings().data_dir == default_data_dir()  # not var/ of whatever folder this runs in
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == default_data_dir()
    assert Settings(data_dir="relative").data_dir == tmp_path / "relative"  # resolved once, from where it started

"""The `intake` command, run as a user would run it."""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.cli import intake


def test_db_upgrade_then_keys_create_prints_the_key_alone_on_the_last_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert intake("db", "upgrade", database_url=url).returncode == 0
    made = intake("keys", "create", "--role", "analyst", "--name", "Test unit", database_url=url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("isk_") and " " not in key
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT secret_sha256 FROM api_key")).scalar_one()
    engine.dispose()
    assert key.split("_", 2)[2] not in stored  # only the hash is kept
    listed = intake("keys", "list", database_url=url)
    assert "analyst" in listed.stdout and key not in listed.stdout


def test_an_unknown_role_is_refused(tmp_path):
    result = intake("keys", "create", "--role", "superuser", "--name", "x", database_url=f"sqlite:///{tmp_path}/x.db")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_db_purge_deletes_only_idempotency_records_past_their_retention(tmp_path):
    url = f"sqlite:///{tmp_path / 'purge.db'}"
    assert intake("db", "upgrade", database_url=url).returncode == 0
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for scope, age_hours in [("old", 48), ("recent", 1)]:
            connection.execute(
                sa.text(
                    "INSERT INTO idempotency_record (scope, key_sha256, request_sha256, status_code, response_sealed, "
                    "created_at) VALUES (:scope, 'k', 'r', 201, x'00', datetime('now', :age))"
                ),
                {"scope": scope, "age": f"-{age_hours} hours"},
            )
    result = intake("db", "purge", database_url=url)
    assert result.returncode == 0, result.stderr
    assert "deleted 1" in result.stdout
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT scope FROM idempotency_record")).scalars().all() == ["recent"]
    engine.dispose()

"""`intake maintenance`: the routine jobs in one round, on a schedule, one replica at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from service.app import object_store
from service.cli import upgrade_database
from service.maintenance import MAINTENANCE_LOCK_KEY, run_maintenance
from service.settings import Settings
from service.storage.database import create_database_engine
from service.storage.models import IdempotencyRecord, utc_now
from tests.support.cli import run_intake
from tests.support.database import count_rows


def store_old_idempotency_record(engine, days_old: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(IdempotencyRecord.__table__),
            {
                "scope": "maintenance-test",
                "key_sha256": f"{days_old:064d}",
                "request_sha256": "0" * 64,
                "status_code": 201,
                "response_sealed": b"",
                "created_at": utc_now() - timedelta(days=days_old),
            },
        )


@pytest.mark.postgres
def test_one_replica_runs_a_round_while_the_others_skip_it(postgres_server, tmp_path):
    database_url = postgres_server.create_database("intake_maintenance")
    upgrade_database(database_url)
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    engine = create_database_engine(database_url)
    store_old_idempotency_record(engine, days_old=3)
    other_replica = create_database_engine(database_url)
    with other_replica.connect() as running:
        running.execute(sa.select(sa.func.pg_advisory_lock(MAINTENANCE_LOCK_KEY)))
        assert run_maintenance(settings, engine, object_store(settings, engine)) is None
        assert count_rows(engine, "idempotency_record") == 1  # nothing done beside a round under way
        running.execute(sa.select(sa.func.pg_advisory_unlock(MAINTENANCE_LOCK_KEY)))
    report = run_maintenance(settings, engine, object_store(settings, engine))
    assert report is not None and report.idempotency_records_purged == 1
    assert count_rows(engine, "idempotency_record") == 0
    for each in (engine, other_replica):
        each.dispose()


def test_the_command_runs_every_job_and_says_what_each_did(tmp_path):
    settings = Settings(data_dir=tmp_path)
    upgrade_database(settings.resolved_database_url)
    engine = create_database_engine(settings.resolved_database_url)
    store_old_idempotency_record(engine, days_old=2)
    store_old_idempotency_record(engine, days_old=0)
    result = run_intake(
        "maintenance",
        environment={"INTAKE_DATA_DIR": str(tmp_path), "INTAKE_DATABASE_URL": "", "INTAKE_SWEEP_GRACE": "PT0S"},
    )
    assert result.returncode == 0, result.stderr
    assert "idempotency records purged: 1" in result.stdout
    assert "closed cases past retention: 0" in result.stdout
    assert count_rows(engine, "idempotency_record") == 1
    engine.dispose()


def test_a_schedule_that_is_not_a_duration_is_refused_in_words(tmp_path):
    result = run_intake("maintenance", "--every", "hourly", environment={"INTAKE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "not a duration; for example PT1H" in result.stderr

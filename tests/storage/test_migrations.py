"""Migrations give exactly the models' schema on both databases; the audit log is append-only."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import service.storage.models  # noqa: F401
from tests.conftest import BACKENDS, fresh_database_url


@pytest.fixture(params=BACKENDS)
def migrated_url(request, tmp_path_factory) -> str:
    return fresh_database_url(request.param, request, tmp_path_factory)


def test_upgrade_head_on_an_empty_database_matches_the_models(migrated_url):
    engine = sa.create_engine(migrated_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_audit_rows_can_be_added_but_never_changed_or_removed(migrated_url):
    engine = sa.create_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO audit_event (at, actor, action) VALUES (CURRENT_TIMESTAMP, 'k', 'x')"))
    for statement in ["UPDATE audit_event SET action = 'y'", "DELETE FROM audit_event"]:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text(statement))
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT action FROM audit_event")).scalars().all() == ["x"]
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_cases_stored_before_flag_rows_existed_get_them_on_upgrade(backend, request, tmp_path_factory):
    from alembic import command

    from service.cli import alembic_config

    if backend == "postgres":
        url = request.getfixturevalue("postgres_server").create_database(f"flags_{uuid.uuid4().hex[:8]}")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('flags') / 'f.db'}"
    command.upgrade(alembic_config(url), "0002")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO "case" (reference, reporter_token_sha256, status, priority, flags, next_steps, '
                "submission, "
                "created_at, updated_at) VALUES ('AAAA-AAAA-AAAA', 'h', 'received', 'urgent', "
                """'[{"code": "under_18", "reason": "r"}, {"code": "self_harm_risk", "reason": "r"}]', '[]', '{}', """
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    command.upgrade(alembic_config(url), "head")
    with engine.connect() as connection:
        codes = connection.execute(sa.text("SELECT code FROM case_flag ORDER BY code")).scalars().all()
    engine.dispose()
    assert codes == ["self_harm_risk", "under_18"]

"""Migrations give exactly the models' schema on both databases; the audit log is append-only."""

from __future__ import annotations

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

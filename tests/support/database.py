"""Reading a test database directly: one engine helper, one row count, one audit query, test keys.

Each takes a database URL (an engine is opened and disposed around the call) or an app's own engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.storage.database import create_database_engine, session_scope
from service.storage.keys import create_api_key


@contextmanager
def database_engine(database: str | Engine) -> Iterator[Engine]:
    """An engine on `database`: the one given, or a new one on a URL, disposed afterwards."""
    if isinstance(database, Engine):
        yield database
        return
    engine = create_database_engine(database)
    try:
        yield engine
    finally:
        engine.dispose()


def query_rows(database: str | Engine, sql: str, **parameters: Any) -> list[sa.Row]:
    with database_engine(database) as engine, engine.connect() as connection:
        return list(connection.execute(sa.text(sql), parameters))


def query_scalar(database: str | Engine, sql: str, **parameters: Any) -> Any:
    with database_engine(database) as engine, engine.connect() as connection:
        return connection.execute(sa.text(sql), parameters).scalar_one()


def count_rows(database: str | Engine, table: str, where: str = "", **parameters: Any) -> int:
    """Rows of `table` (quoted, so "case" works) that match the optional SQL condition `where`."""
    condition = f" WHERE {where}" if where else ""
    statement = f'SELECT count(*) FROM "{table}"{condition}'  # noqa: S608 - names and conditions come from tests
    return query_scalar(database, statement, **parameters)


def audit_events(database: str | Engine, reference: str) -> list[sa.Row]:
    """The audit rows of one case, oldest first: action, actor, reason."""
    return query_rows(
        database,
        'SELECT a.action, a.actor, a.reason FROM audit_event a JOIN "case" c ON c.id = a.case_id '
        "WHERE c.reference = :reference ORDER BY a.id",
        reference=reference,
    )


def create_key(database: str | Engine, role: str, name: str, **options: Any) -> str:
    """A new API key's plaintext (options as create_api_key takes them: forces, origins, ...)."""
    with database_engine(database) as engine, session_scope(engine) as session:
        return create_api_key(session, role, name, **options)[1]


@dataclass(frozen=True)
class Keys:
    submitter: str
    other_submitter: str
    analyst: str
    admin: str


def make_keys(database: str | Engine) -> Keys:
    """One key for each kind of caller the tests play."""
    roles = {"submitter": "submitter", "other_submitter": "submitter", "analyst": "analyst", "admin": "admin"}
    with database_engine(database) as engine:
        return Keys(**{name: create_key(engine, role, f"test {name}") for name, role in roles.items()})

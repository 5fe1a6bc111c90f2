"""Engine and sessions. One engine per app; one session per request, closed when it ends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

# orjson reads and writes the JSON columns several times faster than the standard library.
_JSON = {"json_serializer": lambda value: orjson.dumps(value).decode(), "json_deserializer": orjson.loads}


def create_database_engine(url: str, pool_size: int = 5, max_overflow: int = 5) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            _owner_only_sqlite_files(Path(database))
        # hide_parameters: SQL errors must never carry what a victim typed into the logs.
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True, **_JSON
        )
        sa.event.listen(engine, "connect", _configure_sqlite)
        return engine
    # pre-ping: after a database restart the pool hands out live connections, not dead ones.
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_timeout=10,
        hide_parameters=True,
        **_JSON,
    )


def _owner_only_sqlite_files(database: Path) -> None:
    """The database holds victims' accounts: only the service's own user may read it.

    SQLite creates the -wal and -shm files with the database file's permissions, so making the
    database owner-only before the first connection covers them too; files an older version left
    readable by others are narrowed as well.
    """
    if not database.parent.exists():
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Only ever create, never open an existing file: closing any descriptor of a database file drops
    # every POSIX lock this process holds on it, which would break SQLite's locking under live connections.
    with suppress(FileExistsError):
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")):
        with suppress(FileNotFoundError):
            os.chmod(path, 0o600)


def _configure_sqlite(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def is_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False

"""The embedded SQLite database holds victims' accounts: its files are for the service's user alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa

from service.cli import upgrade_database
from service.storage.database import create_database_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_wal_and_shm_files_are_owner_only(tmp_path):
    previous = os.umask(0o022)  # the usual umask: files readable by everyone unless we say otherwise
    try:
        database = tmp_path / "var" / "intake.db"
        url = f"sqlite:///{database}"
        upgrade_database(url)
        engine = create_database_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            connection.execute(sa.text("INSERT INTO probe VALUES (1)"))
        with engine.connect() as connection:  # held open, so the -wal and -shm files exist
            connection.execute(sa.text("SELECT count(*) FROM probe")).scalar_one()
            files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
            assert all(path.exists() for path in files)
            assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        engine.dispose()
        assert mode(database.parent) & 0o077 == 0  # the folder it made is the owner's alone too
    finally:
        os.umask(previous)


def test_a_database_left_readable_by_an_older_version_is_narrowed(tmp_path):
    database = tmp_path / "intake.db"
    url = f"sqlite:///{database}"
    upgrade_database(url)
    os.chmod(database, 0o644)
    engine = create_database_engine(url)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
        assert mode(database) == 0o600
        assert mode(Path(f"{database}-shm")) == 0o600
    engine.dispose()

"""Building the service for a test: fresh databases, settings, an app with its client, a live process."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devsupport.postgres import PostgresServer
from devsupport.s3 import CREDENTIALS, S3Server
from devsupport.servers import UNLIMITED, UNLIMITED_ENVIRONMENT, start_service
from service.app import create_app
from service.cli import alembic_config, upgrade_database
from service.settings import Settings
from tests.support.database import Keys, make_keys

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]
STORES = [pytest.param("local", id="local"), pytest.param("s3", id="s3")]

_unique_names = itertools.count()


def unique_name(prefix: str) -> str:
    """A database or bucket name no other test in this run uses."""
    return f"{prefix}_{next(_unique_names)}"


def database_at(revision: str, backend: str, request: pytest.FixtureRequest, tmp_path_factory) -> str:
    """A new database migrated up to `revision` only: old rows go in, then a test upgrades past them."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database(unique_name("intake"))
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'intake.db'}"
    command.upgrade(alembic_config(url), revision)
    return url


def fresh_database_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory) -> str:
    """An empty database with every migration applied."""
    return database_at("head", backend, request, tmp_path_factory)


def evidence_settings_for(store: str, database_url: str, data_dir: Path, request, **overrides) -> Settings:
    """Settings for an app whose evidence goes to a local folder or to S3 over HTTP (moto)."""
    extra: dict = {}
    if store == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        extra = {
            "evidence_store": "s3",
            "s3_endpoint_url": server.endpoint,
            "s3_bucket": unique_name("evidence").replace("_", "-"),
            "s3_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "s3_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "s3_server_side_encryption": "AES256",
            "s3_create_bucket": True,
        }
    return Settings(data_dir=data_dir, database_url=database_url, **{**UNLIMITED, **extra, **overrides})


@contextmanager
def built_app(settings: Settings, *, migrate: bool = False) -> Iterator[FastAPI]:
    """The app for `settings` (its database migrated first if asked), its engine disposed afterwards."""
    if migrate:
        upgrade_database(settings.resolved_database_url)
    app = create_app(settings)
    try:
        yield app
    finally:
        app.state.engine.dispose()


@contextmanager
def app_client(
    app_or_settings: FastAPI | Settings, *, migrate: bool = True, raise_server_exceptions: bool = False
) -> Iterator[TestClient]:
    """A started TestClient on an app; given settings, on the app built for them (its database migrated
    first unless told not to), which is disposed afterwards."""
    with ExitStack() as stack:
        app = app_or_settings
        if isinstance(app, Settings):
            app = stack.enter_context(built_app(app, migrate=migrate))
        yield stack.enter_context(TestClient(app, raise_server_exceptions=raise_server_exceptions))


@contextmanager
def running_service(database_url: str, data_dir: Path, **environment: str) -> Iterator[tuple[str, Keys]]:
    """`intake serve` in its own process on a migrated database with test keys; its log is data_dir/server.log."""
    upgrade_database(database_url)
    keys = make_keys(database_url)
    settings = {"INTAKE_DATABASE_URL": database_url, "INTAKE_DATA_DIR": str(data_dir), **UNLIMITED_ENVIRONMENT}
    process, base = start_service({**settings, **environment}, data_dir / "server.log")
    try:
        yield base, keys
    finally:
        process.terminate()
        process.wait(timeout=10)

"""Fixtures build real things: a SQLite file, a real PostgreSQL server, the real app over HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devsupport.postgres import PostgresServer
from service.app import create_app
from service.cli import upgrade_database
from service.settings import Settings
from service.storage.database import create_database_engine, session_scope
from service.storage.keys import create_api_key

_database_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


def fresh_database_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory) -> str:
    """An empty database with every migration applied."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database(f"intake_{next(_database_names)}")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'intake.db'}"
    upgrade_database(url)
    return url


BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> str:
    return fresh_database_url(request.param, request, tmp_path_factory)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"), database_url=database_url)


@pytest.fixture(scope="session")
def app(settings: Settings):
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass(frozen=True)
class Keys:
    submitter: str
    other_submitter: str
    analyst: str
    admin: str


@pytest.fixture(scope="session")
def keys(settings: Settings) -> Keys:
    engine = create_database_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        made = {
            name: create_api_key(session, role, f"test {name}")[1]
            for name, role in [
                ("submitter", "submitter"),
                ("other_submitter", "submitter"),
                ("analyst", "analyst"),
                ("admin", "admin"),
            ]
        }
    engine.dispose()
    return Keys(**made)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


MINIMAL_CASE = {
    "reporter": {"relationship": "self"},
    "account": "Synthetic account: a stranger on a video call recorded me and now asks for money.",
}


@pytest.fixture
def new_case(client: TestClient, keys: Keys):
    """Create a case through the API and give back its 201 body."""

    def create(**fields) -> dict:
        response = client.post("/v1/cases", json={**MINIMAL_CASE, **fields}, headers=bearer(keys.submitter))
        assert response.status_code == 201, response.text
        return response.json()

    return create


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent

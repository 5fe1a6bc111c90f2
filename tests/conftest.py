"""Fixtures build real things: a SQLite file, a real PostgreSQL server, the real app over HTTP.

Helpers that are not fixtures live in tests/support/.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import time_machine
from fastapi.testclient import TestClient

from devsupport.postgres import PostgresServer
from devsupport.redis import RedisServer
from devsupport.s3 import S3Server
from devsupport.servers import LINK_SECRET, UNLIMITED
from service.settings import Settings
from tests.support.apps import BACKENDS, STORES, app_client, built_app, evidence_settings_for, fresh_database_url
from tests.support.cases import MINIMAL_CASE, synthetic_content_dir
from tests.support.database import Keys, create_key, make_keys
from tests.support.http import bearer

# Every app a test builds signs with the one secret its servers share (the service refuses to start
# without one); the tests of that refusal give their own settings.
os.environ.setdefault("INTAKE_LINK_SECRET", LINK_SECRET)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> str:
    return fresh_database_url(request.param, request, tmp_path_factory)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=database_url,
        content_dir=synthetic_content_dir(tmp_path_factory.mktemp("content")),
        **UNLIMITED,
    )


@pytest.fixture(scope="session")
def app(settings: Settings):
    with built_app(settings) as application:
        yield application


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:
    with app_client(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def keys(settings: Settings) -> Keys:
    return make_keys(settings.resolved_database_url)


@pytest.fixture
def new_case(client: TestClient, keys: Keys):
    """Create a case through the API and give back its 201 body."""

    def create(**fields) -> dict:
        response = client.post("/v1/cases", json={**MINIMAL_CASE, **fields}, headers=bearer(keys.submitter))
        assert response.status_code == 201, response.text
        return response.json()

    return create


@pytest.fixture
def scoped_key(settings: Settings):
    """Make an analyst key that sees only the given police forces' cases."""

    def make(*forces: str) -> str:
        return create_key(settings.resolved_database_url, "analyst", "scoped test analyst", forces=list(forces))

    return make


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=STORES)
def evidence_app(request, database_url: str, tmp_path_factory):
    """An app on its own database of the same kind, so that each store's rows and objects match."""
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    own_database = fresh_database_url(backend, request, tmp_path_factory)
    settings = evidence_settings_for(request.param, own_database, tmp_path_factory.mktemp("ev"), request)
    with built_app(settings) as application:
        yield application


@pytest.fixture(scope="session")
def evidence_client(evidence_app) -> Iterator[TestClient]:
    with app_client(evidence_app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def evidence_keys(evidence_app) -> Keys:
    return make_keys(evidence_app.state.settings.resolved_database_url)


@pytest.fixture(scope="session")
def child_analyst_key(evidence_app) -> str:
    return create_key(
        evidence_app.state.settings.resolved_database_url,
        "analyst",
        "test child-evidence analyst",
        can_view_child_evidence=True,
    )


@pytest.fixture
def one_rate_window() -> Iterator[None]:
    """The test starts a second into a fresh minute, the clock running. Limits are sliding window counters:
    the last window's count is weighed by how much of it is still in view, so a limit filled just before a
    minute turns lets the next request through, and a test expecting it refused fails on a busy machine."""
    with time_machine.travel((time.time() // 60 + 1) * 60 + 1, tick=True):
        yield

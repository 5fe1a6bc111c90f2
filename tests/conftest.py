"""Fixtures build real things: a SQLite file, a real PostgreSQL server, the real app over HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devsupport.postgres import PostgresServer
from devsupport.s3 import CREDENTIALS, S3Server
from devsupport.servers import UNLIMITED, UNLIMITED_ENVIRONMENT, start_service
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


# Forces a test deployment adds (content/police-forces.yaml), so each test can file cases under a force
# of its own in a database shared by the session: a slug not on the list is refused.
_SYNTHETIC_FORCES = 2000
_synthetic_force_numbers = itertools.count()


def unique_force() -> str:
    return f"synthetic-force-{next(_synthetic_force_numbers) % _SYNTHETIC_FORCES}"


def synthetic_content_dir(folder: Path) -> Path:
    (folder / "guidance").mkdir(parents=True, exist_ok=True)
    (folder / "police-forces.yaml").write_text(
        "".join(
            f"- {{slug: synthetic-force-{n}, name: Synthetic Force {n}, nation: England}}\n"
            for n in range(_SYNTHETIC_FORCES)
        )
    )
    return folder


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
    return make_keys(settings.resolved_database_url)


def make_keys(database_url: str) -> Keys:
    engine = create_database_engine(database_url)
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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


def evidence_settings_for(store: str, database_url: str, data_dir: Path, request, **overrides) -> Settings:
    """Settings for an app whose evidence goes to a local folder or to S3 over HTTP (moto)."""
    extra: dict = {}
    if store == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        extra = {
            "evidence_store": "s3",
            "s3_endpoint_url": server.endpoint,
            "s3_bucket": f"evidence-{next(_database_names)}",
            "s3_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "s3_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "s3_server_side_encryption": "AES256",
            "s3_create_bucket": True,
        }
    return Settings(data_dir=data_dir, database_url=database_url, **{**UNLIMITED, **extra, **overrides})


STORES = [pytest.param("local", id="local"), pytest.param("s3", id="s3")]


@pytest.fixture(scope="session", params=STORES)
def evidence_app(request, database_url: str, tmp_path_factory):
    """An app on its own database of the same kind, so that each store's rows and objects match."""
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    own_database = fresh_database_url(backend, request, tmp_path_factory)
    settings = evidence_settings_for(request.param, own_database, tmp_path_factory.mktemp("ev"), request)
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="session")
def evidence_client(evidence_app) -> Iterator[TestClient]:
    with TestClient(evidence_app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def evidence_keys(evidence_app) -> Keys:
    return make_keys(evidence_app.state.settings.resolved_database_url)


@pytest.fixture(scope="session")
def child_analyst_key(evidence_app) -> str:
    engine = create_database_engine(evidence_app.state.settings.resolved_database_url)
    with session_scope(engine) as session:
        key = create_api_key(session, "analyst", "test child-evidence analyst", can_view_child_evidence=True)[1]
    engine.dispose()
    return key


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

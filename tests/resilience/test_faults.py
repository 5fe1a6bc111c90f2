"""Faults: the database and the evidence store go away under load, and come back.

An acknowledged report must never be lost, and a victim reporting during an outage gets a clear
"try again shortly" (503 problem+json with Retry-After), never an error page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from devsupport.postgres import PostgresServer
from devsupport.s3 import S3Server
from devsupport.servers import UNLIMITED_ENVIRONMENT, start_service
from service.cli import upgrade_database
from tests.support.apps import app_client, built_app, evidence_settings_for, fresh_database_url
from tests.support.cases import MINIMAL_CASE
from tests.support.database import count_rows, make_keys, query_rows
from tests.support.http import bearer
from tests.support.report_form import MINIMAL, form_token, send
from tests.support.synthetic import png

pytestmark = [pytest.mark.faults]


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class SteadyReporters:
    """Clients posting reports one after another, each with its own Idempotency-Key, keeping every answer."""

    def __init__(self, base: str, key: str, clients: int = 4) -> None:
        self.base = base
        self.key = key
        self.acknowledged: list[str] = []
        self.unavailable: list[httpx.Response] = []
        self.unexpected: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._report, args=(n,)) for n in range(clients)]

    def __enter__(self) -> SteadyReporters:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _report(self, client_number: int) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            sent = 0
            while not self._stop.is_set():
                sent += 1
                headers = {**bearer(self.key), "Idempotency-Key": f"steady-{client_number}-{sent}"}
                try:
                    response = http.post("/v1/cases", json=MINIMAL_CASE, headers=headers)
                except httpx.TransportError as error:
                    self.unexpected.append(f"transport error: {error!r}")
                    continue
                if response.status_code == 201:
                    self.acknowledged.append(response.json()["reference"])
                elif response.status_code == 503:
                    self.unavailable.append(response)
                    time.sleep(0.05)
                else:
                    self.unexpected.append(f"{response.status_code}: {response.text[:300]}")


@pytest.mark.postgres
def test_every_acknowledged_report_survives_a_database_restart_and_the_service_recovers_by_itself(tmp_path):
    with PostgresServer() as postgres:
        database_url = postgres.create_database("faults")
        upgrade_database(database_url)
        keys = make_keys(database_url)
        environment = {
            "INTAKE_DATABASE_URL": database_url,
            "INTAKE_DATA_DIR": str(tmp_path / "data"),
            **UNLIMITED_ENVIRONMENT,
        }
        process, base = start_service(environment, tmp_path / "server.log")
        try:
            with SteadyReporters(base, keys.submitter) as reporters:
                wait_until(lambda: len(reporters.acknowledged) >= 20, 30, "reports before the outage")
                postgres.pg_ctl("stop")
                ready = httpx.get(base + "/readyz", timeout=10)
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"] == "unreachable"
                wait_until(lambda: len(reporters.unavailable) >= 5, 30, "refusals during the outage")
                during_outage = len(reporters.acknowledged)
                postgres.pg_ctl("start")
                # The same process, not restarted: the pool finds its dead connections and replaces them.
                wait_until(lambda: httpx.get(base + "/readyz", timeout=10).status_code == 200, 30, "readiness")
                wait_until(lambda: len(reporters.acknowledged) >= during_outage + 20, 30, "reports after the outage")
        finally:
            process.terminate()
            process.wait(timeout=10)

        assert reporters.unexpected == []
        for refusal in reporters.unavailable:
            assert refusal.headers["content-type"] == "application/problem+json"
            assert int(refusal.headers["retry-after"]) > 0
            assert "try again" in refusal.json()["detail"]
        stored = {row.reference for row in query_rows(database_url, 'SELECT reference FROM "case"')}
        acknowledged = set(reporters.acknowledged)
        print(f"{len(acknowledged)} acknowledged, {len(reporters.unavailable)} told to retry, {len(stored)} stored")
        assert len(acknowledged) == len(reporters.acknowledged)
        assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged reports were lost"
        assert "Traceback" not in (tmp_path / "server.log").read_text()


@pytest.fixture
def store_that_goes_away(request, tmp_path, tmp_path_factory):
    """An app whose evidence goes to its own S3 server, and a way to stop that server."""
    s3 = S3Server().start()
    database_url = fresh_database_url("sqlite", request, tmp_path_factory)
    settings = evidence_settings_for("s3", database_url, tmp_path, request, s3_endpoint_url=s3.endpoint)
    with built_app(settings) as app:
        yield app, s3
    s3.stop()


def test_with_the_evidence_store_down_reports_still_land_and_uploads_say_try_again(store_that_goes_away):
    app, s3 = store_that_goes_away
    keys = make_keys(app.state.settings.resolved_database_url)
    with app_client(app) as client:
        case = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
        s3.stop()
        cases_before, evidence_before = count_rows(app.state.engine, "case"), count_rows(app.state.engine, "evidence")

        # A report without files does not need the evidence store.
        response = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter))
        assert response.status_code == 201, response.text

        upload = client.post(
            f"/v1/cases/{case['reference']}/evidence",
            headers=bearer(case["reporter_token"]),
            files=[("file", ("screenshot.png", png(), "image/png"))],
        )
        assert upload.status_code == 503, upload.text
        assert upload.headers["content-type"] == "application/problem+json"
        assert int(upload.headers["retry-after"]) > 0

        # A report with files is all or nothing: its case is not made without its evidence.
        with_files = client.post(
            "/v1/cases",
            headers=bearer(keys.submitter),
            data={"reporter.relationship": "self", "account": "Synthetic account."},
            files=[("evidence", ("screenshot.png", png(), "image/png"))],
        )
        assert with_files.status_code == 503, with_files.text
        assert int(with_files.headers["retry-after"]) > 0

        assert count_rows(app.state.engine, "case") == cases_before + 1  # only the report without files
        assert count_rows(app.state.engine, "evidence") == evidence_before
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["object_store"] == "unreachable"


def test_with_the_evidence_store_down_the_report_form_keeps_everything_typed(store_that_goes_away):
    app, s3 = store_that_goes_away
    with app_client(app) as client:
        token = form_token(client.get("/report").text)
        s3.stop()
        cases_before = count_rows(app.state.engine, "case")
        sent = send(
            client, token, {**MINIMAL, "mtcn": "1234567890"}, files=[("evidence", ("a.png", png(), "image/png"))]
        )
        assert sent.status_code == 503, sent.text
        assert sent.headers["content-type"].startswith("text/html")
        assert "couldn&#39;t keep your files just now" in sent.text
        assert "Synthetic account kept.</textarea>" in sent.text and 'value="1234567890"' in sent.text
        assert count_rows(app.state.engine, "case") == cases_before

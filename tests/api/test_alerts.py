"""Urgent cases alert a webhook at once: signed, retried from a durable outbox, no personal data."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devsupport.postgres import free_port
from service.settings import Settings
from tests.support.apps import app_client, built_app
from tests.support.cases import MINIMAL_CASE
from tests.support.database import query_rows
from tests.support.http import bearer

SECRET = "synthetic-webhook-secret"


class Receiver:
    """A webhook endpoint on loopback that answers with the statuses it is told to, in turn."""

    def __init__(self, port: int, statuses: list[int]) -> None:
        self.port = port
        self.statuses = statuses
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server protocol
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.received.append((dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def alerting_app(settings, tmp_path):
    port = free_port()
    alerting = Settings(
        data_dir=tmp_path,
        database_url=settings.resolved_database_url,
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret=SECRET,
        webhook_poll_seconds=0.1,
        webhook_first_backoff=timedelta(milliseconds=100),
    )
    with built_app(alerting) as app:
        yield app, port


def test_an_urgent_case_is_alerted_at_once_signed_and_without_personal_data(alerting_app, keys):
    app, port = alerting_app
    receiver = Receiver(port, [])
    try:
        with app_client(app, raise_server_exceptions=True) as client:
            urgent = client.post(
                "/v1/cases",
                headers=bearer(keys.submitter),
                json={
                    **MINIMAL_CASE,
                    "victim": {"age": 14},
                    "reporter": {"relationship": "self", "name": "Canary Name"},
                },
            )
            client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter))  # not urgent
            assert wait_for(
                lambda: any(json.loads(b)["reference"] == urgent.json()["reference"] for _, b in receiver.received)
            )
    finally:
        receiver.stop()
    headers, body = next(
        (h, b) for h, b in receiver.received if json.loads(b)["reference"] == urgent.json()["reference"]
    )
    payload = json.loads(body)
    assert set(payload) == {"event", "delivery", "reference", "priority", "flags", "created_at"}
    assert payload["event"] == "case.urgent" and payload["flags"] == ["under_18"]
    assert b"Canary" not in body and MINIMAL_CASE["account"].encode() not in body
    timestamp, signature = (part.split("=", 1)[1] for part in headers["X-Intake-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert abs(int(timestamp) - time.time()) < 60


def test_a_webhook_that_fails_or_is_down_loses_nothing(alerting_app, keys, settings):
    app, port = alerting_app
    with app_client(app, raise_server_exceptions=True) as client:  # nothing listens yet: every try fails
        reference = client.post(
            "/v1/cases", json={**MINIMAL_CASE, "feels_unsafe": True}, headers=bearer(keys.submitter)
        ).json()["reference"]

        def attempts() -> int:
            undelivered = query_rows(
                app.state.engine,
                "SELECT attempts FROM webhook_delivery WHERE CAST(payload AS TEXT) LIKE :r AND delivered_at IS NULL",
                r=f"%{reference}%",
            )
            return undelivered[0].attempts if undelivered else 0

        assert wait_for(lambda: attempts() >= 2)
        receiver = Receiver(port, [500, 503])  # it comes back, still failing twice, then accepts
        try:
            assert wait_for(lambda: any(json.loads(b)["reference"] == reference for _, b in receiver.received), 30)
        finally:
            receiver.stop()

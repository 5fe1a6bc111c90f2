"""A report PostgreSQL keeps ending to settle conflicts with other changes to the same cases: after three
tries the caller is told to send it again (503 and Retry-After; the form keeps what was typed), never
a 500, and nothing of it is kept. The conflict is a real deadlock's error, raised on every try."""

from __future__ import annotations

import pytest

from service.reporting import Reporting
from service.settings import Settings
from tests.support.apps import app_client, fresh_database_url
from tests.support.cases import MINIMAL_CASE
from tests.support.conflicts import a_real_deadlock_error, tally_database
from tests.support.database import count_rows, make_keys
from tests.support.http import bearer
from tests.support.report_form import MINIMAL, form_token, send

pytestmark = pytest.mark.postgres

EMAIL = "repeated.busy@example.org"


@pytest.fixture
def always_ended(monkeypatch, postgres_server) -> dict:
    """Every try at keeping a case in a transaction (a repeat case's path) ends as PostgreSQL ends the
    loser of a deadlock."""
    deadlock = a_real_deadlock_error(tally_database(postgres_server))
    tries = {"count": 0}

    async def ended(*_, **__):
        tries["count"] += 1
        raise deadlock

    monkeypatch.setattr(Reporting, "_keep_in_transaction", ended)
    return tries


@pytest.fixture
def deployment(request, tmp_path_factory, tmp_path):
    url = fresh_database_url("postgres", request, tmp_path_factory)
    return url, make_keys(url), Settings(data_dir=tmp_path, database_url=url, rate_case_creation_per_address="off")


def test_a_report_ended_by_conflicts_every_try_is_a_503_to_send_again_and_nothing_is_kept(deployment, always_ended):
    url, keys, settings = deployment
    case = {**MINIMAL_CASE, "identifiers": [{"type": "email", "value": EMAIL}]}
    with app_client(settings) as client:
        assert client.post("/v1/cases", json=case, headers=bearer(keys.submitter)).status_code == 201  # one statement
        repeat = client.post("/v1/cases", json=case, headers=bearer(keys.submitter))
    assert repeat.status_code == 503, repeat.text
    assert repeat.headers["content-type"] == "application/problem+json"
    assert repeat.headers["retry-after"] == "1"
    assert repeat.json()["type"].endswith("/database-busy")
    assert "try again" in repeat.json()["detail"]
    assert always_ended["count"] == 3
    assert count_rows(url, "case") == 1


def test_the_form_ended_by_conflicts_every_try_keeps_what_was_typed(deployment, always_ended):
    url, keys, settings = deployment
    case = {**MINIMAL_CASE, "identifiers": [{"type": "email", "value": EMAIL}]}
    with app_client(settings) as client:
        assert client.post("/v1/cases", json=case, headers=bearer(keys.submitter)).status_code == 201
        sent = send(client, form_token(client.get("/report").text), {**MINIMAL, "email": EMAIL})
    assert sent.status_code == 503
    assert sent.headers["retry-after"] == "30"
    assert "save your report just now" in sent.text
    assert f'value="{EMAIL}"' in sent.text and MINIMAL["account"] in sent.text
    assert count_rows(url, "case") == 1

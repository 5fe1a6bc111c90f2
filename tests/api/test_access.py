"""Who may do what: 401 without a valid token, 403 for the wrong role, 404 for another's case."""

from __future__ import annotations

import pytest

from service.cli import main as intake
from tests.support.cases import MINIMAL_CASE
from tests.support.http import bearer


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer isk_abc_def", "Bearer irt_not-a-real-token"],
)
def test_missing_or_bad_tokens_get_401_with_a_challenge(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.post("/v1/cases", json=MINIMAL_CASE, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_only_submitters_create_cases(client, keys, role):
    response = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(getattr(keys, role)))
    assert response.status_code == 403


def test_a_reporter_token_cannot_create_cases(client, new_case):
    token = new_case()["reporter_token"]
    assert client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(token)).status_code == 403


@pytest.mark.parametrize("who", ["submitter", "other_submitter", "admin", "other_reporter"])
def test_no_one_but_an_analyst_or_its_reporter_can_read_a_case(client, keys, new_case, who):
    reference = new_case()["reference"]
    token = new_case()["reporter_token"] if who == "other_reporter" else getattr(keys, who)
    response = client.get(f"/v1/cases/{reference}", headers=bearer(token))
    assert response.status_code == 404
    missing = client.get("/v1/cases/2222-2222-2222", headers=bearer(token))
    assert response.json()["detail"] == missing.json()["detail"]  # nothing tells them apart


def test_a_revoked_key_stops_working_at_once(client, settings, monkeypatch, capsys):
    monkeypatch.setenv("INTAKE_DATABASE_URL", settings.resolved_database_url)
    assert intake(["keys", "create", "--role", "submitter", "--name", "short-lived"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(key)).status_code == 201
    assert intake(["keys", "revoke", key.split("_")[1]]) == 0
    assert client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(key)).status_code == 401


def test_a_key_with_a_wrong_secret_is_refused(client, keys):
    prefix, key_id, _secret = keys.submitter.split("_", 2)
    forged = f"{prefix}_{key_id}_" + "A" * 43
    assert client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(forged)).status_code == 401

"""Who may do what: 401 without a valid token, 403 for the wrong role, 404 for another's case."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from pydantic import ValidationError

from service.cli import main as intake
from service.settings import Settings
from tests.support.apps import running_service
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


def test_a_revoked_key_stops_working_for_every_route_once_the_key_cache_time_has_passed(
    client, settings, monkeypatch, capsys
):
    live_keys = client.app.state.live_keys
    now = [1000.0]
    monkeypatch.setattr(live_keys, "clock", lambda: now[0])
    monkeypatch.setenv("INTAKE_DATABASE_URL", settings.resolved_database_url)
    assert intake(["keys", "create", "--role", "analyst", "--name", "short-lived analyst"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert client.get("/v1/cases", headers=bearer(key)).status_code == 200
    assert intake(["keys", "revoke", key.split("_")[1]]) == 0
    now[0] += settings.key_cache_seconds
    assert client.get("/v1/cases", headers=bearer(key)).status_code == 401


def test_the_key_cache_time_cannot_be_set_past_five_seconds():
    assert Settings(key_cache_seconds=5).key_cache_seconds == 5
    with pytest.raises(ValidationError, match="key_cache_seconds"):
        Settings(key_cache_seconds=5.5)


@pytest.mark.postgres
def test_a_key_revoked_by_the_cli_is_refused_by_a_running_server_within_five_seconds(postgres_server, tmp_path):
    database_url = postgres_server.create_database(f"intake_revocation_{tmp_path.name[-12:]}")
    with running_service(database_url, tmp_path) as (base, keys):
        assert httpx.get(base + "/v1/cases", headers=bearer(keys.analyst), timeout=10).status_code == 200
        revoked = subprocess.run(
            [sys.executable, "-m", "service.cli", "keys", "revoke", keys.analyst.split("_")[1]],
            env={**os.environ, "INTAKE_DATABASE_URL": database_url},
            capture_output=True,
            check=False,
        )
        assert revoked.returncode == 0, revoked.stderr
        revoked_at = time.monotonic()
        statuses = []
        while time.monotonic() - revoked_at < 5.0:
            statuses.append(httpx.get(base + "/v1/cases", headers=bearer(keys.analyst), timeout=10).status_code)
            if statuses[-1] == 401:
                break
            time.sleep(0.2)
        assert statuses[-1] == 401, f"still {statuses[-1]} five seconds after the key was revoked"

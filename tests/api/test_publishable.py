"""Publishable keys for force websites: only reporting, only from their origins, CORS for just those."""

from __future__ import annotations

import pytest

from service.cli import main as intake
from service.settings import Settings
from service.storage.database import session_scope
from service.storage.keys import normalize_origin, revoke_api_key
from tests.support.apps import BACKENDS, app_client, fresh_database_url
from tests.support.cases import MINIMAL_CASE
from tests.support.database import create_key, make_keys, query_scalar
from tests.support.http import assert_problem, bearer
from tests.support.synthetic import png

# A limit filled here must stay filled until the test expects it refused.
pytestmark = pytest.mark.usefixtures("one_rate_window")


SITE = "https://www.example-force.police.uk"
OTHER_SITE = "https://attacker.example"


@pytest.fixture(params=BACKENDS)
def website(request, tmp_path, tmp_path_factory):
    database_url = fresh_database_url(request.param, request, tmp_path_factory)
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        cors_cache_seconds=0,
        rate_publishable_case_creation_per_key="3/minute",
    )
    with app_client(settings) as client:
        keys = make_keys(client.app.state.engine)
        publishable = create_key(client.app.state.engine, "submitter", "force website", origins=[SITE + "/"])
        yield client, publishable, keys


def from_site(token: str, origin: str = SITE) -> dict[str, str]:
    return {**bearer(token), "Origin": origin}


def test_a_publishable_key_reports_and_the_reporter_token_adds_to_the_case(website):
    client, publishable, _ = website
    created = client.post("/v1/cases", json=MINIMAL_CASE, headers=from_site(publishable))
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == SITE
    assert "Location" in created.headers["access-control-expose-headers"]
    reference, reporter = created.json()["reference"], created.json()["reporter_token"]
    identifiers = [{"type": "email", "value": "offender@example.net"}]
    added = client.post(f"/v1/cases/{reference}/identifiers", json=identifiers, headers=from_site(reporter))
    assert added.status_code == 201, added.text
    files = [("file", ("screenshot.png", png(), "image/png"))]
    uploaded = client.post(f"/v1/cases/{reference}/evidence", files=files, headers=from_site(reporter))
    assert uploaded.status_code == 201, uploaded.text


def test_a_publishable_key_and_a_reference_add_nothing_to_a_case_it_reported(website):
    """The key is in the page's source and the reference is quoted everywhere: together they are no
    proof of being the victim, so they open nothing."""
    client, publishable, _ = website
    reference = client.post("/v1/cases", json=MINIMAL_CASE, headers=from_site(publishable)).json()["reference"]
    declared = {"filename": "a.png", "size": len(png()), "sha256": "0" * 64}
    for path, body in [
        (f"/v1/cases/{reference}/identifiers", {"json": {"type": "email", "value": "a@example.net"}}),
        (f"/v1/cases/{reference}/evidence", {"files": [("file", ("a.png", png(), "image/png"))]}),
        (f"/v1/cases/{reference}/evidence/uploads", {"json": declared}),
        (f"/v1/cases/{reference}/evidence/uploads/{'0' * 32}/complete", {}),
    ]:
        for headers in (from_site(publishable), bearer(publishable)):
            response = client.post(path, headers=headers, **body)
            problem = assert_problem(response, 403)
            assert problem["type"].endswith("publishable-key-scope")
            assert "reporter token" in problem["detail"]
            assert "flags" not in response.text and "priority" not in response.text


def test_a_publishable_keys_idempotency_key_must_be_unguessable(website):
    """Every visitor shares the key: a short or made-up Idempotency-Key would hand one visitor the
    answer (and reporter token) of another who used the same one."""
    client, publishable, _ = website
    for weak in ("report-1", "report-1", "a" * 40):  # two visitors' tries, then a long but made-up key
        headers = {**from_site(publishable), "Idempotency-Key": weak}
        response = client.post("/v1/cases", json=MINIMAL_CASE, headers=headers)
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["field"] == "Idempotency-Key"
        assert "reporter_token" not in response.text


def test_a_publishable_keys_stored_answer_does_not_open_with_the_public_key(website):
    """Sealed with a secret derived by the service: a copy of the database and the key in the page
    source are not enough to read a visitor's reporter token."""
    import hashlib
    import hmac
    import uuid

    from Crypto.Cipher import AES

    client, publishable, _ = website
    idempotency_key = str(uuid.uuid4())
    headers = {**from_site(publishable), "Idempotency-Key": idempotency_key}
    first = client.post("/v1/cases", json=MINIMAL_CASE, headers=headers)
    again = client.post("/v1/cases", json=MINIMAL_CASE, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"

    key_sha256 = hashlib.sha256(idempotency_key.encode()).hexdigest()
    sealed = query_scalar(
        client.app.state.engine, "SELECT response_sealed FROM idempotency_record WHERE key_sha256 = :k", k=key_sha256
    )
    with_public_key = hmac.new(publishable.encode(), b"idempotency\x00" + idempotency_key.encode(), "sha256").digest()
    nonce, tag, ciphertext = sealed[:12], sealed[12:28], sealed[28:]
    with pytest.raises(ValueError):
        AES.new(with_public_key, AES.MODE_GCM, nonce=nonce).decrypt_and_verify(ciphertext, tag)
    assert first.json()["reporter_token"].encode() not in sealed


def test_a_publishable_key_can_do_nothing_else(website):
    client, publishable, keys = website
    created = client.post("/v1/cases", json=MINIMAL_CASE, headers=from_site(publishable)).json()
    for method, path in [
        ("GET", f"/v1/cases/{created['reference']}"),
        ("GET", f"/v1/cases/{created['reference']}/evidence"),
        ("GET", "/v1/cases"),
        ("GET", "/v1/cases/export"),
        ("GET", "/v1/identifiers?normalized=x"),
        ("POST", f"/v1/cases/{created['reference']}/notes"),
    ]:
        response = client.request(method, path, headers=from_site(publishable), json={"body": "x"})
        assert_problem(response, 403)
    other = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
    refused = client.post(
        f"/v1/cases/{other['reference']}/identifiers",
        json=[{"type": "email", "value": "a@example.net"}],
        headers=from_site(publishable),
    )
    assert refused.status_code == 403  # before any case is looked up: nothing learnt about it


def test_a_publishable_key_is_refused_from_another_origin_and_gets_no_cors(website):
    client, publishable, _ = website
    response = client.post("/v1/cases", json=MINIMAL_CASE, headers=from_site(publishable, OTHER_SITE))
    assert assert_problem(response, 403)["type"].endswith("origin-not-allowed")
    assert "access-control-allow-origin" not in response.headers


def test_secret_keys_are_never_accepted_from_a_browser_origin(website):
    client, _, keys = website
    for token in (keys.submitter, keys.analyst):
        for origin in (SITE, OTHER_SITE):
            response = client.get("/v1/cases", headers=from_site(token, origin))
            assert assert_problem(response, 403)["type"].endswith("secret-key-in-browser")


def test_preflight_is_answered_only_for_publishable_origins(website):
    client, _, _ = website
    asking = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = client.options("/v1/cases", headers={"Origin": SITE, **asking})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert "Origin" in allowed.headers["vary"]
    refused = client.options("/v1/cases", headers={"Origin": OTHER_SITE, **asking})
    assert refused.status_code == 405
    assert "access-control-allow-origin" not in refused.headers


def test_a_revoked_publishable_key_closes_its_origin(website):
    client, publishable, _ = website
    key_id = publishable.split("_")[1]
    with session_scope(client.app.state.engine) as session:
        assert revoke_api_key(session, key_id)
    preflight = client.options("/v1/cases", headers={"Origin": SITE, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_publishable_keys_have_a_tighter_rate_limit(website):
    client, publishable, keys = website
    statuses = [
        client.post("/v1/cases", json=MINIMAL_CASE, headers=from_site(publishable)).status_code for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429]


def test_the_reporter_token_works_from_the_website_for_adding_evidence(website):
    client, publishable, _ = website
    created = client.post("/v1/cases", json=MINIMAL_CASE, headers=from_site(publishable)).json()
    files = [("file", ("screenshot.png", png(), "image/png"))]
    path = f"/v1/cases/{created['reference']}/evidence"
    assert client.post(path, files=files, headers=from_site(created["reporter_token"])).status_code == 201
    assert client.post(path, files=files, headers=from_site(created["reporter_token"], OTHER_SITE)).status_code == 403


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://WWW.Example.police.uk/", "https://www.example.police.uk"),
        ("http://localhost:8080", "http://localhost:8080"),
    ],
)
def test_origins_are_kept_as_browsers_send_them(given, stored):
    assert normalize_origin(given) == stored


@pytest.mark.parametrize(
    "bad", ["www.example.police.uk", "http://www.example.police.uk", "https://x.uk/report", "ftp://x"]
)
def test_a_malformed_origin_is_refused(bad):
    with pytest.raises(ValueError):
        normalize_origin(bad)


def test_the_cli_makes_publishable_keys_only_for_submitters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTAKE_DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    assert intake(["db", "upgrade"]) == 0
    made = ["keys", "create", "--role", "submitter", "--name", "site", "--publishable", "--origin", SITE]
    assert intake(made) == 0
    assert f"Publishable, for pages at: {SITE}" in capsys.readouterr().out
    assert intake(["keys", "create", "--role", "analyst", "--name", "x", "--publishable", "--origin", SITE]) == 2
    assert intake(["keys", "create", "--role", "submitter", "--name", "x", "--origin", SITE]) == 2
    assert intake(["keys", "list"]) == 0
    assert f"publishable {SITE}" in capsys.readouterr().out

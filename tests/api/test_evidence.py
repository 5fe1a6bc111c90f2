"""Evidence: on a local folder and on S3 over HTTP, with SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from service.storage.database import session_scope
from service.storage.keys import key_id_of, revoke_api_key
from tests.support.apps import app_client, evidence_settings_for
from tests.support.cases import MINIMAL_CASE
from tests.support.cli import environment_for, run_intake
from tests.support.database import audit_events, count_rows, create_key, query_rows, query_scalar
from tests.support.evidence import evidence_rows, stored_keys, upload
from tests.support.http import assert_problem, bearer
from tests.support.synthetic import ELF, HTML, PDF, SVG, TEXT, ZIP, png, sha256


@pytest.fixture
def keys(evidence_keys):
    """In this module, keys live in the evidence app's own database."""
    return evidence_keys


@pytest.fixture
def case(evidence_client, keys):
    def create(**fields) -> dict:
        response = evidence_client.post("/v1/cases", json={**MINIMAL_CASE, **fields}, headers=bearer(keys.submitter))
        assert response.status_code == 201, response.text
        return response.json()

    return create


def test_round_trip_keeps_the_bytes_exactly_and_types_them_by_content(evidence_client, evidence_app, case, keys):
    created = case()
    image = png()
    response = upload(
        evidence_client,
        created,
        ("holiday.exe", image, "application/octet-stream"),
        ("receipt.pdf", PDF, "application/pdf"),
        ("chat.txt", TEXT, "text/plain"),
    )
    assert response.status_code == 201, response.text
    stored = response.json()["evidence"]
    assert [(e["filename"], e["content_type"], e["size"], e["sha256"]) for e in stored] == [
        ("holiday.exe", "image/png", len(image), sha256(image)),
        ("receipt.pdf", "application/pdf", len(PDF), sha256(PDF)),
        ("chat.txt", "text/plain", len(TEXT), sha256(TEXT)),
    ]
    content = evidence_client.get(
        f"/v1/cases/{created['reference']}/evidence/{stored[0]['id']}/content",
        headers={**bearer(keys.analyst), "X-Access-Reason": "review"},
    )
    assert content.status_code == 200
    assert content.content == image
    assert content.headers["x-evidence-sha256"] == sha256(image)
    assert content.headers["content-type"] == "image/png"
    assert "attachment" in content.headers["content-disposition"]


def test_object_keys_are_opaque_and_filenames_are_only_data(evidence_client, evidence_app, case):
    created = case()
    before = stored_keys(evidence_app)
    response = upload(evidence_client, created, ("../../etc/victim name.png", png(), "image/png"))
    assert response.json()["evidence"][0]["filename"] == "victim name.png"
    (key,) = stored_keys(evidence_app) - before
    assert "victim" not in key and created["reference"] not in key


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("page.html", HTML, 415),
        ("drawing.svg", SVG, 415),
        ("bundle.zip", ZIP, 415),
        ("tool.bin", ELF, 415),
        ("empty.png", b"", 422),
    ],
)
def test_refused_files_leave_no_object_and_no_row(evidence_client, evidence_app, case, name, data, status):
    created = case()
    before = stored_keys(evidence_app)
    response = upload(evidence_client, created, (name, data, "image/png"))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "file"
    assert name in response.json()["detail"]
    assert stored_keys(evidence_app) == before
    assert evidence_rows(evidence_app, created["reference"]) == 0


def test_one_bad_file_takes_the_good_ones_in_its_request_with_it(evidence_client, evidence_app, case):
    created = case()
    before = stored_keys(evidence_app)
    response = upload(
        evidence_client,
        created,
        ("ok.png", png(), "image/png"),
        ("ok.pdf", PDF, "application/pdf"),
        ("bad.html", HTML, "text/html"),
    )
    assert response.status_code == 415
    assert stored_keys(evidence_app) == before
    assert evidence_rows(evidence_app, created["reference"]) == 0


def test_over_the_size_limit_is_413_and_leaves_nothing(request, evidence_app, tmp_path, keys):
    store = request.node.callspec.params["evidence_app"]
    database_url = evidence_app.state.settings.resolved_database_url
    settings = evidence_settings_for(store, database_url, tmp_path, request, evidence_max_bytes=64 * 1024)
    with app_client(settings, migrate=False, raise_server_exceptions=True) as small:
        created = small.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
        before = stored_keys(small.app)
        response = upload(small, created, ("long.txt", TEXT * 5000, "text/plain"))
        assert response.status_code == 413
        assert "limit" in response.json()["detail"]
        assert stored_keys(small.app) == before
        assert evidence_rows(small.app, created["reference"]) == 0


def test_evidence_can_come_with_the_report_itself(evidence_client, evidence_app, keys):
    response = evidence_client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        data={"reporter.relationship": "self", "account": "Synthetic report with a screenshot"},
        files=[("evidence", ("screenshot.png", png(), "image/png")), ("evidence", ("chat.txt", TEXT, "text/plain"))],
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [e["content_type"] for e in body["evidence"]] == ["image/png", "text/plain"]
    listed = evidence_client.get(f"/v1/cases/{body['reference']}/evidence", headers=bearer(keys.analyst)).json()
    assert [e["id"] for e in listed["evidence"]] == [e["id"] for e in body["evidence"]]


def test_a_report_that_fails_validation_keeps_none_of_its_files(evidence_client, evidence_app, keys):
    before = stored_keys(evidence_app)
    response = evidence_client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        data={"reporter.relationship": "self"},  # no account
        files=[("evidence", ("screenshot.png", png(), "image/png"))],
    )
    assert response.status_code == 422
    assert stored_keys(evidence_app) == before


def test_a_retried_upload_with_one_key_keeps_one_copy(evidence_client, evidence_app, case):
    created = case()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = upload(evidence_client, created, ("a.png", png(), "image/png"), headers=headers)
    after_first = stored_keys(evidence_app)
    second = upload(evidence_client, created, ("a.png", png(), "image/png"), headers=headers)
    assert first.json() == second.json()
    assert stored_keys(evidence_app) == after_first
    assert evidence_rows(evidence_app, created["reference"]) == 1


@pytest.mark.parametrize("who", ["other_submitter", "admin", "other_reporter"])
def test_strangers_cannot_add_evidence_or_learn_the_case_exists(evidence_client, case, keys, who):
    created = case()
    token = case()["reporter_token"] if who == "other_reporter" else getattr(keys, who)
    assert upload(evidence_client, created, ("a.png", png(), "image/png"), token=token).status_code == 404


def test_only_analysts_read_content_and_under_18_needs_the_extra_permission(
    evidence_client, case, keys, child_analyst_key
):
    adult = case()
    child = case(victim={"age": 15})
    adult_id = upload(evidence_client, adult, ("a.png", png(), "image/png")).json()["evidence"][0]["id"]
    child_id = upload(evidence_client, child, ("c.png", png(shade=9), "image/png")).json()["evidence"][0]["id"]

    def read(created, evidence_id, token):
        return evidence_client.get(
            f"/v1/cases/{created['reference']}/evidence/{evidence_id}/content", headers=bearer(token)
        )

    assert read(adult, adult_id, keys.submitter).status_code == 404
    assert read(adult, adult_id, adult["reporter_token"]).status_code == 404
    assert read(adult, adult_id, keys.analyst).status_code == 200
    assert read(child, child_id, keys.analyst).status_code == 403
    without_reason = read(child, child_id, child_analyst_key)
    assert without_reason.status_code == 422  # a child's evidence is opened only with a reason for the audit
    assert without_reason.json()["errors"][0]["field"] == "X-Access-Reason"
    with_reason = evidence_client.get(
        f"/v1/cases/{child['reference']}/evidence/{child_id}/content",
        headers={**bearer(child_analyst_key), "X-Access-Reason": "identifying the offender's account"},
    )
    assert with_reason.status_code == 200
    assert read(adult, child_id, keys.analyst).status_code == 404  # evidence of another case


def test_a_content_link_is_short_lived_audited_and_works_alone(evidence_client, evidence_app, case, keys):
    created = case()
    image = png(shade=200)
    evidence_id = upload(evidence_client, created, ("a.png", image, "image/png")).json()["evidence"][0]["id"]
    link = evidence_client.post(
        f"/v1/cases/{created['reference']}/evidence/{evidence_id}/link",
        headers={**bearer(keys.analyst), "X-Access-Reason": "court bundle"},
    )
    assert link.status_code == 201
    lifetime = evidence_app.state.settings.evidence_link_seconds
    expires_in = datetime.fromisoformat(link.json()["expires_at"].replace("Z", "+00:00")) - datetime.now(UTC)
    assert timedelta(seconds=lifetime - 60) < expires_in <= timedelta(seconds=lifetime)
    url = link.json()["url"]
    fetched = httpx.get(url) if url.startswith("http://127.0.0.1") else evidence_client.get(url)
    assert fetched.status_code == 200
    assert fetched.content == image
    actions = audit_events(evidence_app.state.engine, created["reference"])
    assert ("evidence.link", "court bundle") in [(row.action, row.reason) for row in actions]


def test_a_forged_or_tampered_local_link_is_refused(evidence_client, evidence_app, case, keys):
    assert_problem(evidence_client.get("/v1/evidence-links/not-a-token"), 403)
    if evidence_app.state.settings.evidence_store != "local":
        return  # S3 signs its own links; only the local store's links are the service's to check
    created = case()
    evidence_id = upload(evidence_client, created, ("a.png", png(), "image/png")).json()["evidence"][0]["id"]
    url = evidence_client.post(
        f"/v1/cases/{created['reference']}/evidence/{evidence_id}/link", headers=bearer(keys.analyst)
    ).json()["url"]
    assert evidence_client.get(url).status_code == 200
    at = len(url) - 10  # inside the signature, where every bit counts
    tampered = url[:at] + ("A" if url[at] != "A" else "B") + url[at + 1 :]
    assert_problem(evidence_client.get(tampered), 403)


def direct_upload(client, created, data: bytes, declared: bytes | None = None):
    ticket = client.post(
        f"/v1/cases/{created['reference']}/evidence/uploads",
        headers=bearer(created["reporter_token"]),
        json={"filename": "recording.txt", "size": len(data), "sha256": sha256(declared or data)},
    )
    assert ticket.status_code == 201, ticket.text
    ticket = ticket.json()
    sender = httpx if ticket["url"].startswith("http://127.0.0.1") else client
    sent = sender.request(ticket["method"], ticket["url"], content=data, headers=ticket["headers"])
    assert sent.status_code in (200, 204), sent.text
    return client.post(
        f"/v1/cases/{created['reference']}/evidence/uploads/{ticket['id']}/complete",
        headers=bearer(created["reporter_token"]),
    )


def test_a_local_direct_upload_link_works_only_for_its_own_upload(evidence_client, evidence_app, case):
    if evidence_app.state.settings.evidence_store != "local":
        return  # S3 checks its own presigned links
    created = case()

    def ticket() -> dict:
        answer = evidence_client.post(
            f"/v1/cases/{created['reference']}/evidence/uploads",
            headers=bearer(created["reporter_token"]),
            json={"filename": "recording.txt", "size": len(TEXT), "sha256": sha256(TEXT)},
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    first, second = ticket(), ticket()
    first_address, second_address = urlsplit(first["url"]), urlsplit(second["url"])
    borrowed = f"{second_address.path}?{first_address.query}"  # the first one's token on the second's address
    for url in (borrowed, f"{first_address.path}?token=not-a-token"):
        refused = evidence_client.request(first["method"], url, content=TEXT, headers=first["headers"])
        assert_problem(refused, 403)
    sent = evidence_client.request(first["method"], first["url"], content=TEXT, headers=first["headers"])
    assert sent.status_code == 204, sent.text


def test_a_direct_upload_is_checked_by_the_service_before_it_becomes_evidence(evidence_client, evidence_app, case):
    created = case()
    completed = direct_upload(evidence_client, created, TEXT)
    assert completed.status_code == 201, completed.text
    assert completed.json()["sha256"] == sha256(TEXT)
    assert completed.json()["content_type"] == "text/plain"
    assert evidence_rows(evidence_app, created["reference"]) == 1


def test_a_direct_upload_with_the_wrong_declared_hash_is_refused_and_deleted(evidence_client, evidence_app, case):
    created = case()
    before = stored_keys(evidence_app)
    completed = direct_upload(evidence_client, created, TEXT, declared=TEXT + b"tampered")
    assert completed.status_code == 422
    assert completed.json()["errors"][0]["field"] == "sha256"
    assert stored_keys(evidence_app) == before
    assert evidence_rows(evidence_app, created["reference"]) == 0


def test_a_direct_upload_of_a_refused_kind_is_deleted(evidence_client, evidence_app, case):
    created = case()
    before = stored_keys(evidence_app)
    assert direct_upload(evidence_client, created, HTML).status_code == 415
    assert stored_keys(evidence_app) == before


def test_sweep_removes_objects_with_no_row_and_reports_rows_with_no_object(evidence_client, evidence_app, case):
    created = case()
    kept = upload(evidence_client, created, ("a.png", png(), "image/png")).json()["evidence"][0]
    orphan_key = evidence_app.state.objects.new_evidence_key()
    leftover = evidence_app.state.objects.start_upload(orphan_key)
    leftover.write(b"what a killed process left behind")
    leftover.complete()
    environment = environment_for(evidence_app.state.settings)
    kept_key = query_scalar(evidence_app.state.engine, "SELECT object_key FROM evidence WHERE id = :i", i=kept["id"])
    report = run_intake("evidence", "sweep", environment=environment)
    assert report.returncode == 0, report.stderr
    assert orphan_key not in stored_keys(evidence_app)
    assert kept_key in stored_keys(evidence_app)
    # Other tests share this store: what they left behind may be removed too, but never nothing.
    assert re.search(r"^removed [1-9][0-9]* object\(s\) with no evidence row$", report.stdout, re.MULTILINE)
    assert evidence_rows(evidence_app, created["reference"]) == 1

    # Taken away and put back as it was: the same S3 bytes have the same ETag; a local file keeps its
    # identity only if the very file comes back (a rewrite is a replacement, which verify reports).
    local_path = evidence_app.state.settings.resolved_evidence_dir / kept_key
    aside = evidence_app.state.settings.resolved_evidence_dir.parent / f"aside-{local_path.name}"  # outside the store
    if evidence_app.state.settings.evidence_store == "local":
        local_path.rename(aside)
    else:
        evidence_app.state.objects.delete(kept_key)
    try:
        missing = run_intake("evidence", "sweep", environment=environment)
        assert missing.returncode == 1
        assert f"MISSING: evidence {kept['id']} has a row but its object is gone" in missing.stderr
        assert evidence_rows(evidence_app, created["reference"]) == 1  # reported, never deleted
    finally:  # put the same bytes back for the tests that verify the whole store
        if evidence_app.state.settings.evidence_store == "local":
            aside.rename(local_path)
        else:
            restored = evidence_app.state.objects.start_upload(kept_key)
            restored.write(png())
            restored.complete()


def test_verify_finds_evidence_whose_bytes_changed(evidence_client, evidence_app, case, keys):
    created = case()
    evidence = upload(evidence_client, created, ("a.txt", TEXT, "text/plain")).json()["evidence"][0]
    environment = environment_for(evidence_app.state.settings)
    assert run_intake("evidence", "verify", environment=environment).returncode == 0
    key = query_scalar(evidence_app.state.engine, "SELECT object_key FROM evidence WHERE id = :i", i=evidence["id"])
    tampered = evidence_app.state.objects.start_upload(key)
    tampered.write(TEXT.replace(b"no", b"ok"))
    tampered.complete()
    result = run_intake("evidence", "verify", environment=environment)
    assert result.returncode == 1
    assert evidence["id"] in result.stdout and "differs" in result.stdout, result.stdout
    content = evidence_client.get(
        f"/v1/cases/{created['reference']}/evidence/{evidence['id']}/content", headers=bearer(keys.analyst)
    )
    assert content.status_code == 409  # never served as it now is, and the mismatch is audited:
    assert count_rows(evidence_app.state.engine, "audit_event", "action = 'evidence.integrity_failure'") >= 1


def test_names_in_any_script_are_kept_and_odd_part_names_are_refused_not_crashed(evidence_client, case):
    created = case()
    response = upload(evidence_client, created, ("скриншот-é-🙂.png", png(), "image/png"))
    assert response.status_code == 201, response.text
    assert response.json()["evidence"][0]["filename"] == "скриншот-é-🙂.png"
    odd = evidence_client.post(
        f"/v1/cases/{created['reference']}/evidence",
        headers=bearer(created["reporter_token"]),
        files=[("\U000b0dd7名前", (None, "x")), ("file", ("a.png", png(), "image/png"))],
    )
    assert odd.status_code == 422
    assert odd.json()["errors"][0]["field"] == "\U000b0dd7名前"


# --- verified evidence can't be replaced (issue 10, item 3) --------------------------------------


INTEGRITY = "evidence.integrity_failure"


def evidence_object_key(app, evidence_id: str) -> str:
    return query_scalar(app.state.engine, "SELECT object_key FROM evidence WHERE id = :i", i=evidence_id)


def test_the_upload_url_can_not_reach_evidence_after_complete(evidence_client, evidence_app, case, keys):
    created = case()
    ticket = evidence_client.post(
        f"/v1/cases/{created['reference']}/evidence/uploads",
        headers=bearer(created["reporter_token"]),
        json={"filename": "chat.txt", "size": len(TEXT), "sha256": sha256(TEXT)},
    ).json()
    sender = httpx if ticket["url"].startswith("http://127.0.0.1") else evidence_client
    assert sender.request("PUT", ticket["url"], content=TEXT, headers=ticket["headers"]).status_code in (200, 204)
    completed = evidence_client.post(
        f"/v1/cases/{created['reference']}/evidence/uploads/{ticket['id']}/complete",
        headers=bearer(created["reporter_token"]),
    )
    assert completed.status_code == 201, completed.text
    # Same length, another type: S3's presigned URL still takes it (into the upload's own key); the
    # service refuses it. Either way the evidence is what was verified.
    replacement = HTML[: len(TEXT)].ljust(len(TEXT), b" ")
    sender.request("PUT", ticket["url"], content=replacement, headers=ticket["headers"])
    content = evidence_client.get(
        f"/v1/cases/{created['reference']}/evidence/{completed.json()['id']}/content", headers=bearer(keys.analyst)
    )
    assert content.status_code == 200
    assert content.content == TEXT and content.headers["content-type"].startswith("text/plain")
    assert evidence_object_key(evidence_app, completed.json()["id"]).startswith(
        f"{evidence_app.state.objects.prefix}evidence/"
    )


def test_evidence_replaced_in_the_store_is_refused_not_served(evidence_client, evidence_app, case, keys):
    created = case()
    evidence = upload(evidence_client, created, ("a.txt", TEXT, "text/plain")).json()["evidence"][0]
    key = evidence_object_key(evidence_app, evidence["id"])
    store = evidence_app.state.objects
    same_length = HTML[: len(TEXT)].ljust(len(TEXT), b" ")
    if evidence_app.state.settings.evidence_store == "s3":
        store.call("put_object", Key=key, Body=same_length)
    else:
        replacing = store.start_upload(key)
        replacing.write(same_length)
        replacing.complete()
    content = evidence_client.get(
        f"/v1/cases/{created['reference']}/evidence/{evidence['id']}/content", headers=bearer(keys.analyst)
    )
    assert content.status_code == 409
    assert same_length not in content.content
    failures = query_rows(evidence_app.state.engine, "SELECT detail FROM audit_event WHERE action = :a", a=INTEGRITY)
    assert any(evidence["id"] in str(row[0]) for row in failures)


def test_a_local_evidence_file_is_read_only(evidence_app, evidence_client, case):
    if evidence_app.state.settings.evidence_store != "local":
        pytest.skip("a local folder's permissions")
    created = case()
    evidence = upload(evidence_client, created, ("a.txt", TEXT, "text/plain")).json()["evidence"][0]
    path = evidence_app.state.settings.resolved_evidence_dir / evidence_object_key(evidence_app, evidence["id"])
    assert path.stat().st_mode & 0o777 == 0o400


# --- content links (issue 10, item 10) -----------------------------------------------------------


def test_a_content_link_goes_through_the_service_is_audited_and_dies_with_its_key(evidence_client, evidence_app, case):
    created = case()
    evidence = upload(evidence_client, created, ("a.txt", TEXT, "text/plain")).json()["evidence"][0]
    analyst = create_key(evidence_app.state.engine, "analyst", "link test analyst")
    link = evidence_client.post(
        f"/v1/cases/{created['reference']}/evidence/{evidence['id']}/link", headers=bearer(analyst)
    )
    assert link.status_code == 201, link.text
    url = link.json()["url"]
    assert url.startswith("http://testserver/v1/evidence-links/")  # the service's own, on S3 too
    assert evidence_client.get(url).content == TEXT
    issuer = key_id_of(analyst)
    reads = query_scalar(
        evidence_app.state.engine,
        "SELECT count(*) FROM audit_event WHERE action = 'evidence.read' AND actor = :actor",
        actor=f"link:{issuer}",
    )
    assert reads == 1
    with session_scope(evidence_app.state.engine) as session:
        assert revoke_api_key(session, issuer)
    refused = evidence_client.get(url)
    assert refused.status_code == 403 and TEXT not in refused.content

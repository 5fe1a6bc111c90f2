"""Evidence quotas per case (files and bytes, direct uploads counted), and completing a direct upload
once: on a local folder and on S3 over HTTP, with SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import httpx
import pytest

from tests.support.apps import app_client, evidence_settings_for
from tests.support.cases import MINIMAL_CASE
from tests.support.database import count_rows, create_key, query_scalar
from tests.support.evidence import evidence_rows, stored_keys, upload
from tests.support.http import assert_problem, bearer
from tests.support.synthetic import PDF, TEXT, png, sha256


@pytest.fixture
def keys(evidence_keys):
    """In this module, keys live in the evidence app's own database."""
    return evidence_keys


@pytest.fixture
def deployment(request, evidence_app, tmp_path):
    """An app with its own settings over the evidence app's database, on the same kind of store."""
    store = request.node.callspec.params["evidence_app"]
    database_url = evidence_app.state.settings.resolved_database_url

    @contextmanager
    def build(**overrides):
        settings = evidence_settings_for(store, database_url, tmp_path, request, **overrides)
        with app_client(settings, migrate=False) as client:
            yield client

    return build


def new_case(client, keys) -> dict:
    created = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter))
    assert created.status_code == 201, created.text
    return created.json()


def ask_upload(client, created: dict, data: bytes, size: int | None = None):
    return client.post(
        f"/v1/cases/{created['reference']}/evidence/uploads",
        headers=bearer(created["reporter_token"]),
        json={"filename": "recording.txt", "size": size or len(data), "sha256": sha256(data)},
    )


def send_upload(client, ticket: dict, data: bytes) -> None:
    sender = httpx if ticket["url"].startswith("http://127.0.0.1") else client
    sent = sender.request(ticket["method"], ticket["url"], content=data, headers=ticket["headers"])
    assert sent.status_code in (200, 204), sent.text


def complete(client, created: dict, ticket: dict, token: str | None = None):
    return client.post(
        f"/v1/cases/{created['reference']}/evidence/uploads/{ticket['id']}/complete",
        headers=bearer(token or created["reporter_token"]),
    )


# --- quotas --------------------------------------------------------------------------------------


def test_a_case_holds_at_most_its_quota_of_files_and_a_refusal_keeps_nothing(deployment, keys):
    with deployment(evidence_case_max_files=3) as client:
        created = new_case(client, keys)
        assert (
            upload(client, created, ("a.png", png(), "image/png"), ("b.pdf", PDF, "application/pdf")).status_code == 201
        )
        before = stored_keys(client.app)
        refused = upload(client, created, ("c.txt", TEXT, "text/plain"), ("d.png", png(shade=3), "image/png"))
        body = assert_problem(refused, 413)
        assert "at most 3 files" in body["detail"] and "room for 1 more" in body["detail"]
        assert body["errors"][0]["field"] == "file"
        assert stored_keys(client.app) == before
        assert evidence_rows(client.app, created["reference"]) == 2
        assert upload(client, created, ("c.txt", TEXT, "text/plain")).status_code == 201
        full = assert_problem(upload(client, created, ("d.png", png(shade=3), "image/png")), 413)
        assert "already holds 3 files" in full["detail"]
        assert evidence_rows(client.app, created["reference"]) == 3


def test_a_case_holds_at_most_its_quota_of_bytes_and_reading_stops_there(deployment, keys):
    with deployment(evidence_case_max_bytes=len(TEXT) * 3) as client:
        created = new_case(client, keys)
        assert upload(client, created, ("a.txt", TEXT * 2, "text/plain")).status_code == 201
        before = stored_keys(client.app)
        refused = upload(client, created, ("b.txt", TEXT * 2, "text/plain"))
        body = assert_problem(refused, 413)
        assert "of evidence" in body["detail"] and "room for" in body["detail"]
        assert stored_keys(client.app) == before
        assert evidence_rows(client.app, created["reference"]) == 1
        # Another case has its own quota.
        assert upload(client, new_case(client, keys), ("b.txt", TEXT * 2, "text/plain")).status_code == 201


def test_direct_upload_tickets_count_against_the_quota(deployment, keys):
    with deployment(evidence_case_max_files=2, evidence_case_max_bytes=len(TEXT) * 10) as client:
        created = new_case(client, keys)
        assert ask_upload(client, created, TEXT).status_code == 201
        assert ask_upload(client, created, TEXT).status_code == 201
        body = assert_problem(ask_upload(client, created, TEXT), 413)
        assert "already holds 2 files" in body["detail"] and body["errors"][0]["field"] == "size"
        before = stored_keys(client.app)
        assert_problem(upload(client, created, ("a.txt", TEXT, "text/plain")), 413)  # promised room is taken
        assert stored_keys(client.app) == before
        in_case = 'case_id = (SELECT id FROM "case" WHERE reference = :r)'
        assert count_rows(client.app.state.engine, "evidence_upload", in_case, r=created["reference"]) == 2

        other = new_case(client, keys)
        assert ask_upload(client, other, TEXT, size=len(TEXT) * 6).status_code == 201
        too_big = assert_problem(ask_upload(client, other, TEXT, size=len(TEXT) * 6), 413)
        assert "of evidence" in too_big["detail"]


def test_completing_a_ticket_within_the_quota_keeps_it_counted_once(deployment, keys):
    with deployment(evidence_case_max_files=1) as client:
        created = new_case(client, keys)
        ticket = ask_upload(client, created, TEXT).json()
        send_upload(client, ticket, TEXT)
        assert complete(client, created, ticket).status_code == 201
        assert_problem(ask_upload(client, created, TEXT), 413)
        assert evidence_rows(client.app, created["reference"]) == 1


def test_a_complete_the_quota_no_longer_has_room_for_is_refused_and_leaves_nothing(deployment, keys):
    # A ticket holds its room only under the quota it was given under: a deployment that lowers the quota
    # meanwhile refuses the complete, and the upload's row and the client's object go with the refusal.
    with deployment(evidence_case_max_files=2) as client:
        created = new_case(client, keys)
        ticket = ask_upload(client, created, TEXT).json()
        send_upload(client, ticket, TEXT)
        assert upload(client, created, ("a.png", png(), "image/png")).status_code == 201
        kept_before = stored_keys(client.app)
        same_store = {"s3_bucket": client.app.state.settings.s3_bucket} if client.app.state.settings.s3_bucket else {}
    with deployment(evidence_case_max_files=1, **same_store) as client:
        body = assert_problem(complete(client, created, ticket), 413)
        assert "already holds 1 file" in body["detail"] and body["errors"][0]["field"] == "file"
        assert evidence_rows(client.app, created["reference"]) == 1
        in_case = 'case_id = (SELECT id FROM "case" WHERE reference = :r)'
        assert count_rows(client.app.state.engine, "evidence_upload", in_case, r=created["reference"]) == 0
        assert stored_keys(client.app) < kept_before  # the client's copy is gone, and no verified copy was kept
        refused = "action = 'evidence.upload_refused' AND " + in_case
        assert count_rows(client.app.state.engine, "audit_event", refused, r=created["reference"]) == 1
        assert_problem(complete(client, created, ticket), 404)  # refused once is refused for good


# --- completing once -------------------------------------------------------------------------------


def test_a_retried_complete_answers_the_same_evidence_and_keeps_one(evidence_client, evidence_app, keys):
    created = new_case(evidence_client, keys)
    ticket = ask_upload(evidence_client, created, TEXT).json()
    send_upload(evidence_client, ticket, TEXT)
    first = complete(evidence_client, created, ticket)
    assert first.status_code == 201, first.text
    assert first.json()["id"] == ticket["id"]
    objects_after_first = stored_keys(evidence_app)
    again = complete(evidence_client, created, ticket)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert stored_keys(evidence_app) == objects_after_first
    assert evidence_rows(evidence_app, created["reference"]) == 1
    # Only the caller who completed it is told: the submitter key that made the case gets the 404 anyone would.
    assert_problem(complete(evidence_client, created, ticket, token=keys.submitter), 404)


def test_simultaneous_completes_keep_one_evidence_and_all_answer_it(evidence_client, evidence_app, keys):
    created = new_case(evidence_client, keys)
    ticket = ask_upload(evidence_client, created, TEXT).json()
    send_upload(evidence_client, ticket, TEXT)
    before = stored_keys(evidence_app)
    start = threading.Barrier(4)
    answers: list = []

    def finish():
        start.wait()
        answers.append(complete(evidence_client, created, ticket))

    threads = [threading.Thread(target=finish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [answer.status_code for answer in answers] == [201] * 4, [answer.text for answer in answers]
    assert {answer.json()["id"] for answer in answers} == {ticket["id"]}
    assert evidence_rows(evidence_app, created["reference"]) == 1
    # One verified copy kept (the others' removed) and the client's upload gone.
    evidence_key = query_scalar(
        evidence_app.state.engine, "SELECT object_key FROM evidence WHERE id = :i", i=ticket["id"]
    )
    after = stored_keys(evidence_app)
    assert after - before == {evidence_key}
    assert len(before - after) == 1


# --- anonymous callers: the form and publishable keys --------------------------------------------

WEBSITE = "https://www.force.example"


def report_with_files(client, token: str, files: list[tuple[str, bytes, str]], headers=None):
    return client.post(
        "/v1/cases",
        headers={**bearer(token), **(headers or {})},
        data={"reporter.relationship": "self", "account": "Synthetic report with files"},
        files=[("evidence", file) for file in files],
    )


def test_a_publishable_key_may_bring_fewer_and_smaller_files_than_a_secret_key(deployment, keys):
    limits = {"anonymous_evidence_max_files": 2, "anonymous_evidence_max_bytes": len(TEXT) * 2}
    with deployment(**limits) as client:
        publishable = create_key(client.app.state.engine, "submitter", "force website", origins=[WEBSITE])
        from_site = {"Origin": WEBSITE}
        three = [("a.txt", TEXT, "text/plain"), ("b.pdf", PDF, "application/pdf"), ("c.png", png(), "image/png")]
        before = stored_keys(client.app)
        cases_before = count_rows(client.app.state.engine, "case")
        too_many = assert_problem(report_with_files(client, publishable, three, from_site), 422)
        assert too_many["errors"] == [{"field": "evidence", "message": "Send at most 2 files with a report."}]
        too_large = assert_problem(
            report_with_files(client, publishable, [("long.txt", TEXT * 3, "text/plain")], from_site), 413
        )
        assert "long.txt" in too_large["detail"] and "limit" in too_large["detail"]
        assert stored_keys(client.app) == before
        assert count_rows(client.app.state.engine, "case") == cases_before
        assert report_with_files(client, publishable, three[:2], from_site).status_code == 201
        # A secret key (a force's or partner's server) keeps the larger allowance.
        secret = report_with_files(client, keys.submitter, [*three, ("long.txt", TEXT * 3, "text/plain")])
        assert secret.status_code == 201, secret.text


def test_a_publishable_keys_files_together_are_bounded(deployment, keys):
    with deployment(anonymous_evidence_total_bytes=len(TEXT) * 3) as client:
        publishable = create_key(client.app.state.engine, "submitter", "force website", origins=[WEBSITE])
        before = stored_keys(client.app)
        files = [("a.txt", TEXT * 2, "text/plain"), ("b.txt", TEXT * 2, "text/plain")]
        refused = assert_problem(report_with_files(client, publishable, files, {"Origin": WEBSITE}), 413)
        assert "the most a report can bring" in refused["detail"]
        assert stored_keys(client.app) == before


def test_uploads_at_once_can_not_both_take_the_last_of_the_quota(deployment, keys):
    with deployment(evidence_case_max_files=2) as client:
        created = new_case(client, keys)
        assert upload(client, created, ("a.txt", TEXT, "text/plain")).status_code == 201
        start = threading.Barrier(6)
        answers: list = []

        def send(n: int) -> None:
            start.wait()
            answers.append(upload(client, created, (f"{n}.txt", TEXT + bytes([65 + n]), "text/plain")))

        threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(answer.status_code for answer in answers) == [201] + [413] * 5, [a.text for a in answers]
        assert evidence_rows(client.app, created["reference"]) == 2

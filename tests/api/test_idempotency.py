"""Idempotency-Key on creating POSTs: one record per key, the first answer on every retry."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from Crypto.Cipher import AES

from service.storage.idempotency import IdempotencyRecordUnreadable, open_sealed, seal, sealing_key
from tests.support.apps import app_client
from tests.support.cases import MINIMAL_CASE
from tests.support.database import query_rows
from tests.support.http import assert_problem, bearer


def cases_with_account(settings, account: str) -> int:
    rows = query_rows(settings.resolved_database_url, 'SELECT submission FROM "case"')
    submissions = [row.submission for row in rows]
    return sum(1 for row in submissions if (json.loads(row) if isinstance(row, str) else row)["account"] == account)


def test_second_post_with_same_idempotency_key_returns_first_case(client, keys, settings):
    key = str(uuid.uuid4())
    body = {**MINIMAL_CASE, "account": f"synthetic {key}"}
    headers = {**bearer(keys.submitter), "Idempotency-Key": key}
    first = client.post("/v1/cases", json=body, headers=headers)
    second = client.post("/v1/cases", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()  # the reporter token too: a lost first answer is not a lost token
    assert first.headers["location"] == second.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert cases_with_account(settings, body["account"]) == 1


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "This can't be empty."),
        ("two words", "Use printable ASCII characters without spaces, like a UUID."),
        ("k" * 256, "This is too long: at most 255 characters."),
    ],
)
def test_an_idempotency_key_not_fit_to_be_one_is_a_422_naming_it_and_nothing_is_kept(
    client, keys, settings, given, message
):
    account = f"synthetic {uuid.uuid4()}"
    response = client.post(
        "/v1/cases",
        json={**MINIMAL_CASE, "account": account},
        headers={**bearer(keys.submitter), "Idempotency-Key": given},
    )
    assert assert_problem(response, 422)["errors"] == [{"field": "Idempotency-Key", "message": message}]
    assert cases_with_account(settings, account) == 0


def test_same_key_with_a_different_body_is_422(client, keys):
    key = str(uuid.uuid4())
    headers = {**bearer(keys.submitter), "Idempotency-Key": key}
    assert client.post("/v1/cases", json=MINIMAL_CASE, headers=headers).status_code == 201
    response = client.post("/v1/cases", json={**MINIMAL_CASE, "threats": "different"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_the_same_report_as_json_or_form_is_the_same_request(client, keys):
    key = str(uuid.uuid4())
    headers = {**bearer(keys.submitter), "Idempotency-Key": key}
    first = client.post("/v1/cases", json=MINIMAL_CASE, headers=headers)
    again = client.post(
        "/v1/cases", data={"reporter.relationship": "self", "account": MINIMAL_CASE["account"]}, headers=headers
    )
    assert again.json()["reference"] == first.json()["reference"]


def test_keys_belong_to_their_caller(client, keys):
    key = str(uuid.uuid4())
    mine = client.post("/v1/cases", json=MINIMAL_CASE, headers={**bearer(keys.submitter), "Idempotency-Key": key})
    theirs = client.post(
        "/v1/cases", json=MINIMAL_CASE, headers={**bearer(keys.other_submitter), "Idempotency-Key": key}
    )
    assert theirs.status_code == 201
    assert theirs.json()["reference"] != mine.json()["reference"]


def test_a_failed_request_does_not_use_up_its_key(client, keys):
    key = str(uuid.uuid4())
    headers = {**bearer(keys.submitter), "Idempotency-Key": key}
    assert client.post("/v1/cases", json={"reporter": {"relationship": "self"}}, headers=headers).status_code == 422
    assert client.post("/v1/cases", json=MINIMAL_CASE, headers=headers).status_code == 201


def test_a_malformed_key_is_422_naming_the_header(client, keys):
    response = client.post(
        "/v1/cases", json=MINIMAL_CASE, headers={**bearer(keys.submitter), "Idempotency-Key": "has spaces in it"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_concurrent_retries_with_one_key_make_exactly_one_case(app, keys, settings):
    key = str(uuid.uuid4())
    body = {**MINIMAL_CASE, "account": f"synthetic concurrent {key}"}
    headers = {**bearer(keys.submitter), "Idempotency-Key": key}
    with app_client(app, raise_server_exceptions=True) as local, ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda _: local.post("/v1/cases", json=body, headers=headers), range(32)))
    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["reference"] for response in responses}) == 1
    assert cases_with_account(settings, body["account"]) == 1


def test_answers_sealed_before_the_change_of_cipher_library_still_open_and_new_ones_keep_the_format():
    # Kept answers outlive a deploy: nonce + tag + ciphertext, AES-256-GCM, whichever library wrote them.
    key = sealing_key("isk_synthetic_secret", "retry-1")
    answer = {"body": {"reference": "7KQM-X4TR-9PZC", "note": "é"}, "headers": {"Location": "/v1/cases/x"}}
    nonce = bytes(range(12))
    ciphertext, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(
        json.dumps(answer, separators=(",", ":")).encode()
    )
    assert open_sealed(key, nonce + tag + ciphertext) == answer

    sealed = seal(key, answer)
    nonce, tag, ciphertext = sealed[:12], sealed[12:28], sealed[28:]
    assert json.loads(AES.new(key, AES.MODE_GCM, nonce=nonce).decrypt_and_verify(ciphertext, tag)) == answer
    with pytest.raises(IdempotencyRecordUnreadable):
        open_sealed(sealing_key("isk_other_secret", "retry-1"), sealed)

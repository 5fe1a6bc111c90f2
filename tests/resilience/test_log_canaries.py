"""No personal data or evidence in the logs, at the most talkative log level, errors and tracebacks included.

A live `intake serve` on PostgreSQL and S3 (moto over HTTP) takes reports full of canary values,
through every path that might log: intake, validation failures, identifiers, evidence, an analyst's
reads and export, an upload cut off half-way and one made while the evidence store is down. Then the
whole captured log is searched for every canary.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from devsupport.s3 import CREDENTIALS, S3Server
from devsupport.servers import UNLIMITED_ENVIRONMENT, start_service
from service.cli import upgrade_database
from tests.support.database import make_keys
from tests.support.http import bearer

pytestmark = [pytest.mark.postgres]

CANARIES = {
    "name": "Canaryname Zqxjvbw",
    "email": "canary.zqxjvbw@example.org",
    "phone": "+447911123456",
    "mtcn": "8137264950",
    "account": "canary-account-text-zqxjvbw",
    "payment_reference": "CANARYREF5531",
    "file": "canary-file-bytes-zqxjvbw",
    "skype": "live:canary_zqxjvbw",
    "note": "canary-note-zqxjvbw",
    "reason": "canary-access-reason-zqxjvbw",
}
# The same values as they may appear once normalised or re-encoded.
NEEDLES = [*CANARIES.values(), "7911123456", "813-726-4950", "Zqxjvbw".lower()]


def report() -> dict:
    return {
        "reporter": {
            "relationship": "self",
            "name": CANARIES["name"],
            "email": CANARIES["email"],
            "phone": CANARIES["phone"],
        },
        "account": CANARIES["account"],
        "payments": [{"amount": "50", "currency": "GBP", "reference": CANARIES["payment_reference"]}],
        "identifiers": [{"type": "mtcn", "value": CANARIES["mtcn"]}],
    }


def cut_off_upload(base: str, reference: str, token: str) -> None:
    """Send half a multipart body full of canary bytes, then hang up."""
    host, port = base.removeprefix("http://").split(":")
    boundary = "canary-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{CANARIES["file"]}.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    body = head + (CANARIES["file"] + "\n").encode() * 2000
    request = (
        f"POST /v1/cases/{reference}/evidence HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body) * 4}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(request + body)


def test_no_canary_reaches_the_logs_even_at_debug_level(postgres_server, tmp_path):
    database_url = postgres_server.create_database("intake_canaries")
    upgrade_database(database_url)
    keys = make_keys(database_url)
    s3 = S3Server().start()
    log_path = tmp_path / "server.log"
    environment = {
        **CREDENTIALS,
        **UNLIMITED_ENVIRONMENT,
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_DATA_DIR": str(tmp_path / "data"),
        "INTAKE_LOG_LEVEL": "DEBUG",
        "INTAKE_EVIDENCE_STORE": "s3",
        "INTAKE_S3_ENDPOINT_URL": s3.endpoint,
        "INTAKE_S3_BUCKET": "canaries",
        "INTAKE_S3_CREATE_BUCKET": "true",
        "INTAKE_S3_ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "INTAKE_S3_SECRET_ACCESS_KEY": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
    process, base = start_service(environment, log_path)
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            submitter, analyst = bearer(keys.submitter), {**bearer(keys.analyst), "X-Access-Reason": CANARIES["reason"]}
            created = http.post("/v1/cases", json=report(), headers=submitter)
            assert created.status_code == 201, created.text
            case = created.json()
            reference, reporter = case["reference"], bearer(case["reporter_token"])

            bad = {**report(), "reporter": {"relationship": "self", "email": CANARIES["email"] + "@@"}}
            assert http.post("/v1/cases", json=bad, headers=submitter).status_code == 422
            bad_phone = [{"type": "phone", "value": CANARIES["phone"] + "999999"}]
            assert http.post(f"/v1/cases/{reference}/identifiers", json=bad_phone, headers=reporter).status_code == 422
            skype = [{"type": "skype_id", "value": CANARIES["skype"]}]
            assert http.post(f"/v1/cases/{reference}/identifiers", json=skype, headers=reporter).status_code == 201
            files = [("file", (f"{CANARIES['file']}.txt", CANARIES["file"].encode() * 100, "text/plain"))]
            uploaded = http.post(f"/v1/cases/{reference}/evidence", files=files, headers=reporter)
            assert uploaded.status_code == 201, uploaded.text
            evidence_id = uploaded.json()["evidence"][0]["id"]

            assert http.get(f"/v1/cases/{reference}", headers=analyst).status_code == 200
            note = {"body": CANARIES["note"]}
            assert http.post(f"/v1/cases/{reference}/notes", json=note, headers=analyst).status_code == 201
            assert http.get(f"/v1/identifiers?normalized={CANARIES['mtcn']}", headers=analyst).status_code == 200
            assert http.get(f"/v1/cases?identifier={CANARIES['mtcn']}", headers=analyst).status_code == 200
            assert http.get("/v1/cases/export?format=csv", headers=analyst).status_code == 200
            content = http.get(f"/v1/cases/{reference}/evidence/{evidence_id}/content", headers=analyst)
            assert CANARIES["file"].encode() in content.content

            cut_off_upload(base, reference, case["reporter_token"])
            s3.stop()  # the store goes away: retries, errors and their tracebacks
            down = http.post(f"/v1/cases/{reference}/evidence", files=files, headers=reporter)
            assert down.status_code == 503
    finally:
        process.terminate()
        process.wait(timeout=10)
        s3.stop()

    log = log_path.read_text(errors="replace")
    lines = [line for line in log.splitlines() if line.strip()]
    requests = [json.loads(line) for line in lines if line.startswith('{"event": "request"')]
    assert len(requests) >= 12, log[-3000:]
    assert {"request_id", "route", "status", "duration_ms", "key_id"} <= set(requests[0])
    assert "/v1/cases/{reference}/evidence" in {entry["route"] for entry in requests}
    assert '"event": "evidence_store_unavailable"' in log  # operators still hear of the outage
    assert "StringToSign" not in log and "Authorization" not in log  # no library's request dumps
    leaked = [needle for needle in NEEDLES if needle.lower() in log.lower()]
    assert leaked == [], (
        f"found {leaked} in the log:\n"
        + "\n".join(line for line in lines if any(needle.lower() in line.lower() for needle in leaked))[:5000]
    )
    for secret in (keys.submitter, keys.analyst, case["reporter_token"]):
        assert secret not in log

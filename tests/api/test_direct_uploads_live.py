"""Direct uploads to the local store, against `intake serve` in its own process (both databases)."""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
from urllib.parse import urlsplit

import httpx

from tests.support.apps import running_service
from tests.support.cases import MINIMAL_CASE
from tests.support.http import bearer
from tests.support.synthetic import TEXT


def new_ticket(base: str, submitter: str, data: bytes) -> tuple[dict, dict]:
    created = httpx.post(f"{base}/v1/cases", json=MINIMAL_CASE, headers=bearer(submitter)).json()
    ticket = httpx.post(
        f"{base}/v1/cases/{created['reference']}/evidence/uploads",
        json={"filename": "chat.txt", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        headers=bearer(created["reporter_token"]),
    )
    assert ticket.status_code == 201, ticket.text
    return created, ticket.json()


def test_a_direct_upload_put_answers_a_clean_204_and_keeps_the_connection(database_url, tmp_path):
    with running_service(database_url, tmp_path) as (base, keys):
        _, ticket = new_ticket(base, keys.submitter, TEXT)
        target = urlsplit(ticket["url"])
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        connection.request("PUT", f"{target.path}?{target.query}", body=TEXT)
        answer = connection.getresponse()
        assert answer.status == 204
        assert answer.read() == b""
        assert answer.getheader("content-length") in (None, "0")
        connection.request("GET", "/healthz")  # the same keep-alive connection carries the next request
        assert connection.getresponse().status == 200
        connection.close()
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-5000:]


def test_a_slow_put_that_ends_after_complete_can_not_replace_the_evidence(database_url, tmp_path):
    """The race the review found: a second PUT begun before `complete` and finished after it."""
    with running_service(database_url, tmp_path) as (base, keys):
        created, ticket = new_ticket(base, keys.submitter, TEXT)
        assert httpx.put(ticket["url"], content=TEXT).status_code == 204
        replacement = b"<html>" + b"x" * (len(TEXT) - 6)
        release = threading.Event()
        outcome: dict = {}

        def slow_body():
            yield replacement[:10]
            release.wait(20)
            yield replacement[10:]

        def slow_put():
            try:
                outcome["status"] = httpx.put(ticket["url"], content=slow_body(), timeout=30).status_code
            except httpx.TransportError as error:
                outcome["status"] = type(error).__name__

        sender = threading.Thread(target=slow_put)
        sender.start()
        time.sleep(0.5)  # the slow PUT is now under way, past the service's first look at the upload
        completed = httpx.post(
            f"{base}/v1/cases/{created['reference']}/evidence/uploads/{ticket['id']}/complete",
            headers=bearer(created["reporter_token"]),
        )
        assert completed.status_code == 201, completed.text
        release.set()
        sender.join(30)
        assert outcome["status"] == 409
        content = httpx.get(
            f"{base}/v1/cases/{created['reference']}/evidence/{completed.json()['id']}/content",
            headers=bearer(keys.analyst),
        )
        assert content.status_code == 200 and content.content == TEXT


def test_completes_sent_at_once_to_two_processes_keep_one_evidence(database_url, tmp_path):
    """Two `intake serve` processes on one database and one evidence folder: the claim on the upload's
    row, not anything in a process, decides which call keeps the evidence."""
    shared = {"INTAKE_EVIDENCE_DIR": str(tmp_path / "evidence")}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_service(database_url, tmp_path / "a", **shared) as (first, keys),
        running_service(database_url, tmp_path / "b", **shared) as (second, _),
    ):
        created, ticket = new_ticket(first, keys.submitter, TEXT)
        assert httpx.put(ticket["url"], content=TEXT).status_code == 204
        path = f"/v1/cases/{created['reference']}/evidence/uploads/{ticket['id']}/complete"
        start = threading.Barrier(6)
        answers: list[httpx.Response] = []

        def finish(base: str) -> None:
            start.wait()
            answers.append(httpx.post(f"{base}{path}", headers=bearer(created["reporter_token"]), timeout=60))

        threads = [threading.Thread(target=finish, args=(base,)) for base in (first, second) * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert [answer.status_code for answer in answers] == [201] * 6, [answer.text for answer in answers]
        assert {answer.json()["id"] for answer in answers} == {ticket["id"]}
        listed = httpx.get(f"{second}/v1/cases/{created['reference']}/evidence", headers=bearer(keys.analyst))
        assert [item["id"] for item in listed.json()["evidence"]] == [ticket["id"]]
        kept = [path for path in (tmp_path / "evidence").rglob("*") if path.is_file() and ".partial" not in path.parts]
        assert len(kept) == 1  # the evidence's copy: the others' copies and the client's upload are gone
    for name in ("a", "b"):
        log = (tmp_path / name / "server.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-5000:]

"""Two `intake serve` processes, two workers each, on one PostgreSQL, one S3 server and one Redis, as two
replicas of a deployment run: what one process grants or signs holds on the other, nothing happens twice."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from devsupport.postgres import free_port
from devsupport.s3 import CREDENTIALS
from devsupport.servers import UNLIMITED_ENVIRONMENT, start_service
from service.cli import upgrade_database
from tests.support.cases import MINIMAL_CASE
from tests.support.database import count_rows, create_key, make_keys
from tests.support.http import bearer
from tests.support.report_form import MINIMAL, NO_FILE, form_token
from tests.support.synthetic import png

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REPORTS_PER_KEY = 6


class WebhookReceiver:
    """A partner's alert endpoint: keeps every delivery it is sent."""

    def __init__(self) -> None:
        self.deliveries: list[dict] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def about(self, reference: str) -> list[dict]:
        return [delivery for delivery in self.deliveries if reference in json.dumps(delivery)]


@pytest.fixture(scope="module")
def replicas(postgres_server, s3_server, redis_server, tmp_path_factory) -> Iterator[dict]:
    database_url = postgres_server.create_database("intake_replicas")
    upgrade_database(database_url)
    receiver = WebhookReceiver()
    environment = {
        **UNLIMITED_ENVIRONMENT,
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_EVIDENCE_STORE": "s3",
        "INTAKE_S3_ENDPOINT_URL": s3_server.endpoint,
        "INTAKE_S3_BUCKET": "replicas-evidence",
        "INTAKE_S3_CREATE_BUCKET": "true",
        "INTAKE_S3_ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "INTAKE_S3_SECRET_ACCESS_KEY": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "INTAKE_RATE_LIMIT_STORAGE_URL": redis_server.url,
        "INTAKE_RATE_CASE_CREATION_PER_KEY": f"{REPORTS_PER_KEY}/minute",
        "INTAKE_WEBHOOK_URL": receiver.url,
        "INTAKE_WEBHOOK_SECRET": "synthetic-replica-webhook-signing-key",
        "INTAKE_WEBHOOK_POLL_SECONDS": "0.2",
        "INTAKE_LOG_LEVEL": "WARNING",
    }
    folders = [tmp_path_factory.mktemp(f"replica-{name}") for name in ("one", "two")]
    with ThreadPoolExecutor(2) as starting:  # side by side: a worker takes a while to start on a busy machine
        started = list(
            starting.map(
                lambda folder: start_service({**environment, "INTAKE_DATA_DIR": str(folder)}, folder / "log", 2),
                folders,
            )
        )
    processes = [process for process, _ in started]
    bases = [base for _, base in started]
    try:
        keys = make_keys(database_url)
        yield {"bases": bases, "keys": keys, "database_url": database_url, "receiver": receiver}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        receiver.server.shutdown()


def test_a_limit_holds_across_both_processes_whichever_answers(replicas):
    one, two = replicas["bases"]
    key = create_key(replicas["database_url"], "submitter", "partner server")
    statuses = []
    for n in range(REPORTS_PER_KEY + 2):
        base = (one, two)[n % 2]
        # A new connection each time, so that any of the four workers may answer it.
        statuses.append(httpx.post(base + "/v1/cases", json=MINIMAL_CASE, headers=bearer(key), timeout=30).status_code)
    assert statuses == [201] * REPORTS_PER_KEY + [429, 429]


def test_a_form_page_from_one_process_is_accepted_by_the_other(replicas):
    one, two = replicas["bases"]
    page = httpx.get(one + "/report", timeout=30)
    sent = httpx.post(
        two + "/report",
        data={"form_token": form_token(page.text), **MINIMAL},
        files=NO_FILE,
        headers={"Sec-Fetch-Site": "same-origin"},
        timeout=30,
    )
    assert sent.status_code == 303, sent.text
    confirmation = httpx.get(two + sent.headers["location"], timeout=30)
    assert confirmation.status_code == 200


def test_evidence_sent_to_one_process_is_read_through_a_link_from_the_other(replicas):
    one, two = replicas["bases"]
    keys = replicas["keys"]
    case = httpx.post(one + "/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter), timeout=30).json()
    image = png()
    sent = httpx.post(
        two + f"/v1/cases/{case['reference']}/evidence",
        files=[("file", ("screenshot.png", image, "image/png"))],
        headers=bearer(case["reporter_token"]),
        timeout=60,
    )
    assert sent.status_code == 201, sent.text
    evidence_id = sent.json()["evidence"][0]["id"]
    link = httpx.post(
        one + f"/v1/cases/{case['reference']}/evidence/{evidence_id}/link",
        headers={**bearer(keys.analyst), "X-Access-Reason": "two-process test"},
        timeout=30,
    )
    assert link.status_code == 201, link.text
    assert httpx.get(link.json()["url"], timeout=30).content == image
    content = httpx.get(
        two + f"/v1/cases/{case['reference']}/evidence/{evidence_id}/content",
        headers={**bearer(keys.analyst), "X-Access-Reason": "two-process test"},
        timeout=30,
    )
    assert content.content == image


def test_an_urgent_case_is_alerted_exactly_once_by_four_workers(replicas):
    one, _ = replicas["bases"]
    receiver: WebhookReceiver = replicas["receiver"]
    urgent = {**MINIMAL_CASE, "victim": {"age": 15}}
    key = create_key(replicas["database_url"], "submitter", "urgent reporter")
    case = httpx.post(one + "/v1/cases", json=urgent, headers=bearer(key), timeout=30)
    assert case.status_code == 201 and case.json()["priority"] == "urgent"
    reference = case.json()["reference"]
    deadline = time.monotonic() + 30
    while not receiver.about(reference) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # ten more polls by every worker: a second delivery would have come by now
    assert len(receiver.about(reference)) == 1


def test_retries_spread_over_both_processes_make_one_case(replicas):
    bases = replicas["bases"]
    database_url = replicas["database_url"]
    key = create_key(database_url, "submitter", "retrying partner")
    headers = {**bearer(key), "Idempotency-Key": "retried-across-replicas"}
    body = {**MINIMAL_CASE, "account": "Synthetic account retried against every replica at once."}
    cases_before = count_rows(database_url, "case")

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as http:
            return await asyncio.gather(
                *(http.post(bases[n % 2] + "/v1/cases", json=body, headers=headers) for n in range(REPORTS_PER_KEY))
            )

    responses = asyncio.run(send_all())
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {201, 200}, statuses
    assert len({response.json()["reference"] for response in responses}) == 1
    assert count_rows(database_url, "case") == cases_before + 1

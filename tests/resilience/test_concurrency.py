"""Many clients at once, on a live server over PostgreSQL: retries make one case, and no update is lost."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.support.apps import running_service
from tests.support.cases import MINIMAL_CASE
from tests.support.database import audit_events, count_rows
from tests.support.http import bearer

pytestmark = [pytest.mark.postgres]


@pytest.fixture(scope="module")
def live(postgres_server, tmp_path_factory):
    database_url = postgres_server.create_database("intake_concurrency")
    with running_service(database_url, tmp_path_factory.mktemp("concurrency")) as (base, keys):
        yield base, keys, database_url


async def at_once(count: int, send) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        return await asyncio.gather(*(send(http, n) for n in range(count)))


def test_200_concurrent_retries_with_one_idempotency_key_make_one_case_and_the_same_answer(live):
    base, keys, database_url = live
    cases_before = count_rows(database_url, "case")
    headers = {**bearer(keys.submitter), "Idempotency-Key": "one-report-sent-200-times"}
    body = {**MINIMAL_CASE, "account": "Synthetic account sent by a client that retries in a panic."}

    responses = asyncio.run(at_once(200, lambda http, _: http.post(base + "/v1/cases", json=body, headers=headers)))

    statuses = Counter(response.status_code for response in responses)
    print(f"200 concurrent posts with one Idempotency-Key: {dict(statuses)}")
    assert set(statuses) <= {201, 409}, statuses  # 409: the first is still in flight (IETF draft, 2.6)
    answers = {response.content for response in responses if response.status_code == 201}
    assert len(answers) == 1, "every 201 must be the same answer, byte for byte"
    assert count_rows(database_url, "case") == cases_before + 1


def test_concurrent_identifier_additions_are_all_kept(live):
    base, keys, database_url = live
    case = httpx.post(base + "/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()

    def add(http: httpx.AsyncClient, n: int):
        return http.post(
            f"{base}/v1/cases/{case['reference']}/identifiers",
            json=[{"type": "email", "value": f"offender{n}@example.net"}],
            headers=bearer(case["reporter_token"]),
        )

    responses = asyncio.run(at_once(40, add))

    assert [response.status_code for response in responses] == [201] * 40
    stored = httpx.get(f"{base}/v1/cases/{case['reference']}", headers=bearer(keys.analyst)).json()
    assert sorted(identifier["normalized"] for identifier in stored["identifiers"]) == sorted(
        f"offender{n}@example.net" for n in range(40)
    )


def test_concurrent_status_changes_from_one_version_let_exactly_one_through(live):
    base, keys, database_url = live
    case = httpx.post(base + "/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
    read = httpx.get(f"{base}/v1/cases/{case['reference']}", headers=bearer(keys.analyst))
    etag = read.headers["etag"]

    def triage(http: httpx.AsyncClient, n: int):
        return http.post(
            f"{base}/v1/cases/{case['reference']}/status",
            json={"status": "triaged"},
            headers={**bearer(keys.analyst), "If-Match": etag},
        )

    responses = asyncio.run(at_once(30, triage))

    statuses = Counter(response.status_code for response in responses)
    assert statuses[200] == 1, statuses
    assert set(statuses) == {200, 412}, statuses  # the others were told the case changed under them
    after = httpx.get(f"{base}/v1/cases/{case['reference']}", headers=bearer(keys.analyst))
    assert after.headers["etag"] != etag
    assert after.json()["status"] == "triaged"
    changes = [event for event in audit_events(database_url, case["reference"]) if event.action == "case.status"]
    assert len(changes) == 1


def test_concurrent_notes_are_all_kept_in_order_of_arrival(live):
    base, keys, _ = live
    case = httpx.post(base + "/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()

    def note(http: httpx.AsyncClient, n: int):
        return http.post(
            f"{base}/v1/cases/{case['reference']}/notes",
            json={"body": f"Synthetic note {n}."},
            headers=bearer(keys.analyst),
        )

    responses = asyncio.run(at_once(30, note))

    assert [response.status_code for response in responses] == [201] * 30
    notes = httpx.get(f"{base}/v1/cases/{case['reference']}/notes", headers=bearer(keys.analyst)).json()
    assert sorted(item["body"] for item in notes["notes"]) == sorted(f"Synthetic note {n}." for n in range(30))

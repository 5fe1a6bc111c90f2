"""Status changes, assignment and notes: legal moves only, and no silent overwrites."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from tests.support.apps import app_client
from tests.support.database import database_engine
from tests.support.http import bearer


def read(client, keys, reference):
    response = client.get(f"/v1/cases/{reference}", headers=bearer(keys.analyst))
    return response.json(), response.headers["etag"]


def move(client, keys, reference, etag, **body):
    headers = {**bearer(keys.analyst), **({"If-Match": etag} if etag else {})}
    return client.post(f"/v1/cases/{reference}/status", json=body, headers=headers)


def test_a_case_is_triaged_assigned_closed_and_reopened(client, keys, new_case):
    reference = new_case()["reference"]
    _, etag = read(client, keys, reference)
    for status, extra in [
        ("triaged", {}),
        ("assigned", {"assigned_to": "DC Example"}),
        ("closed", {}),
        ("triaged", {}),
    ]:
        response = move(client, keys, reference, etag, status=status, **extra)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        etag = response.headers["etag"]
    case, _ = read(client, keys, reference)
    assert case["version"] == 5 and case["assigned_to"] is None


def test_an_impossible_move_is_409_naming_the_possible_ones(client, keys, new_case):
    reference = new_case()["reference"]
    _, etag = read(client, keys, reference)
    response = move(client, keys, reference, etag, status="assigned", assigned_to="x")
    assert response.status_code == 409
    assert "triaged" in response.json()["detail"] and "closed" in response.json()["detail"]


def test_assigning_needs_a_name(client, keys, new_case):
    reference = new_case()["reference"]
    _, etag = read(client, keys, reference)
    etag = move(client, keys, reference, etag, status="triaged").headers["etag"]
    response = move(client, keys, reference, etag, status="assigned")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "assigned_to"


def test_a_change_without_if_match_is_428_and_with_a_stale_one_412(client, keys, new_case):
    reference = new_case()["reference"]
    _, etag = read(client, keys, reference)
    assert move(client, keys, reference, None, status="triaged").status_code == 428
    assert move(client, keys, reference, etag, status="triaged").status_code == 200
    stale = move(client, keys, reference, etag, status="closed")  # someone moved it meanwhile
    assert stale.status_code == 412
    assert read(client, keys, reference)[0]["status"] == "triaged"


def test_of_two_analysts_acting_on_one_reading_exactly_one_wins(app, keys, new_case):
    reference = new_case()["reference"]
    with app_client(app, raise_server_exceptions=True) as local:
        _, etag = read(local, keys, reference)
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: move(local, keys, reference, etag, status="triaged").status_code, range(8))
            )
    assert sorted(answers) == [200] + [412] * 7


@pytest.mark.parametrize("who", ["submitter", "admin"])
def test_only_analysts_work_cases(client, keys, new_case, who):
    reference = new_case()["reference"]
    response = client.post(
        f"/v1/cases/{reference}/status",
        json={"status": "triaged"},
        headers={**bearer(getattr(keys, who)), "If-Match": "*"},
    )
    assert response.status_code == 403


def test_notes_are_kept_in_order_and_never_edited(client, keys, new_case, settings):
    reference = new_case()["reference"]
    for body in ("Called the victim; safe for now.", "Western Union asked to recall the transfer."):
        assert (
            client.post(f"/v1/cases/{reference}/notes", json={"body": body}, headers=bearer(keys.analyst)).status_code
            == 201
        )
    notes = client.get(f"/v1/cases/{reference}/notes", headers=bearer(keys.analyst)).json()["notes"]
    assert [note["body"] for note in notes] == [
        "Called the victim; safe for now.",
        "Western Union asked to recall the transfer.",
    ]
    with (
        database_engine(settings.resolved_database_url) as engine,
        pytest.raises(sa.exc.DatabaseError, match="append-only"),
        engine.begin() as connection,
    ):
        connection.execute(sa.text("UPDATE case_note SET body = 'rewritten'"))
    assert (
        client.post(f"/v1/cases/{reference}/notes", json={"body": ""}, headers=bearer(keys.analyst)).status_code == 422
    )

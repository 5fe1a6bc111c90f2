"""A child's case stays a child's case: under_18 is decided when the report came in and kept.

The clock really moves (time-machine moves every clock in the process, the app's threads too): the
victim turns 18 and more, and every path that decides urgency again runs after that birthday, on
both databases and both evidence stores.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from tests.support.cases import MINIMAL_CASE
from tests.support.http import bearer
from tests.support.synthetic import png

YEARS_LATER = timedelta(days=3 * 365 + 1)


@pytest.fixture
def keys(evidence_keys):
    """In this module, keys live in the evidence app's own database."""
    return evidence_keys


def born_seventeen_and_a_half_years_ago() -> str:
    return (date.today() - timedelta(days=round(17.5 * 365.25))).isoformat()


def unique_mtcn() -> str:
    return str(uuid.uuid4().int)[:10]


def test_a_birthday_never_lifts_under_18_or_the_protection_of_the_evidence(evidence_client, keys, child_analyst_key):
    client = evidence_client
    mtcn = unique_mtcn()
    created = client.post(
        "/v1/cases",
        json={**MINIMAL_CASE, "victim": {"date_of_birth": born_seventeen_and_a_half_years_ago()}},
        headers=bearer(keys.submitter),
    ).json()
    assert [flag["code"] for flag in created["flags"]] == ["under_18"]
    reference, reporter = created["reference"], bearer(created["reporter_token"])
    files = [("file", ("first.png", png(shade=3), "image/png"))]
    first_file = client.post(f"/v1/cases/{reference}/evidence", files=files, headers=reporter).json()

    with time_machine.travel(datetime.now(UTC) + YEARS_LATER, tick=True):
        # Every re-decision, after the victim's 20th birthday: the reporter adds an identifier, an
        # offender reports that identifier in a case of their own, the reporter adds another.
        identifiers = f"/v1/cases/{reference}/identifiers"
        assert client.post(identifiers, json={"type": "mtcn", "value": mtcn}, headers=reporter).status_code == 201
        offender = {**MINIMAL_CASE, "identifiers": [{"type": "mtcn", "value": mtcn}]}
        assert client.post("/v1/cases", json=offender, headers=bearer(keys.other_submitter)).status_code == 201
        another = {"type": "email", "value": "offender@example.net"}
        assert client.post(identifiers, json=another, headers=reporter).status_code == 201
        files = [("file", ("later.png", png(shade=4), "image/png"))]
        later_file = client.post(f"/v1/cases/{reference}/evidence", files=files, headers=reporter).json()

        case = client.get(f"/v1/cases/{reference}", headers=bearer(keys.analyst)).json()
        assert {flag["code"] for flag in case["flags"]} == {"under_18", "repeat_identifier"}
        assert case["priority"] == "urgent"
        for evidence in (first_file, later_file):
            content = f"/v1/cases/{reference}/evidence/{evidence['evidence'][0]['id']}/content"
            assert client.get(content, headers=bearer(keys.analyst)).status_code == 403
            reason = {"X-Access-Reason": "triage of an urgent child case"}
            assert client.get(content, headers={**bearer(child_analyst_key), **reason}).status_code == 200
        urgent_children = client.get(
            "/v1/cases", params={"flag": "under_18", "identifier": mtcn}, headers=bearer(keys.analyst)
        ).json()
        assert [item["reference"] for item in urgent_children["cases"]] == [reference]


def test_an_adult_case_stays_an_adult_case(evidence_client, keys):
    adult = evidence_client.post(
        "/v1/cases", json={**MINIMAL_CASE, "victim": {"date_of_birth": "1990-01-01"}}, headers=bearer(keys.submitter)
    ).json()
    assert adult["flags"] == [] and adult["priority"] == "normal"


def test_without_the_child_evidence_permission_an_analyst_cannot_even_list_a_childs_evidence(
    evidence_client, keys, child_analyst_key
):
    """Filenames can describe the images ("me-at-14.jpg")."""
    client = evidence_client
    child = client.post("/v1/cases", json={**MINIMAL_CASE, "victim": {"age": 15}}, headers=bearer(keys.submitter))
    child = child.json()
    files = [("file", ("describes-the-image.png", png(shade=5), "image/png"))]
    client.post(f"/v1/cases/{child['reference']}/evidence", files=files, headers=bearer(child["reporter_token"]))
    listing = f"/v1/cases/{child['reference']}/evidence"

    refused = client.get(listing, headers=bearer(keys.analyst))
    assert refused.status_code == 403 and "describes-the-image" not in refused.text
    reason = {"X-Access-Reason": "triage"}  # an analyst with the permission says why; the reporter needn't
    for allowed in ({**bearer(child_analyst_key), **reason}, bearer(child["reporter_token"])):
        response = client.get(listing, headers=allowed)
        assert [item["filename"] for item in response.json()["evidence"]] == ["describes-the-image.png"]

    adult = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
    assert client.get(f"/v1/cases/{adult['reference']}/evidence", headers=bearer(keys.analyst)).status_code == 200


def test_a_childs_evidence_is_listed_or_opened_only_with_a_reason_kept_as_written(
    evidence_client, keys, child_analyst_key
):
    client = evidence_client
    child = client.post("/v1/cases", json={**MINIMAL_CASE, "victim": {"age": 15}}, headers=bearer(keys.submitter))
    child = child.json()
    files = [("file", ("describes-the-image.png", png(shade=6), "image/png"))]
    added = client.post(
        f"/v1/cases/{child['reference']}/evidence", files=files, headers=bearer(child["reporter_token"])
    ).json()
    listing = f"/v1/cases/{child['reference']}/evidence"
    content = f"{listing}/{added['evidence'][0]['id']}/content"
    analyst = bearer(child_analyst_key)

    for path in (listing, content):
        for missing in ({}, {"X-Access-Reason": "   "}):
            refused = client.get(path, headers={**analyst, **missing})
            assert refused.status_code == 422 and "describes-the-image" not in refused.text
            assert refused.json()["errors"][0]["field"] == "X-Access-Reason"
    reasons = {listing: "Sichtung – 児童保護 (list)", content: "Prüfung des Bildes – ü, 児童 (open)"}
    for path, reason in reasons.items():
        response = client.get(path, headers={**analyst, "X-Access-Reason": reason.encode("utf-8")})
        assert response.status_code == 200

    events = client.get("/v1/audit", params={"case": child["reference"]}, headers=bearer(keys.admin)).json()["events"]
    kept = {event["action"]: event["reason"] for event in events if event["actor"].startswith("key:")}
    assert kept["evidence.list"] == reasons[listing]
    assert kept["evidence.read"] == reasons[content]

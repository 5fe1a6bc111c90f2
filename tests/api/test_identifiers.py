"""POST /v1/cases/{reference}/identifiers and GET /v1/identifiers."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from tests.support.cases import MINIMAL_CASE, unique_force, unique_mtcn
from tests.support.database import create_key, database_engine
from tests.support.http import bearer


def test_the_reporter_adds_one_identifier_and_gets_its_normalised_form(client, new_case):
    created = new_case()
    response = client.post(
        f"/v1/cases/{created['reference']}/identifiers",
        headers=bearer(created["reporter_token"]),
        json={"type": "profile_url", "value": "https://m.facebook.com/profile.php?id=42&ref=x"},
    )
    assert response.status_code == 201, response.text
    (stored,) = response.json()["identifiers"]
    assert stored == {
        **stored,
        "type": "profile_url",
        "normalized": "https://facebook.com/profile.php?id=42",
        "platform": "facebook",
        "handle": "42",
    }


def test_the_submitting_key_adds_a_list_and_repeats_are_not_duplicated(client, keys, new_case):
    created = new_case()
    mtcn = unique_mtcn()
    url = f"/v1/cases/{created['reference']}/identifiers"
    payload = [
        {"type": "mtcn", "value": mtcn},
        {"type": "mtcn", "value": f"{mtcn[:3]}-{mtcn[3:]}"},
        {"type": "username", "value": "@Synth", "platform": "instagram"},
    ]
    response = client.post(url, headers=bearer(keys.submitter), json=payload)
    assert response.status_code == 201
    assert len(response.json()["identifiers"]) == 2
    again = client.post(url, headers=bearer(keys.submitter), json={"type": "mtcn", "value": mtcn})
    assert again.json()["identifiers"][0]["created_at"] == response.json()["identifiers"][0]["created_at"]
    case = client.get(f"/v1/cases/{created['reference']}", headers=bearer(keys.analyst)).json()
    assert len(case["identifiers"]) == 2


def test_an_identifier_seen_before_is_told_to_analysts_and_never_to_whoever_sent_it(client, keys, new_case):
    """Else an offender reports their own MTCN and learns from the answer whether a victim has."""
    mtcn = unique_mtcn()
    first = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    second = new_case(identifiers=[{"type": "mtcn", "value": f"{mtcn[:5]} {mtcn[5:]}"}], feels_unsafe=True)
    assert first["flags"] == [] and first["priority"] == "normal"
    # Its own report's flags only, and the priority they alone give.
    assert [flag["code"] for flag in second["flags"]] == ["self_harm_risk"]
    assert second["priority"] == "urgent"
    quiet = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    assert quiet["flags"] == [] and quiet["priority"] == "normal"
    assert "repeat" not in str(quiet) and "already" not in str(quiet)

    later = new_case()
    url = f"/v1/cases/{later['reference']}/identifiers"
    for token in (later["reporter_token"], keys.submitter):
        added = client.post(url, headers=bearer(token), json={"type": "mtcn", "value": mtcn})
        assert added.status_code == 201
        assert set(added.json()) == {"identifiers"}

    for case in (quiet, later):
        seen = client.get(f"/v1/cases/{case['reference']}", headers=bearer(keys.analyst)).json()
        assert [flag["code"] for flag in seen["flags"]] == ["repeat_identifier"]
        assert seen["priority"] == "high"
    reporter_view = client.get(f"/v1/cases/{later['reference']}", headers=bearer(later["reporter_token"])).json()
    assert "flags" not in reporter_view and "priority" not in reporter_view


def test_a_reporter_token_cannot_watch_for_its_identifier_being_reported_again(client, keys, new_case):
    """An offender reports their own MTCN, keeps the reporter token and reads the case now and then:
    nothing in it may change when a victim later reports the same MTCN."""
    mtcn = unique_mtcn()
    decoy = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    url, token = f"/v1/cases/{decoy['reference']}", bearer(decoy["reporter_token"])
    before = client.get(url, headers=token).json()
    new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    assert client.get(url, headers=token).json() == before
    seen = client.get(url, headers=bearer(keys.analyst)).json()
    assert [flag["code"] for flag in seen["flags"]] == ["repeat_identifier"] and seen["version"] == 2


def test_analysts_find_every_case_that_shares_an_identifier(client, keys, new_case):
    mtcn = unique_mtcn()
    references = {new_case(identifiers=[{"type": "mtcn", "value": mtcn}])["reference"] for _ in range(3)}
    new_case()
    response = client.get("/v1/identifiers", params={"normalized": mtcn}, headers=bearer(keys.analyst))
    assert response.status_code == 200
    assert {case["reference"] for case in response.json()["cases"]} == references


@pytest.mark.parametrize("who", ["submitter", "admin"])
def test_only_analysts_search_identifiers(client, keys, who):
    response = client.get("/v1/identifiers", params={"normalized": "1"}, headers=bearer(getattr(keys, who)))
    assert response.status_code == 403


def test_a_bad_identifier_is_a_422_in_words_a_victim_understands(client, new_case):
    created = new_case()
    response = client.post(
        f"/v1/cases/{created['reference']}/identifiers",
        headers=bearer(created["reporter_token"]),
        json=[{"type": "mtcn", "value": "123456789"}, {"type": "skype_id", "value": "Jane Example"}],
    )
    assert response.status_code == 422
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert errors["[0].value"] == "A Western Union MTCN is 10 digits; this has 9."
    assert "display name" in errors["[1].value"]


@pytest.mark.parametrize("who", ["other_submitter", "admin", "other_reporter"])
def test_others_cannot_add_identifiers_and_cannot_tell_the_case_exists(client, keys, new_case, who):
    reference = new_case()["reference"]
    token = new_case()["reporter_token"] if who == "other_reporter" else getattr(keys, who)
    response = client.post(
        f"/v1/cases/{reference}/identifiers", headers=bearer(token), json={"type": "mtcn", "value": "1234567890"}
    )
    assert response.status_code == 404


def test_an_analyst_is_told_identifiers_come_from_the_reporter(client, keys, new_case):
    reference = new_case()["reference"]
    response = client.post(
        f"/v1/cases/{reference}/identifiers", headers=bearer(keys.analyst), json={"type": "mtcn", "value": "1234567890"}
    )
    assert response.status_code == 403


def test_adding_identifiers_is_idempotent_too(client, new_case):
    created = new_case()
    headers = {**bearer(created["reporter_token"]), "Idempotency-Key": str(uuid.uuid4())}
    url = f"/v1/cases/{created['reference']}/identifiers"
    first = client.post(url, headers=headers, json={"type": "email", "value": "Offender@Example.org"})
    second = client.post(url, headers=headers, json={"type": "email", "value": "Offender@Example.org"})
    assert first.json() == second.json()
    different = client.post(url, headers=headers, json={"type": "email", "value": "other@example.org"})
    assert different.status_code == 422


def test_an_analyst_of_another_force_is_not_told_the_case_exists(client, keys, settings):
    """Item 9 of the security review: a force-scoped analyst got 403 (so: it exists) for another force's case."""
    ours_force, theirs_force = unique_force(), unique_force()
    scoped = create_key(settings.resolved_database_url, "analyst", "scoped analyst", forces=[ours_force])

    def create(force: str) -> str:
        case = {**MINIMAL_CASE, "police_force": force}
        return client.post("/v1/cases", json=case, headers=bearer(keys.submitter)).json()["reference"]

    theirs, ours = create(theirs_force), create(ours_force)
    identifier = {"type": "mtcn", "value": "1234567890"}
    declared = {"filename": "a.png", "size": 10, "sha256": "0" * 64}
    for reference, expected in ((theirs, 404), (ours, 403), ("7KQM-X4TR-9PZC", 404)):
        for path, body in [
            (f"/v1/cases/{reference}/identifiers", {"json": identifier}),
            (f"/v1/cases/{reference}/evidence", {"files": [("file", ("a.txt", b"synthetic", "text/plain"))]}),
            (f"/v1/cases/{reference}/evidence/uploads", {"json": declared}),
            (f"/v1/cases/{reference}/evidence/uploads/{'0' * 32}/complete", {}),
        ]:
            response = client.post(path, headers=bearer(scoped), **body)
            assert response.status_code == expected, (path, response.text)


def test_an_earlier_case_kept_under_older_rules_is_flagged_as_a_repeat_not_refused(client, keys, new_case, settings):
    """Its stored submission holds what today's input rules refuse (a field since removed, a phone
    number a newer numbering table rejects, a victim age out of today's range): reading it back for
    a new report that links to it must neither fail that report nor lose the earlier case's facts."""
    mtcn = unique_mtcn()
    earlier = new_case(victim={"age": 15}, identifiers=[{"type": "mtcn", "value": mtcn}])
    with database_engine(settings.resolved_database_url) as engine, engine.begin() as connection:
        submission = connection.execute(
            sa.text('SELECT submission FROM "case" WHERE reference = :reference'),
            {"reference": earlier["reference"]},
        ).scalar_one()
        submission = json.loads(submission) if isinstance(submission, str) else submission
        submission["reporter"]["phone"] = "+44 20 0000"
        submission["legacy_field"] = "kept by an older version"
        submission["payments"] = [{"amount": "not money", "collected": "no", "method": "carrier_pigeon"}]
        connection.execute(
            sa.text('UPDATE "case" SET submission = :submission WHERE reference = :reference'),
            {"submission": json.dumps(submission), "reference": earlier["reference"]},
        )

    later = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])

    assert later["reference"] != earlier["reference"]
    seen = client.get(f"/v1/cases/{earlier['reference']}", headers=bearer(keys.analyst)).json()
    codes = [flag["code"] for flag in seen["flags"]]
    assert codes == ["under_18", "payment_recallable", "already_paid", "repeat_identifier"]


def test_a_case_repeating_two_earlier_cases_flags_both_and_keeps_the_flags_they_had(client, keys, new_case):
    """Both are decided again in the new case's transaction: the repeat flag beside the flags they had, in
    their case rows and in the flag rows analysts filter by, and each one's version moves."""
    first_mtcn, second_mtcn = unique_mtcn(), unique_mtcn()
    unpaid = [{"amount": "100", "currency": "GBP", "method": "western_union", "collected": "no"}]
    first = new_case(payments=unpaid, identifiers=[{"type": "mtcn", "value": first_mtcn}])
    second = new_case(identifiers=[{"type": "mtcn", "value": second_mtcn}])

    def seen(case: dict) -> dict:
        return client.get(f"/v1/cases/{case['reference']}", headers=bearer(keys.analyst)).json()

    def found(flag: str, mtcn: str) -> set[str]:
        response = client.get("/v1/cases", params={"flag": flag, "identifier": mtcn}, headers=bearer(keys.analyst))
        assert response.status_code == 200, response.text
        return {case["reference"] for case in response.json()["cases"]}

    first_flags = [flag["code"] for flag in seen(first)["flags"]]
    assert "payment_recallable" in first_flags and "repeat_identifier" not in first_flags
    later = new_case(identifiers=[{"type": "mtcn", "value": first_mtcn}, {"type": "mtcn", "value": second_mtcn}])

    assert [flag["code"] for flag in seen(first)["flags"]] == [*first_flags, "repeat_identifier"]
    assert [flag["code"] for flag in seen(second)["flags"]] == ["repeat_identifier"]
    assert seen(first)["version"] == seen(second)["version"] == 2
    assert found("repeat_identifier", first_mtcn) == {first["reference"], later["reference"]}
    assert found("repeat_identifier", second_mtcn) == {second["reference"], later["reference"]}
    assert found("payment_recallable", first_mtcn) == {first["reference"]}

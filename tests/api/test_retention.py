"""`intake retention review` and `erase`: closed cases past their period go, with their evidence."""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.cases import MINIMAL_CASE
from tests.support.cli import environment_for, run_intake
from tests.support.evidence import evidence_rows, stored_keys, upload
from tests.support.http import bearer
from tests.support.synthetic import png


def close_case(client, analyst: str, reference: str) -> None:
    etag = client.get(f"/v1/cases/{reference}", headers=bearer(analyst)).headers["etag"]
    response = client.post(
        f"/v1/cases/{reference}/status", json={"status": "closed"}, headers={**bearer(analyst), "If-Match": etag}
    )
    assert response.status_code == 200, response.text


def test_closed_cases_past_retention_are_erased_with_their_evidence_and_an_audit_row(
    evidence_client, evidence_app, evidence_keys
):
    def report() -> dict:
        return evidence_client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(evidence_keys.submitter)).json()

    old, recent, open_case = report(), report(), report()
    for created in (old, recent, open_case):
        assert upload(evidence_client, created, ("a.png", png(), "image/png")).status_code == 201
    close_case(evidence_client, evidence_keys.analyst, old["reference"])
    close_case(evidence_client, evidence_keys.analyst, recent["reference"])
    with evidence_app.state.engine.begin() as connection:  # closed seven years ago
        connection.execute(
            sa.text('UPDATE "case" SET updated_at = :t WHERE reference IN (:a, :b)'),
            {"t": "2019-01-01 00:00:00", "a": old["reference"], "b": open_case["reference"]},
        )
    keys_before = stored_keys(evidence_app)
    environment = environment_for(evidence_app.state.settings)

    review = run_intake("retention", "review", environment=environment)
    assert review.returncode == 0, review.stderr
    assert old["reference"] in review.stdout
    assert recent["reference"] not in review.stdout and open_case["reference"] not in review.stdout
    assert run_intake("retention", "erase", environment=environment).returncode == 1  # no --yes, nothing erased
    assert evidence_rows(evidence_app, old["reference"]) == 1

    erased = run_intake("retention", "erase", "--yes", environment=environment)
    assert erased.returncode == 0, erased.stderr
    assert (
        evidence_client.get(f"/v1/cases/{old['reference']}", headers=bearer(evidence_keys.analyst)).status_code == 404
    )
    assert len(keys_before - stored_keys(evidence_app)) == 1
    assert evidence_rows(evidence_app, recent["reference"]) == 1
    events = evidence_client.get(
        "/v1/audit", params={"actor": "cli:retention"}, headers=bearer(evidence_keys.admin)
    ).json()["events"]
    erased_event = next(
        e for e in events if e["action"] == "case.erased" and e["detail"]["reference"] == old["reference"]
    )
    assert erased_event["detail"]["evidence"] == 1
    assert "account" not in str(erased_event["detail"])
    # The case is gone, its audit trail is not: asked for by reference, the log still shows it.
    by_reference = evidence_client.get(
        "/v1/audit", params={"case": old["reference"]}, headers=bearer(evidence_keys.admin)
    ).json()["events"]
    assert {"case.create", "case.erased"} <= {event["action"] for event in by_reference}
    assert {event["case"] for event in by_reference} == {old["reference"]}


def test_an_erased_cases_trail_is_never_mixed_with_a_later_case_given_its_id(client, keys, settings):
    """SQLite gives the largest rowid + 1 to the next case, so the id of a case erased while it was the
    newest comes back on the next report: the log must still tell the two cases' rows apart."""
    old = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
    close_case(client, keys.analyst, old["reference"])
    with client.app.state.engine.begin() as connection:  # closed seven years ago
        connection.execute(
            sa.text('UPDATE "case" SET updated_at = :t WHERE reference = :r'),
            {"t": "2019-01-01 00:00:00", "r": old["reference"]},
        )
    erased = run_intake("retention", "erase", "--yes", environment=environment_for(settings))
    assert erased.returncode == 0, erased.stderr
    new = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
    assert client.get(f"/v1/cases/{new['reference']}", headers=bearer(keys.analyst)).status_code == 200

    def trail(reference: str) -> list[dict]:
        answer = client.get("/v1/audit", params={"case": reference}, headers=bearer(keys.admin))
        assert answer.status_code == 200, answer.text
        return answer.json()["events"]

    old_trail, new_trail = trail(old["reference"]), trail(new["reference"])
    assert [event["action"] for event in new_trail] == ["case.read", "case.create"]
    assert {event["case"] for event in new_trail} == {new["reference"]}
    assert old_trail[0]["action"] == "case.erased" and "case.create" in {e["action"] for e in old_trail}
    assert {event["case"] for event in old_trail} == {old["reference"]}
    assert not {event["id"] for event in old_trail} & {event["id"] for event in new_trail}
    by_actor = client.get("/v1/audit", params={"actor": "cli:retention"}, headers=bearer(keys.admin)).json()
    erasure = next(e for e in by_actor["events"] if e["detail"]["reference"] == old["reference"])
    assert erasure["case"] == old["reference"]  # not the later case that now has the id

"""Analysts correct the links: an identifier that joins nothing, a false link, a manual link, a duplicate.
Each with a reason, audited, undone by revoking; links and clusters follow at once."""

from __future__ import annotations

import uuid

import pytest

from tests.support.cases import unique_force, unique_mtcn
from tests.support.http import bearer


def links(client, keys, reference: str) -> dict:
    response = client.get(f"/v1/cases/{reference}/links", headers=bearer(keys.analyst))
    assert response.status_code == 200, response.text
    return response.json()


def linked(client, keys, reference: str) -> list[str]:
    return [link["reference"] for link in links(client, keys, reference)["links"]]


def cluster(client, keys, reference: str) -> dict:
    response = client.get(f"/v1/cases/{reference}/cluster", headers=bearer(keys.analyst))
    assert response.status_code == 200, response.text
    return response.json()["cluster"]


def correct(client, key: str, **body):
    return client.post("/v1/link-corrections", headers=bearer(key), json=body)


def revoke(client, key: str, correction_id: int, reason: str = "Synthetic: decided again"):
    return client.post(f"/v1/link-corrections/{correction_id}/revoke", headers=bearer(key), json={"reason": reason})


def test_an_identifier_marked_as_not_linking_stops_joining_cases_until_revoked(client, keys, new_case, scoped_key):
    support = f"support.{uuid.uuid4().hex[:8]}@example.org"
    first = new_case(identifiers=[{"type": "email", "value": support}])["reference"]
    second = new_case(identifiers=[{"type": "email", "value": support}])["reference"]
    assert linked(client, keys, first) == [second] and cluster(client, keys, first)["cases"] == 2

    body = {"kind": "identifier_not_linking", "identifier": support, "reason": "The platform's support address"}
    assert correct(client, scoped_key(unique_force()), **body).status_code == 403
    made = correct(client, keys.analyst, **body)
    assert made.status_code == 201, made.text
    assert correct(client, keys.analyst, **body).status_code == 409
    assert linked(client, keys, first) == []
    assert cluster(client, keys, first)["cases"] == 1 and cluster(client, keys, second)["cases"] == 1
    (shown,) = links(client, keys, first)["corrections"]
    assert (shown["kind"], shown["identifier"], shown["reason"]) == ("identifier_not_linking", support, body["reason"])

    undone = revoke(client, keys.analyst, made.json()["id"])
    assert undone.status_code == 200 and undone.json()["revoked_at"] is not None
    assert revoke(client, keys.analyst, made.json()["id"]).status_code == 409
    assert linked(client, keys, first) == [second] and cluster(client, keys, first)["cases"] == 2
    assert links(client, keys, first)["corrections"][0]["revoke_reason"] == "Synthetic: decided again"


def test_a_false_link_separates_two_cases_whatever_they_share(client, keys, new_case):
    mtcn = unique_mtcn()
    first = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])["reference"]
    second = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])["reference"]
    made = correct(client, keys.analyst, kind="false_link", case=first, other_case=second, reason="Mistyped MTCN")
    assert made.status_code == 201, made.text
    assert linked(client, keys, first) == [] and linked(client, keys, second) == []
    assert cluster(client, keys, first)["id"] != cluster(client, keys, second)["id"]
    revoke(client, keys.analyst, made.json()["id"])
    assert linked(client, keys, first) == [second]
    assert cluster(client, keys, first)["id"] == cluster(client, keys, second)["id"]


def test_two_cases_linked_by_hand_share_a_cluster(client, keys, new_case):
    first, second = new_case()["reference"], new_case()["reference"]
    made = correct(client, keys.analyst, kind="manual_link", case=first, other_case=second, reason="Same script")
    assert made.status_code == 201, made.text
    (link,) = links(client, keys, second)["links"]
    assert link["reference"] == first and link["link_types"] == ["manual_link"]
    assert cluster(client, keys, first)["cases"] == 2


def test_a_duplicate_points_to_its_original_and_is_not_counted_twice(client, keys, new_case):
    original = new_case(victim={"age": 14})["reference"]
    duplicate = new_case(victim={"age": 14})["reference"]
    made = correct(client, keys.analyst, kind="duplicate", case=duplicate, other_case=original, reason="Reported twice")
    assert made.status_code == 201, made.text
    seen = links(client, keys, duplicate)
    assert seen["duplicate_of"] == original
    assert seen["links"][0]["link_types"] == ["duplicate"]
    both = cluster(client, keys, original)
    assert (both["cases"], both["victims"], both["child_victims"]) == (2, 1, 1)
    third = new_case()["reference"]
    again = correct(client, keys.analyst, kind="duplicate", case=duplicate, other_case=third, reason="x")
    assert again.status_code == 409
    revoke(client, keys.analyst, made.json()["id"])
    assert links(client, keys, duplicate)["duplicate_of"] is None
    assert cluster(client, keys, duplicate)["cases"] == 1


def test_corrections_are_audited_listed_and_only_for_analysts(client, keys, new_case):
    first, second = new_case()["reference"], new_case()["reference"]
    made = correct(client, keys.analyst, kind="manual_link", case=first, other_case=second, reason="Audited link")
    events = client.get("/v1/audit", params={"case": first}, headers=bearer(keys.admin)).json()["events"]
    assert any(e["action"] == "links.correct" and e["reason"] == "Audited link" for e in events)
    listed = client.get("/v1/link-corrections", params={"active": True}, headers=bearer(keys.analyst)).json()
    assert made.json()["id"] in [c["id"] for c in listed["corrections"]]
    for who in ("submitter", "admin"):
        denied = correct(client, getattr(keys, who), kind="manual_link", case=first, other_case=second, reason="x")
        assert denied.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "manual_link", "case": "X", "other_case": "Y"}, "reason"),
        ({"kind": "manual_link", "case": "X", "other_case": "Y", "reason": "  "}, "reason"),
        ({"kind": "identifier_not_linking", "reason": "r"}, "body"),
        ({"kind": "false_link", "case": "X", "identifier": "1", "reason": "r"}, "body"),
        ({"kind": "merge", "reason": "r"}, "kind"),
    ],
)
def test_a_correction_without_what_its_kind_needs_is_a_422(client, keys, body, field):
    response = correct(client, keys.analyst, **body)
    assert response.status_code == 422, response.text
    assert any(error["field"].startswith(field) for error in response.json()["errors"]), response.json()


def test_a_case_cannot_be_linked_to_itself_and_unknown_cases_are_404(client, keys, new_case):
    case = new_case()["reference"]
    assert correct(client, keys.analyst, kind="manual_link", case=case, other_case=case, reason="x").status_code == 422
    unknown = correct(client, keys.analyst, kind="manual_link", case=case, other_case="AAAA-AAAA-AAAA", reason="x")
    assert unknown.status_code == 404


def test_an_identifier_that_joins_nothing_makes_no_repeat_case(client, keys, new_case):
    support = f"help.{uuid.uuid4().hex[:8]}@example.org"
    new_case(identifiers=[{"type": "email", "value": support}])
    body = {"kind": "identifier_not_linking", "identifier": support, "reason": "The platform's help desk"}
    assert correct(client, keys.analyst, **body).status_code == 201
    later = new_case(identifiers=[{"type": "email", "value": support}])["reference"]
    case = client.get(f"/v1/cases/{later}", headers=bearer(keys.analyst)).json()
    assert "repeat_identifier" not in [flag["code"] for flag in case["flags"]]


def test_marking_an_identifier_as_not_linking_decides_again_whether_the_cases_holding_it_are_repeat_cases(
    client, keys, new_case
):
    support = f"desk.{uuid.uuid4().hex[:8]}@example.org"
    first = new_case(identifiers=[{"type": "email", "value": support}])["reference"]
    second = new_case(identifiers=[{"type": "email", "value": support}])["reference"]

    def repeat_flagged(reference: str) -> bool:
        case = client.get(f"/v1/cases/{reference}", headers=bearer(keys.analyst)).json()
        return "repeat_identifier" in [flag["code"] for flag in case["flags"]]

    def flagged_in_search(reference: str) -> bool:  # the flag rows analysts filter by follow too
        found = client.get(
            "/v1/cases", params={"flag": "repeat_identifier", "limit": 200}, headers=bearer(keys.analyst)
        )
        return reference in [case["reference"] for case in found.json()["cases"]]

    assert repeat_flagged(first) and repeat_flagged(second) and flagged_in_search(first)
    body = {"kind": "identifier_not_linking", "identifier": support, "reason": "The platform's help desk"}
    made = correct(client, keys.analyst, **body)
    assert made.status_code == 201, made.text
    assert not repeat_flagged(first) and not repeat_flagged(second) and not flagged_in_search(first)
    assert revoke(client, keys.analyst, made.json()["id"]).status_code == 200
    assert repeat_flagged(first) and repeat_flagged(second) and flagged_in_search(second)

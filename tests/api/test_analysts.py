"""GET /v1/cases (filters, keyset pages, force scope) and GET /v1/audit."""

from __future__ import annotations

import uuid

import pytest

from tests.support.cases import MINIMAL_CASE, unique_force, unique_mtcn
from tests.support.database import create_key
from tests.support.http import assert_problem, bearer


def references(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [case["reference"] for case in response.json()["cases"]]


def test_filters_find_exactly_the_matching_cases(client, keys, new_case):
    force = unique_force()
    child = new_case(police_force=force, victim={"age": 14})["reference"]
    paid = new_case(police_force=force, payments=[{"method": "moneygram", "collected": "no"}])["reference"]
    plain = new_case(police_force=force)["reference"]
    mtcn = unique_mtcn()
    linked = new_case(police_force=force, identifiers=[{"type": "mtcn", "value": mtcn}])["reference"]

    def find(**params):
        return references(client.get("/v1/cases", params={"force": force, **params}, headers=bearer(keys.analyst)))

    assert find() == [linked, plain, paid, child]  # newest first
    assert find(priority="urgent") == [child]
    assert find(flag="payment_recallable") == [paid]
    assert find(identifier=mtcn) == [linked]
    assert find(status="received") == [linked, plain, paid, child]
    assert find(status="closed") == []
    summary = client.get("/v1/cases", params={"force": force, "flag": "under_18"}, headers=bearer(keys.analyst))
    assert summary.json()["cases"][0]["flags"] == ["under_18"]


def test_pages_stay_stable_while_new_cases_arrive(client, keys, new_case):
    force = unique_force()
    made = [new_case(police_force=force)["reference"] for _ in range(5)]
    first = client.get("/v1/cases", params={"force": force, "limit": 2}, headers=bearer(keys.analyst)).json()
    new_case(police_force=force)  # arrives between pages
    second = client.get(
        "/v1/cases", params={"force": force, "limit": 2, "cursor": first["next_cursor"]}, headers=bearer(keys.analyst)
    ).json()
    third = client.get(
        "/v1/cases", params={"force": force, "limit": 2, "cursor": second["next_cursor"]}, headers=bearer(keys.analyst)
    ).json()
    seen = [c["reference"] for page in (first, second, third) for c in page["cases"]]
    assert seen == list(reversed(made))
    assert third["next_cursor"] is None


def test_since_and_until_accept_times_with_or_without_an_offset(client, keys, new_case):
    force = unique_force()
    created = new_case(police_force=force)
    moment = created["created_at"].replace("Z", "").split("+")[0]
    assert references(
        client.get("/v1/cases", params={"force": force, "since": moment}, headers=bearer(keys.analyst))
    ) == [created["reference"]]
    assert (
        references(
            client.get(
                "/v1/cases", params={"force": force, "until": "2000-01-01T00:00:00Z"}, headers=bearer(keys.analyst)
            )
        )
        == []
    )


@pytest.mark.parametrize("cursor", ["nonsense", "e30", "eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMCIsImkiOjF9"])
def test_a_cursor_we_did_not_give_out_is_a_422(client, keys, cursor):
    response = client.get("/v1/cases", params={"cursor": cursor}, headers=bearer(keys.analyst))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"


def test_the_page_size_is_capped(client, keys, settings):
    response = client.get("/v1/cases", params={"limit": 100_000}, headers=bearer(keys.analyst))
    assert response.status_code == 200
    assert len(response.json()["cases"]) <= settings.max_page_size


@pytest.mark.parametrize("who", ["submitter", "admin"])
def test_only_analysts_search_cases(client, keys, who):
    assert client.get("/v1/cases", headers=bearer(getattr(keys, who))).status_code == 403


def test_a_force_scoped_key_never_sees_another_forces_cases(client, keys, new_case, scoped_key):
    mine, theirs = unique_force(), unique_force()
    mtcn = unique_mtcn()
    own = new_case(police_force=mine, identifiers=[{"type": "mtcn", "value": mtcn}])["reference"]
    other = new_case(police_force=theirs, identifiers=[{"type": "mtcn", "value": mtcn}])["reference"]
    unassigned = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])["reference"]
    key = scoped_key(mine)

    listed = references(client.get("/v1/cases", params={"identifier": mtcn}, headers=bearer(key)))
    assert listed == [own]
    assert references(client.get("/v1/cases", params={"force": theirs}, headers=bearer(key))) == []
    assert client.get(f"/v1/cases/{own}", headers=bearer(key)).status_code == 200
    for hidden in (other, unassigned):
        assert client.get(f"/v1/cases/{hidden}", headers=bearer(key)).status_code == 404
        assert client.get(f"/v1/cases/{hidden}/evidence", headers=bearer(key)).status_code == 404
    shared = client.get("/v1/identifiers", params={"normalized": mtcn}, headers=bearer(key)).json()
    assert [case["reference"] for case in shared["cases"]] == [own]
    everything = client.get("/v1/identifiers", params={"normalized": mtcn}, headers=bearer(keys.analyst)).json()
    assert {case["reference"] for case in everything["cases"]} == {own, other, unassigned}


def test_only_analyst_keys_can_be_scoped(settings):
    with pytest.raises(ValueError, match="analyst"):
        create_key(settings.resolved_database_url, "submitter", "x", forces=["north-yorkshire"])


def test_admins_read_the_audit_log_by_case_and_actor_in_pages(client, keys, new_case):
    created = new_case()
    for reason in ("triage", "review", "court"):
        client.get(f"/v1/cases/{created['reference']}", headers={**bearer(keys.analyst), "X-Access-Reason": reason})
    first = client.get("/v1/audit", params={"case": created["reference"], "limit": 2}, headers=bearer(keys.admin))
    assert first.status_code == 200
    second = client.get(
        "/v1/audit",
        params={"case": created["reference"], "limit": 2, "cursor": first.json()["next_cursor"]},
        headers=bearer(keys.admin),
    )
    events = first.json()["events"] + second.json()["events"]
    assert [(e["action"], e["reason"]) for e in events] == [
        ("case.read", "court"),
        ("case.read", "review"),
        ("case.read", "triage"),
        ("case.create", None),
    ]
    assert all(e["case"] == created["reference"] for e in events)
    actor = events[0]["actor"]
    by_actor = client.get("/v1/audit", params={"actor": actor, "limit": 200}, headers=bearer(keys.admin)).json()
    assert by_actor["events"] and all(e["actor"] == actor for e in by_actor["events"])


def test_searches_are_audited_and_only_admins_read_the_log(client, keys):
    client.get("/v1/cases", params={"priority": "urgent"}, headers={**bearer(keys.analyst), "X-Access-Reason": "daily"})
    log = client.get("/v1/audit", params={"limit": 5}, headers=bearer(keys.admin)).json()["events"]
    search = next(e for e in log if e["action"] == "cases.search")
    assert search["reason"] == "daily" and search["detail"]["filters"]["priority"] == "urgent"
    for who in ("analyst", "submitter"):
        assert client.get("/v1/audit", headers=bearer(getattr(keys, who))).status_code == 403


def test_linked_cases_are_listed_with_what_they_share_and_both_sides_are_flagged(client, keys, new_case):
    mtcn = unique_mtcn()
    handle = f"synthetic.{uuid.uuid4().hex[:8]}"
    first = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    assert first["priority"] == "normal"
    second = new_case(
        identifiers=[
            {"type": "mtcn", "value": mtcn},
            {"type": "profile_url", "value": f"https://instagram.com/{handle}"},
        ]
    )
    third = new_case(identifiers=[{"type": "username", "value": handle, "platform": "snapchat"}])
    client.post(
        f"/v1/cases/{third['reference']}/identifiers",
        headers=bearer(third["reporter_token"]),
        json={"type": "profile_url", "value": f"https://www.instagram.com/{handle.upper()}/?igsh=1"},
    )

    links = client.get(f"/v1/cases/{second['reference']}/links", headers=bearer(keys.analyst)).json()["links"]
    assert [(link["reference"], [s["type"] for s in link["shared"]]) for link in links] == [
        (first["reference"], ["mtcn"]),
        (third["reference"], ["profile_url"]),
    ]
    earlier = client.get(f"/v1/cases/{first['reference']}", headers=bearer(keys.analyst)).json()
    assert [flag["code"] for flag in earlier["flags"]] == ["repeat_identifier"]
    assert earlier["priority"] == "high" and earlier["version"] == 2
    assert references(
        client.get("/v1/cases", params={"flag": "repeat_identifier", "identifier": mtcn}, headers=bearer(keys.analyst))
    ) == [second["reference"], first["reference"]]


def test_links_respect_the_keys_force_scope(client, new_case, scoped_key):
    mine, theirs = unique_force(), unique_force()
    mtcn = unique_mtcn()
    own = new_case(police_force=mine, identifiers=[{"type": "mtcn", "value": mtcn}])["reference"]
    new_case(police_force=theirs, identifiers=[{"type": "mtcn", "value": mtcn}])
    assert client.get(f"/v1/cases/{own}/links", headers=bearer(scoped_key(mine))).json()["links"] == []


def test_an_access_reason_in_utf_8_is_kept_as_written(client, keys, new_case):
    created = new_case()
    reason = "Überprüfung – 児童保護, Fall 7"
    headers = {**bearer(keys.analyst), "X-Access-Reason": reason.encode("utf-8")}
    assert client.get(f"/v1/cases/{created['reference']}", headers=headers).status_code == 200
    events = client.get("/v1/audit", params={"case": created["reference"]}, headers=bearer(keys.admin)).json()["events"]
    assert [event["reason"] for event in events if event["action"] == "case.read"] == [reason]


@pytest.mark.parametrize("path", ["/v1/cases", "/v1/cases/export", "/v1/identifiers", "/v1/audit"])
def test_a_misspelt_query_parameter_is_refused_by_name_never_ignored(client, keys, path):
    # ?priorty=urgent ignored would answer with every case: the caller must learn it asked for nothing.
    key = keys.admin if path == "/v1/audit" else keys.analyst
    response = client.get(path, params={"priorty": "urgent"}, headers=bearer(key))
    errors = assert_problem(response, 422)["errors"]
    assert errors[0]["field"] == "priorty" and "not a parameter here" in errors[0]["message"]


def test_reading_the_audit_log_is_itself_audited(client, keys, new_case):
    reference = new_case()["reference"]
    read = client.get("/v1/audit", params={"case": reference}, headers=bearer(keys.admin))
    assert read.status_code == 200 and read.json()["events"]
    admin_id = keys.admin.split("_")[1]
    mine = client.get("/v1/audit", params={"actor": f"key:{admin_id}"}, headers=bearer(keys.admin)).json()
    reads = [event for event in mine["events"] if event["action"] == "audit.read"]
    assert reads and reads[0]["detail"]["filters"] == {"case": reference}  # newest first


def test_a_search_records_which_cases_it_returned(client, keys, new_case):
    force = unique_force()
    shown = {new_case(police_force=force)["reference"] for _ in range(2)}
    found = client.get("/v1/cases", params={"force": force}, headers=bearer(keys.analyst))
    assert found.status_code == 200
    analyst_id = keys.analyst.split("_")[1]
    log = client.get("/v1/audit", params={"actor": f"key:{analyst_id}"}, headers=bearer(keys.admin)).json()
    search = next(event for event in log["events"] if event["action"] == "cases.search")
    assert set(search["detail"]["cases"]) == shown


def test_the_audit_files_a_request_under_the_servers_id_and_keeps_the_clients_apart(client, keys):
    """A client must not choose the id its requests are filed under: it could make them look like
    another request's. Its own X-Request-Id is kept, bounded, in a field of its own."""
    chosen = "someone-elses-request-0001"
    created = client.post("/v1/cases", json=MINIMAL_CASE, headers={**bearer(keys.submitter), "X-Request-Id": chosen})
    assert created.status_code == 201
    reference = created.json()["reference"]
    analyst = bearer(keys.analyst)
    reads = [client.get(f"/v1/cases/{reference}", headers={**analyst, "X-Request-Id": chosen}) for _ in range(2)]
    unusable = ["x" * 65, "two words", "ünïcödé"]
    for offered in unusable:
        reads.append(client.get(f"/v1/cases/{reference}", headers={**analyst, "X-Request-Id": offered.encode()}))
    served = [response.headers["x-request-id"] for response in reads]
    assert chosen not in served and len(set(served)) == len(served)

    events = client.get("/v1/audit", params={"case": reference}, headers=bearer(keys.admin)).json()["events"]
    creation = next(event for event in events if event["action"] == "case.create")
    assert creation["request_id"] == created.headers["x-request-id"] != chosen
    assert creation["client_request_id"] == chosen
    read_events = [event for event in reversed(events) if event["action"] == "case.read"]
    assert [event["request_id"] for event in read_events] == served
    assert [event["client_request_id"] for event in read_events] == [chosen, chosen, None, None, None]

"""Every analyst endpoint, for every kind of caller and key scope: who gets in, and zero leaks.

A case of another force, or any case for a caller who may not see it, answers exactly as a case
that does not exist would; lists and exports simply never contain it.
"""

from __future__ import annotations

import pytest

from tests.support.cases import unique_force, unique_mtcn
from tests.support.http import bearer

# What a caller who may see the case gets: the status move is made by the first such caller, and is
# then impossible (409) for the next, which is still an answer about the case, not a refusal.
CASE_ENDPOINTS = [
    ("GET", "/v1/cases/{ref}", None, {200}),
    ("GET", "/v1/cases/{ref}/evidence", None, {200}),
    ("GET", "/v1/cases/{ref}/links", None, {200}),
    ("GET", "/v1/cases/{ref}/notes", None, {200}),
    ("POST", "/v1/cases/{ref}/notes", {"body": "x"}, {201}),
    ("POST", "/v1/cases/{ref}/status", {"status": "triaged"}, {200, 409}),
]
SEARCHES = ["/v1/cases?identifier={mtcn}", "/v1/cases/export?identifier={mtcn}", "/v1/identifiers?normalized={mtcn}"]


@pytest.fixture
def world(client, keys, new_case, scoped_key):
    mine, theirs = unique_force(), unique_force()
    mtcn = unique_mtcn()
    own = new_case(police_force=mine, identifiers=[{"type": "mtcn", "value": mtcn}])
    other = new_case(police_force=theirs, identifiers=[{"type": "mtcn", "value": mtcn}])
    callers = {
        "analyst (all forces)": keys.analyst,
        "analyst (own force)": scoped_key(mine),
        "submitter": keys.submitter,
        "admin": keys.admin,
        "reporter of own": own["reporter_token"],
    }
    return {"own": own["reference"], "other": other["reference"], "mtcn": mtcn, "callers": callers}


# Who may reach each case through the analyst endpoints (reporters only read their own case and evidence).
SEES = {
    "analyst (all forces)": {"own", "other"},
    "analyst (own force)": {"own"},
    "submitter": set(),
    "admin": set(),
    "reporter of own": set(),
}


@pytest.mark.parametrize(("method", "path", "body", "answers"), CASE_ENDPOINTS)
def test_case_endpoints_answer_only_those_who_may_see_the_case(client, world, method, path, body, answers):
    missing = "2222-2222-2222"
    for caller, token in world["callers"].items():
        for which in ("own", "other"):
            reference = world[which]
            headers = {**bearer(token), "If-Match": "*"}
            response = client.request(method, path.format(ref=reference), json=body, headers=headers)
            allowed = which in SEES[caller] or (
                caller == "reporter of own"
                and which == "own"
                and method == "GET"
                and path in ("/v1/cases/{ref}", "/v1/cases/{ref}/evidence")
            )
            if allowed:
                assert response.status_code in answers, (caller, which, path, response.text)
                continue
            assert response.status_code in (403, 404), (caller, which, path, response.status_code)
            if response.status_code == 404:  # indistinguishable from a case that does not exist
                absent = client.request(method, path.format(ref=missing), json=body, headers=headers)
                assert absent.status_code == 404 and absent.json()["detail"] == response.json()["detail"]
            else:  # 403 only where the role itself is wrong, whatever the case
                absent = client.request(method, path.format(ref=missing), json=body, headers=headers)
                assert absent.status_code == 403, (caller, path)


@pytest.mark.parametrize("search", SEARCHES)
def test_searches_and_exports_never_contain_a_case_the_caller_may_not_see(client, world, search):
    for caller, token in world["callers"].items():
        response = client.get(search.format(mtcn=world["mtcn"]), headers=bearer(token))
        if not SEES[caller]:
            assert response.status_code == 403, (caller, search)
            continue
        assert response.status_code == 200
        found = {ref for ref in (world["own"], world["other"]) if ref in response.text}
        assert found == {world[which] for which in SEES[caller]}, (caller, search)

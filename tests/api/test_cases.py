"""POST /v1/cases and GET /v1/cases/{reference}."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from service.api.cases import case_created
from service.api.schemas import CaseCreated
from service.domain.reference import canonical_reference
from service.reporting import ReportedCase
from tests.support.cases import MINIMAL_CASE
from tests.support.database import audit_events, count_rows
from tests.support.http import assert_problem, bearer


def test_json_report_gets_201_with_reference_token_priority_flags_and_next_steps(client, keys):
    response = client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        json={
            **MINIMAL_CASE,
            "victim": {"age_band": "13_15"},
            "identifiers": [{"type": "mtcn", "value": "555-000-1111"}],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert canonical_reference(body["reference"]) == body["reference"]
    assert body["reporter_token"].startswith("irt_")
    assert body["priority"] == "urgent"
    assert [flag["code"] for flag in body["flags"]] == ["under_18"]
    assert "under-18" in body["next_steps"]
    assert body["identifiers"][0]["normalized"] == "5550001111"
    assert response.headers["location"] == f"/v1/cases/{body['reference']}"
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]


def test_a_plain_html_form_creates_the_same_case(client, keys, settings):
    form = {
        "reporter.relationship": "parent_or_carer",
        "reporter.email": "carer@example.org",
        "victim.age": "14",
        "account": "Synthetic form account",
        "platforms": ["instagram", "skype"],
        "mtcn": ["1112223334", "111 222 3335"],
        "username": ["@synthetic_one"],
        "username.platform": ["snapchat"],
        "payment.amount": "50",
        "payment.currency": "gbp",
        "payment.method": "western_union",
        "payment.collected": "no",
        "feels_unsafe": "on",
        "threats": "",  # an empty input is an absent field
    }
    response = client.post("/v1/cases", headers=bearer(keys.submitter), data=form)
    assert response.status_code == 201, response.text
    body = response.json()
    assert {flag["code"] for flag in body["flags"]} >= {"under_18", "self_harm_risk", "payment_recallable"}
    assert body["next_steps"][0] == "support-services"
    assert {(i["type"], i["normalized"]) for i in body["identifiers"]} == {
        ("mtcn", "1112223334"),
        ("mtcn", "1112223335"),
        ("username", "snapchat:synthetic_one"),
    }

    case = client.get(f"/v1/cases/{body['reference']}", headers=bearer(keys.analyst)).json()
    assert case["submission"]["platforms"] == ["instagram", "skype"]
    assert case["submission"]["payments"] == [
        {"amount": "50", "currency": "GBP", "method": "western_union", "collected": "no"}
    ]
    assert case["submission"]["reporter"]["email"] == "carer@example.org"


def test_a_multipart_form_creates_a_case_from_its_fields(client, keys):
    response = client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        files={
            "reporter.relationship": (None, "self"),
            "account": (None, "Synthetic multipart account"),
            "skype_id": (None, "live:.cid.0011223344556677"),
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["identifiers"][0]["handle"] == "live:.cid.0011223344556677"


def test_every_bad_field_is_named_in_one_answer_and_nothing_is_stored(client, keys, settings):
    before = count_rows(settings.resolved_database_url, "case")
    response = client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        json={
            "reporter": {"relationship": "neighbour", "email": "not-an-address"},
            "victim": {"age": 300},
            "payments": [{"amount": "lots", "currency": "pounds"}],
            "identifiers": [{"type": "mtcn", "value": "12345"}, {"type": "fax", "value": "1"}],
            "deadline_at": "tomorrow-ish",
            "priority": "urgent",
        },
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {
        "reporter.relationship",
        "reporter.email",
        "victim.age",
        "payments[0].amount",
        "payments[0].currency",
        "identifiers[0].value",
        "identifiers[1].type",
        "deadline_at",
        "priority",
        "account",
    }
    messages = {error["field"]: error["message"] for error in problem["errors"]}
    assert messages["identifiers[0].value"] == "A Western Union MTCN is 10 digits; this has 5."
    assert messages["account"] == "This is required."
    assert "not a field we know" in messages["priority"]
    assert count_rows(settings.resolved_database_url, "case") == before


def test_clients_cannot_set_what_the_service_decides(client, keys):
    for field, value in [
        ("priority", "normal"),
        ("flags", []),
        ("status", "closed"),
        ("reference", "X"),
        ("id", 1),
        ("reporter_token", "irt_x"),
    ]:
        response = client.post("/v1/cases", headers=bearer(keys.submitter), json={**MINIMAL_CASE, field: value})
        assert response.status_code == 422, field
        assert response.json()["errors"][0]["field"] == field


def test_unknown_form_fields_are_refused_by_name(client, keys):
    response = client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        data={"reporter.relationship": "self", "account": "x", "reporter.nickname": "x", "colour": "blue"},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"reporter.nickname", "colour"}


def test_analyst_sees_everything_and_the_reporter_sees_status_and_submission(client, keys, new_case):
    created = new_case(victim={"age": 16}, police_force="north-yorkshire")
    analyst_view = client.get(f"/v1/cases/{created['reference']}", headers=bearer(keys.analyst)).json()
    assert analyst_view["view"] == "analyst"
    assert analyst_view["priority"] == "urgent"
    assert analyst_view["police_force"] == "north-yorkshire"
    assert analyst_view["flags"][0]["code"] == "under_18"

    reporter_view = client.get(f"/v1/cases/{created['reference']}", headers=bearer(created["reporter_token"]))
    assert reporter_view.status_code == 200
    body = reporter_view.json()
    assert body["view"] == "reporter"
    assert body["status"] == "received"
    assert body["submission"]["account"] == MINIMAL_CASE["account"]
    assert "flags" not in body and "submitted_by_key_id" not in body


def test_a_reference_is_found_however_it_is_typed(client, keys, new_case):
    reference = new_case()["reference"]
    typed = reference.lower().replace("-", "")
    assert client.get(f"/v1/cases/{typed}", headers=bearer(keys.analyst)).json()["reference"] == reference


def test_a_mistyped_reference_is_404_and_never_another_case(client, keys, new_case):
    reference = new_case()["reference"]
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    swapped = alphabet[(alphabet.index(reference[0]) + 1) % len(alphabet)] + reference[1:]
    response = client.get(f"/v1/cases/{swapped}", headers=bearer(keys.analyst))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_every_create_and_read_is_audited(client, keys, new_case, settings):
    created = new_case()
    client.get(f"/v1/cases/{created['reference']}", headers={**bearer(keys.analyst), "X-Access-Reason": "triage"})
    rows = audit_events(settings.resolved_database_url, created["reference"])
    assert [row.action for row in rows] == ["case.create", "case.read"]
    assert rows[1].reason == "triage"
    assert rows[1].actor.startswith("key:")


def test_a_date_of_birth_in_the_future_or_over_120_years_ago_is_refused_in_plain_words(client, keys, settings):
    before = count_rows(settings.resolved_database_url, "case")
    for born, message in [
        ("2999-01-01", "The date of birth is in the future. Check the day, month and year."),
        ("1850-06-01", "The date of birth is more than 120 years ago. Check the year."),
    ]:
        response = client.post(
            "/v1/cases", json={**MINIMAL_CASE, "victim": {"date_of_birth": born}}, headers=bearer(keys.submitter)
        )
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "victim.date_of_birth", "message": message}]
    assert count_rows(settings.resolved_database_url, "case") == before


def test_an_amount_may_be_a_json_number_and_a_pound_sign_sets_the_currency(client, keys):
    answers = [
        client.post("/v1/cases", json={**MINIMAL_CASE, "payments": [payment]}, headers=bearer(keys.submitter))
        for payment in ({"amount": 100}, {"amount": "£100"}, {"amount": "100", "currency": "GBP"})
    ]
    assert [answer.status_code for answer in answers] == [201, 201, 201]
    stored = [
        client.get(f"/v1/cases/{answer.json()['reference']}", headers=bearer(keys.analyst)).json()["submission"][
            "payments"
        ][0]
        for answer in answers
    ]
    assert [(payment["amount"], payment.get("currency")) for payment in stored] == [
        ("100", None),
        ("100", "GBP"),
        ("100", "GBP"),
    ]


def test_range_and_pattern_messages_come_from_the_fields_own_constraints(client, keys, new_case):
    page = client.get("/v1/cases", params={"limit": 0}, headers=bearer(keys.analyst))
    assert page.json()["errors"] == [{"field": "limit", "message": "This should be 1 or more."}]
    too_old = client.post("/v1/cases", json={**MINIMAL_CASE, "victim": {"age": 121}}, headers=bearer(keys.submitter))
    assert too_old.json()["errors"] == [{"field": "victim.age", "message": "This should be 120 or less."}]
    reference = new_case()["reference"]
    upload = client.post(
        f"/v1/cases/{reference}/evidence/uploads",
        json={"filename": "a.png", "size": 10, "sha256": "not-a-hash"},
        headers=bearer(keys.submitter),
    )
    assert upload.status_code == 422
    assert upload.json()["errors"] == [
        {"field": "sha256", "message": "Give the SHA-256 as 64 hexadecimal characters (0-9, a-f)."}
    ]


def test_json_with_a_key_given_twice_is_refused_not_read_as_the_last_one(client, keys, new_case):
    """Parsers disagree on which duplicate wins: what a proxy or partner checked must be what is kept."""
    json_body = {"Content-Type": "application/json"}

    def post(path: str, raw: str, token: str):
        return client.post(path, content=raw.encode(), headers={**bearer(token), **json_body})

    case = '{"reporter": {"relationship": "self"}, "account": "checked", "account": "kept"}'
    nested = '{"reporter": {"relationship": "self", "relationship": "other"}, "account": "x"}'
    for raw, field in ((case, "account"), (nested, "relationship")):
        response = post("/v1/cases", raw, keys.submitter)
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {"field": field, "message": "This field is given twice in the same object: send it once."}
        ]
    created = new_case()
    reference, reporter = created["reference"], created["reporter_token"]
    twice = [
        (f"/v1/cases/{reference}/identifiers", '{"type": "mtcn", "value": "1234567890", "value": "1"}', reporter),
        (
            f"/v1/cases/{reference}/evidence/uploads",
            '{"filename": "a.png", "filename": "b.exe", "size": 10, "sha256": "' + "0" * 64 + '"}',
            reporter,
        ),
        (f"/v1/cases/{reference}/notes", '{"body": "checked", "body": "kept"}', keys.analyst),
    ]
    for path, raw, token in twice:
        response = post(path, raw, token)
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def test_an_amount_with_an_absurd_exponent_is_refused_and_a_plain_one_kept_in_digits(client, keys):
    for amount in ("0E+999999999", "1e999999999999", "0e+13"):
        response = client.post(
            "/v1/cases", json={**MINIMAL_CASE, "payments": [{"amount": amount}]}, headers=bearer(keys.submitter)
        )
        assert response.status_code == 422, (amount, response.text)
        assert response.json()["errors"][0]["field"] == "payments[0].amount"
    created = client.post(
        "/v1/cases", json={**MINIMAL_CASE, "payments": [{"amount": "1E+3"}]}, headers=bearer(keys.submitter)
    ).json()
    case = client.get(f"/v1/cases/{created['reference']}", headers=bearer(keys.analyst)).json()
    assert case["submission"]["payments"][0]["amount"] == "1000"


def test_every_route_whose_json_body_fastapi_reads_refuses_duplicate_keys_too(client):
    """Routes with a body model are read by FastAPI, not by parse_json: they must use StrictJsonRoute."""
    from fastapi.routing import APIRoute

    from service.api.bodies import StrictJsonRoute

    def routes(container):
        for route in getattr(container, "routes", []):
            if isinstance(route, APIRoute):
                yield route
            yield from routes(getattr(route, "original_router", route))

    with_body = {(route.path, type(route)) for route in routes(client.app.router) if route.body_field is not None}
    assert len(with_body) >= 4  # the walk reaches the included routers
    assert {path for path, kind in with_body if not issubclass(kind, StrictJsonRoute)} == set()


def test_json_sent_as_a_form_or_without_a_content_type_is_told_what_to_send(client, keys):
    body = json.dumps(MINIMAL_CASE).encode()
    as_form = client.post(  # what `curl -d` sends without -H
        "/v1/cases",
        content=body,
        headers={**bearer(keys.submitter), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "JSON but its Content-Type says it is a form" in assert_problem(as_form, 415)["detail"]
    bare = client.post("/v1/cases", content=body, headers=bearer(keys.submitter))
    assert assert_problem(bare, 415)["detail"].startswith("The Content-Type header is missing.")


def test_the_201_answer_is_built_exactly_as_its_response_model_would_write_it():
    # The hot path writes the CaseCreated JSON itself: it must be what validating and dumping gives.

    now = datetime(2026, 11, 27, 21, 5, 7, 123456, tzinfo=UTC)
    reported = ReportedCase(
        reference="7KQM-X4TR-9PZC",
        reporter_token="irt_synthetic",
        status="received",
        priority="urgent",
        flags=[{"code": "under_18", "reason": "Synthetic reason."}],
        next_steps=["under-18", "dont-panic"],
        identifiers=[
            {
                "type": "mtcn",
                "value": "123-456-7890",
                "normalized": "1234567890",
                "platform": None,
                "handle": None,
                "created_at": now,
            },
            {
                "type": "profile_url",
                "value": "https://instagram.com/s",
                "normalized": "instagram:s",
                "platform": "instagram",
                "handle": "s",
                "created_at": now,
            },
        ],
        evidence=[
            {
                "id": "ev1",
                "filename": "a.png",
                "content_type": "image/png",
                "size": 3,
                "sha256": "ab" * 32,
                "received_at": now.replace(microsecond=0),
            }
        ],
        created_at=now,
    )
    validated = CaseCreated.model_validate({**reported.__dict__}).model_dump(mode="json")
    assert json.dumps(case_created(reported)) == json.dumps(validated)

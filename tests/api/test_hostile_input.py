"""Input shaped to break the parsers (boundaries, field names, forged cursors) is a 422, never a 500.

Fixed cases first (each was a 500 once), then properties: hypothesis feeds arbitrary field names,
boundaries and cursors through the real app on both databases.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.api.form_fields import case_from_form_fields
from service.api.problems import field_errors
from service.api.report_form import errors_by_input
from service.domain.cases import CaseSubmission
from tests.support.cases import MINIMAL_CASE
from tests.support.http import bearer

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LONG_BOUNDARY = "b" * 300


def multipart_body(boundary: str, fields: list[tuple[str, str]]) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in fields
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


def form_token(client) -> str:
    page = client.get("/report")
    return re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)


def cursor(position) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


# --- boundaries -----------------------------------------------------------------------------------


def test_a_boundary_longer_than_the_parser_takes_is_a_422_on_the_api(client, keys, new_case):
    fields = [("reporter.relationship", "self"), ("account", "Synthetic.")]
    headers = {"Content-Type": f"multipart/form-data; boundary={LONG_BOUNDARY}"}
    created = client.post(
        "/v1/cases", content=multipart_body(LONG_BOUNDARY, fields), headers={**headers, **bearer(keys.submitter)}
    )
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["field"] == "body"
    case = new_case()
    evidence = client.post(
        f"/v1/cases/{case['reference']}/evidence",
        content=multipart_body(LONG_BOUNDARY, []),
        headers={**headers, **bearer(case["reporter_token"])},
    )
    assert evidence.status_code == 422, evidence.text


def test_a_boundary_longer_than_the_parser_takes_is_an_html_page_on_the_form(client):
    token = form_token(client)
    sent = client.post(
        "/report",
        content=multipart_body(LONG_BOUNDARY, [("form_token", token), ("account", "Synthetic.")]),
        headers={"Content-Type": f"multipart/form-data; boundary={LONG_BOUNDARY}"},
    )
    assert sent.status_code == 422
    assert sent.headers["content-type"].startswith("text/html")
    assert "boundary is too long" in sent.text


# --- a field sent both bare and dotted --------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        [("reporter", "x"), ("reporter.relationship", "self")],
        [("reporter.relationship", "self"), ("reporter", "x")],
        [("victim", "1"), ("victim.age", "3"), ("reporter.relationship", "self")],
        [("reporter.relationship", "self"), ("payments", "x"), ("payment.amount", "10")],
        [("reporter.relationship", "self"), ("identifiers", "x"), ("mtcn", "1234567890")],
    ],
    ids=["reporter-then-dotted", "dotted-then-reporter", "victim", "payments", "identifiers"],
)
def test_a_field_sent_bare_and_dotted_is_a_422_naming_it(client, keys, fields):
    body = [*fields, ("account", "Synthetic account.")]
    bare = next(name for name, _ in fields if "." not in name and name != "mtcn")
    answer = client.post(
        "/v1/cases",
        content="&".join(f"{name}={value}" for name, value in body),
        headers={"Content-Type": "application/x-www-form-urlencoded", **bearer(keys.submitter)},
    )
    assert answer.status_code == 422, answer.text
    assert any(error["field"].split("[")[0] == bare for error in answer.json()["errors"])
    token = form_token(client)
    page = client.post(
        "/report",
        content=multipart_body("formboundary", [("form_token", token), *body]),
        headers={"Content-Type": "multipart/form-data; boundary=formboundary"},
    )
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "Synthetic account.</textarea>" in page.text  # what was typed is kept


# --- forged cursors ---------------------------------------------------------------------------------

FORGED_CASE_POSITIONS = [
    {"t": "2026-01-01T00:00:00+00:00", "i": 10**30},
    {"t": "2026-01-01T00:00:00+00:00", "i": 2**31},
    {"t": "2026-01-01T00:00:00+00:00", "i": 1e308},
    {"t": "2026-01-01T00:00:00+00:00", "i": -1},
    {"t": "2026-01-01T00:00:00+00:00", "i": True},
    {"t": "9999-12-31T23:59:59-15:00", "i": 1},
    {"t": "0001-01-01T00:00:00+15:00", "i": 1},
    {"t": 5, "i": 1},
]
FORGED_AUDIT_POSITIONS = [{"i": 10**30}, {"i": 1e308}, {"i": 2**31}, {"i": 2**63}, {"i": 0}, {"i": "1"}, {"i": None}]
# json.dumps can't write these; Python's json.loads reads them.
RAW_FORGERIES = ['{"t":"2026-01-01T00:00:00+00:00","i":Infinity}', '{"i":Infinity}', '{"i":-Infinity}', '{"i":NaN}']


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("position", FORGED_CASE_POSITIONS)
def test_a_forged_case_cursor_is_a_422(client, keys, position):
    answer = client.get("/v1/cases", params={"cursor": cursor(position)}, headers=bearer(keys.analyst))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [{"field": "cursor", "message": "This cursor is not one we gave out."}]


@pytest.mark.parametrize("position", FORGED_AUDIT_POSITIONS)
def test_a_forged_audit_cursor_is_a_422(client, keys, position):
    answer = client.get("/v1/audit", params={"cursor": cursor(position)}, headers=bearer(keys.admin))
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("text", RAW_FORGERIES)
def test_infinity_and_nan_in_a_cursor_are_a_422(client, keys, text):
    for path, key in (("/v1/cases", keys.analyst), ("/v1/audit", keys.admin)):
        answer = client.get(path, params={"cursor": raw_cursor(text)}, headers=bearer(key))
        assert answer.status_code == 422, (path, answer.text)


def test_the_cursors_we_give_out_still_work(client, keys, new_case):
    for _ in range(3):
        new_case()
    first = client.get("/v1/cases", params={"limit": 1}, headers=bearer(keys.analyst)).json()
    second = client.get("/v1/cases", params={"limit": 1, "cursor": first["next_cursor"]}, headers=bearer(keys.analyst))
    assert second.status_code == 200 and second.json()["cases"][0]["reference"] != first["cases"][0]["reference"]
    audit = client.get("/v1/audit", params={"limit": 1}, headers=bearer(keys.admin)).json()
    older = client.get("/v1/audit", params={"limit": 1, "cursor": audit["next_cursor"]}, headers=bearer(keys.admin))
    assert older.status_code == 200 and older.json()["events"][0]["id"] < audit["events"][0]["id"]


# --- properties -------------------------------------------------------------------------------------

field_names = st.one_of(
    st.sampled_from(["reporter", "victim", "payment", "payments", "identifiers", "platforms", "mtcn", "username"]),
    st.builds(
        lambda head, rest: f"{head}.{rest}",
        st.sampled_from(["reporter", "victim", "payment", "username", "x"]),
        st.text(min_size=0, max_size=12),
    ),
    st.text(min_size=0, max_size=20),
)
form_fields = st.lists(st.tuples(field_names, st.text(max_size=20)), max_size=12)


@given(fields=form_fields)
@settings(max_examples=300, deadline=None)
def test_any_form_fields_either_make_a_case_or_fail_validation(fields):
    shaped = case_from_form_fields(fields)
    try:
        CaseSubmission.model_validate(shaped)
    except ValidationError as error:
        # and the report form can point each problem back at an input on the page, in words
        on_page = errors_by_input(field_errors(list(error.errors()), drop_prefix=()), shaped)
        assert on_page and all(name and message.strip() for name, message in on_page.items())


ascii_names = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='"\\'), max_size=15)


ascii_fields = st.lists(st.tuples(field_names.filter(str.isascii) | ascii_names, st.text(max_size=15)), max_size=8)


@given(fields=ascii_fields)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_form_body_is_answered_with_a_5xx(client, keys, fields):
    body = [("reporter.relationship", "self"), ("account", "Synthetic."), *fields]
    answer = client.post(
        "/v1/cases",
        content=multipart_body("propertyboundary", [(n.replace('"', ""), v) for n, v in body]),
        headers={"Content-Type": "multipart/form-data; boundary=propertyboundary", **bearer(keys.submitter)},
    )
    assert answer.status_code < 500, answer.text


boundary_characters = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='";,\\')
# Lengths drawn evenly, so the long ones (RFC 2046 allows 70; the parser takes 256) come up as often as short ones.
boundaries = st.integers(1, 400).flatmap(lambda n: st.text(boundary_characters, min_size=n, max_size=n))


@given(boundary=boundaries)
@PROPERTY
def test_no_boundary_is_answered_with_a_5xx(client, keys, boundary):
    answer = client.post(
        "/v1/cases",
        content=multipart_body(boundary, [("reporter.relationship", "self"), ("account", "Synthetic.")]),
        headers={"Content-Type": f'multipart/form-data; boundary="{boundary}"', **bearer(keys.submitter)},
    )
    assert answer.status_code < 500, answer.text
    if answer.status_code != 201:
        assert answer.status_code in (400, 413, 415, 422), answer.text


scalars = st.none() | st.booleans() | st.integers() | st.integers(2**31, 2**200) | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["t", "i", "x"]), inner, max_size=3),
    max_leaves=6,
)
offsets = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-(24 * 60 - 1), 24 * 60 - 1))
moments = st.datetimes(timezones=offsets).map(lambda moment: moment.isoformat())
cursors = st.one_of(
    st.builds(lambda t, i: cursor({"t": t, "i": i}), moments, scalars),
    st.builds(lambda i: cursor({"i": i}), scalars),
    st.builds(cursor, json_values),
    st.text(max_size=200),
)


@given(value=cursors)
@PROPERTY
def test_no_cursor_is_answered_with_a_5xx(client, keys, value):
    for path, key in (("/v1/cases", keys.analyst), ("/v1/audit", keys.admin)):
        answer = client.get(path, params={"cursor": value}, headers=bearer(key))
        assert answer.status_code in (200, 422), (path, value, answer.text)


def test_the_minimal_case_is_still_accepted_as_a_form(client, keys):
    answer = client.post(
        "/v1/cases",
        data={"reporter.relationship": "self", "account": MINIMAL_CASE["account"]},
        headers=bearer(keys.submitter),
    )
    assert answer.status_code == 201, answer.text

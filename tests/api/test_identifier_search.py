"""GET /v1/identifiers with what people type: type and value, or raw text, normalised as intake does."""

from __future__ import annotations

import uuid

import pytest

from service.domain.identifiers import interpret_search
from tests.support.cases import unique_mtcn
from tests.support.http import bearer


def search(client, keys, **params) -> dict:
    response = client.get("/v1/identifiers", params=params, headers=bearer(keys.analyst))
    assert response.status_code == 200, response.text
    return response.json()


def found(answer: dict) -> set[str]:
    return {case["reference"] for case in answer["cases"]}


def test_a_typed_mtcn_with_dashes_finds_the_case_that_the_exact_form_alone_missed(client, keys, new_case):
    mtcn = unique_mtcn()
    case = new_case(identifiers=[{"type": "mtcn", "value": mtcn}])["reference"]
    typed = f"{mtcn[:3]}-{mtcn[3:6]}-{mtcn[6:]}"
    assert search(client, keys, normalized=typed)["cases"] == []
    answer = search(client, keys, type="mtcn", value=typed)
    assert found(answer) == {case}
    assert answer["normalized"] == mtcn and answer["searched"] == [{"type": "mtcn", "normalized": mtcn}]
    assert found(search(client, keys, q=typed)) == {case}


def test_a_raw_profile_link_or_bare_handle_finds_the_profile(client, keys, new_case):
    handle = f"synthetic.{uuid.uuid4().hex[:8]}"
    case = new_case(identifiers=[{"type": "profile_url", "value": f"https://instagram.com/{handle}"}])["reference"]
    raw = f"https://www.instagram.com/{handle.upper()}/?igsh=abc123&utm_source=ig_web"
    assert search(client, keys, normalized=raw)["cases"] == []
    assert found(search(client, keys, type="profile_url", value=raw)) == {case}
    assert found(search(client, keys, q=raw)) == {case}
    by_handle = search(client, keys, q=f"@{handle}")
    assert by_handle["handle"] == handle and found(by_handle) == {case}


def test_a_username_is_found_by_type_value_and_platform_or_by_its_handle(client, keys, new_case):
    handle = f"synthetic_{uuid.uuid4().hex[:8]}"
    case = new_case(identifiers=[{"type": "username", "value": f"@{handle}", "platform": "snapchat"}])["reference"]
    assert found(search(client, keys, type="username", value=handle.upper(), platform="Snapchat")) == {case}
    assert found(search(client, keys, q=handle)) == {case}


def test_a_phone_and_an_email_typed_loosely_are_found(client, keys, new_case):
    digits = str(uuid.uuid4().int)[:3]  # Ofcom's London range for drama: 020 7946 0000 to 0999
    email = f"Synthetic.{uuid.uuid4().hex[:8]}@Example.org"
    case = new_case(
        identifiers=[
            {"type": "phone", "value": f"+44 20 7946 0{digits}"},
            {"type": "email", "value": email},
        ]
    )["reference"]
    assert case in found(search(client, keys, q=f"020 7946 0{digits}"))  # other tests may use the number too
    assert found(search(client, keys, q=f"  {email.upper()} ")) == {case}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "query"),
        ({"normalized": "1", "q": "1"}, "query"),
        ({"type": "mtcn"}, "query"),
        ({"value": "1234567890"}, "query"),
        ({"q": "x", "type": "mtcn", "value": "1234567890"}, "query"),
        ({"type": "mtcn", "value": "12345"}, "value"),
        ({"type": "nonsense", "value": "1"}, "type"),
    ],
)
def test_a_search_that_is_not_one_of_the_three_forms_is_a_422_naming_the_field(client, keys, params, field):
    response = client.get("/v1/identifiers", params=params, headers=bearer(keys.analyst))
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]


def test_raw_searches_are_audited_with_what_was_typed(client, keys):
    typed = "123 456 7890"
    client.get("/v1/identifiers", params={"q": typed}, headers={**bearer(keys.analyst), "X-Access-Reason": "triage"})
    events = client.get("/v1/audit", params={"limit": 5}, headers=bearer(keys.admin)).json()["events"]
    event = next(e for e in events if e["action"] == "identifiers.search")
    assert event["detail"]["raw"] == typed and event["reason"] == "triage"
    assert {"type": "mtcn", "normalized": "1234567890"} in event["detail"]["searched"]


def test_raw_text_is_tried_as_every_type_it_is_valid_for():
    interpreted = interpret_search("12345678")
    assert {item.type.value for item in interpreted.identifiers} >= {"moneygram_reference"}
    assert "mtcn" not in {item.type.value for item in interpreted.identifiers}
    assert interpret_search("has spaces in it").handle is None

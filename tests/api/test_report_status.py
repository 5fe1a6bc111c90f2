"""/report/status: the reporter's way back in with reference and private code; the same answer for a wrong
reference or code, a limit on tries, and additions with the API's rules and audit."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from tests.support.apps import app_client
from tests.support.database import query_rows
from tests.support.evidence import stored_keys
from tests.support.report_form import MINIMAL, cases_stored, error_messages, form_settings, form_token, send
from tests.support.synthetic import png

SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def reported(tmp_path):
    with app_client(form_settings(tmp_path, rate_report_status_per_address="5/minute")) as client:
        sent = send(client, form_token(client.get("/report").text), {**MINIMAL, "victim.age_band": "13_15"})
        confirmation = client.get(sent.headers["location"]).text
        reference = re.search(r'id="reference">([^<]+)<', confirmation).group(1)
        code = re.search(r'id="reporter-token">([^<]+)<', confirmation).group(1)
        yield client, reference, code


def open_status(client, reference: str, code: str):
    return client.post("/report/status", data={"reference": reference, "code": code}, headers=SAME_SITE)


def pass_of(page: str) -> str:
    return re.search(r'name="pass" value="([^"]+)"', page).group(1)


def audit_actions(app) -> list[str]:
    return [row.action for row in query_rows(app.state.engine, "SELECT action FROM audit_event ORDER BY id")]


def test_the_reference_and_code_open_the_status_advice_and_helplines(reported):
    client, reference, code = reported
    assert client.get("/report/status").status_code == 200
    opened = open_status(client, reference.lower().replace("-", " "), code)  # typed any way
    assert opened.status_code == 200
    assert re.search(r'id="status">We have received your report', opened.text)
    assert 'id="advice-under-18"' in opened.text and "Childline" in opened.text  # the case's own advice
    assert code not in opened.text  # the page carries a short-lived pass, never the code
    assert audit_actions(client.app)[-1] == "case.read"


def test_a_wrong_code_and_a_wrong_reference_get_the_same_answer(reported):
    client, reference, code = reported
    wrong_code = open_status(client, reference, "irt_" + "x" * 40)
    wrong_reference = open_status(client, "AAAA-AAAA-AAAA", code)
    assert wrong_code.status_code == wrong_reference.status_code == 404
    assert error_messages(wrong_code.text) == error_messages(wrong_reference.text) != []
    without_echo = [
        page.text.replace(typed, "") for page, typed in ((wrong_code, reference), (wrong_reference, "AAAA-AAAA-AAAA"))
    ]
    assert without_echo[0] == without_echo[1]


def test_tries_are_limited_per_address_right_or_wrong(reported):
    client, reference, code = reported
    answers = [open_status(client, reference, "irt_wrong").status_code for _ in range(5)]
    assert answers == [404] * 5
    limited = open_status(client, reference, code)  # even the right code, once the limit is reached
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "Too many tries" in limited.text and f'value="{reference}"' in limited.text


def test_a_new_file_is_added_with_the_api_rules_and_audited(reported):
    client, reference, code = reported
    pass_token = pass_of(open_status(client, reference, code).text)
    added = client.post(
        "/report/status/evidence",
        data={"pass": pass_token},
        headers=SAME_SITE,
        files=[("evidence", ("screenshot.png", png(), "image/png"))],
    )
    assert added.status_code == 201 and "1 file was added" in added.text
    assert "You have sent 1 file" in added.text
    assert audit_actions(client.app)[-1] == "evidence.add"
    refused = client.post(
        "/report/status/evidence",
        data={"pass": pass_token},
        headers=SAME_SITE,
        files=[("evidence", ("page.html", b"<html>synthetic</html>", "text/html"))],
    )
    assert refused.status_code == 415 and "take a screenshot" in refused.text
    assert len(stored_keys(client.app)) == 1


def test_identifiers_are_checked_like_the_api_and_audited(reported):
    client, reference, code = reported
    pass_token = pass_of(open_status(client, reference, code).text)
    refused = client.post("/report/status/identifiers", data={"pass": pass_token, "mtcn": "12345"}, headers=SAME_SITE)
    assert refused.status_code == 422
    assert error_messages(refused.text) == ["A Western Union MTCN is 10 digits; this has 5."]
    assert 'value="12345"' in refused.text
    added = client.post(
        "/report/status/identifiers", data={"pass": pass_token, "mtcn": "123-456-7890"}, headers=SAME_SITE
    )
    assert added.status_code == 201 and "1 detail was added" in added.text
    assert audit_actions(client.app)[-1] == "identifiers.add"
    assert [row.normalized for row in query_rows(client.app.state.engine, "SELECT normalized FROM identifier")] == [
        "1234567890"
    ]


def test_without_a_valid_pass_or_from_another_site_nothing_is_added(reported):
    client, reference, code = reported
    files = [("evidence", ("screenshot.png", png(), "image/png"))]
    forged = client.post("/report/status/evidence", data={"pass": "forged"}, files=files, headers=SAME_SITE)
    assert forged.status_code == 403
    pass_token = pass_of(open_status(client, reference, code).text)
    cross_site = client.post(
        "/report/status/evidence", data={"pass": pass_token}, files=files, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    assert stored_keys(client.app) == set() and cases_stored(client.app) == 1


@pytest.fixture
def reported_with(tmp_path):
    """A reported case on a deployment with the given settings, opened on the status page: (client, pass)."""

    @contextmanager
    def open_with(**settings):
        with app_client(form_settings(tmp_path, **settings)) as client:
            sent = send(client, form_token(client.get("/report").text), MINIMAL)
            confirmation = client.get(sent.headers["location"]).text
            reference = re.search(r'id="reference">([^<]+)<', confirmation).group(1)
            code = re.search(r'id="reporter-token">([^<]+)<', confirmation).group(1)
            yield client, pass_of(open_status(client, reference, code).text)

    return open_with


def add_file(client, pass_token: str, name: str = "screenshot.png"):
    files = [("evidence", (name, png(), "image/png"))]
    return client.post("/report/status/evidence", data={"pass": pass_token}, headers=SAME_SITE, files=files)


def test_additions_on_the_status_page_are_limited_per_address_and_keep_the_page(reported_with):
    with reported_with(rate_status_additions_per_address="2/minute") as (client, pass_token):
        assert add_file(client, pass_token).status_code == 201
        details = {"pass": pass_token, "mtcn": "123-456-7890"}
        assert client.post("/report/status/identifiers", data=details, headers=SAME_SITE).status_code == 201
        limited = add_file(client, pass_token, "second.png")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "Too many additions from this address" in " ".join(error_messages(limited.text))
        assert 'name="pass"' in limited.text  # still the reporter's own page, ready to try again
        assert len(stored_keys(client.app)) == 1
        refused_details = client.post("/report/status/identifiers", data=details, headers=SAME_SITE)
        assert refused_details.status_code == 429 and 'value="123-456-7890"' in refused_details.text


def test_additions_on_the_status_page_share_the_cases_limit_with_the_api(reported_with):
    with reported_with(rate_additions_per_case="1/minute") as (client, pass_token):
        assert add_file(client, pass_token).status_code == 201
        limited = add_file(client, pass_token, "second.png")
        assert limited.status_code == 429
        assert "Too many additions to this case" in " ".join(error_messages(limited.text))
        assert len(stored_keys(client.app)) == 1


def test_the_status_page_keeps_to_the_cases_evidence_quota(reported_with):
    with reported_with(evidence_case_max_files=1) as (client, pass_token):
        assert add_file(client, pass_token).status_code == 201
        refused = add_file(client, pass_token, "second.png")
        assert refused.status_code == 413
        assert "already holds 1 file " in " ".join(error_messages(refused.text))
        assert len(stored_keys(client.app)) == 1

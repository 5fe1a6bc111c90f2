"""/report/status: the reporter's way back in with reference and private code; the same answer for a wrong
reference or code, a limit on tries, and additions with the API's rules and audit."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import time_machine

from service.api.report_status import STATUS_WORDS
from service.domain.workflow import CaseStatus
from tests.support.apps import BACKENDS, app_client, fresh_database_url
from tests.support.database import count_rows, query_rows
from tests.support.evidence import stored_keys
from tests.support.report_form import (
    MINIMAL,
    SAME_SITE,
    cases_stored,
    error_messages,
    form_settings,
    hidden_fields,
    open_status,
    report_through_the_form,
)
from tests.support.synthetic import png

# A limit filled here must stay filled until the test expects it refused.
pytestmark = pytest.mark.usefixtures("one_rate_window")


@pytest.fixture
def reported(tmp_path):
    with app_client(form_settings(tmp_path, rate_report_status_per_address="5/minute")) as client:
        reference, code, _ = report_through_the_form(client, {**MINIMAL, "victim.age_band": "13_15"})
        yield client, reference, code


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


def notice_of(page: str) -> str | None:
    found = re.search(r'id="notice">([^<]+)<', page)
    return found.group(1) if found else None


def evidence_rows_of(app) -> int:
    return count_rows(app.state.engine, "evidence")


def test_opening_redirects_to_a_page_so_a_refresh_sends_nothing_again(reported):
    client, reference, code = reported
    opened = client.post(
        "/report/status", data={"reference": reference, "code": code}, headers=SAME_SITE, follow_redirects=False
    )
    assert opened.status_code == 303 and opened.headers["location"].startswith("/report/status/case/")
    page = client.get(opened.headers["location"])
    assert page.status_code == 200 and re.search(r'id="status">We have received your report', page.text)
    assert code not in page.text and code not in opened.headers["location"]


def test_a_new_file_is_added_once_with_a_redirect_and_the_api_rules_and_audited(reported):
    client, reference, code = reported
    page = open_status(client, reference, code).text
    form = hidden_fields(page, "/report/status/evidence")
    files = [("evidence", ("screenshot.png", png(), "image/png"))]
    added = client.post("/report/status/evidence", data=form, headers=SAME_SITE, files=files, follow_redirects=False)
    assert added.status_code == 303
    result = client.get(added.headers["location"])
    assert notice_of(result.text) == "Thank you. 1 file was added to your report."
    assert "You have sent 1 file" in result.text
    assert audit_actions(client.app)[-2:] == ["evidence.add", "case.read"]
    refreshed = client.get(added.headers["location"])  # the result is told once; the page is still there
    assert refreshed.status_code == 200 and notice_of(refreshed.text) is None
    assert "You have sent 1 file" in refreshed.text

    again = client.post("/report/status/evidence", data=form, headers=SAME_SITE, files=files, follow_redirects=False)
    assert again.status_code == 303  # the same form sent again (a double click, a resubmitted post)
    assert evidence_rows_of(client.app) == 1 and len(stored_keys(client.app)) == 1
    assert audit_actions(client.app).count("evidence.add") == 1

    fresh = hidden_fields(result.text, "/report/status/evidence")  # the next form of the page adds again
    refused = client.post(
        "/report/status/evidence",
        data=fresh,
        headers=SAME_SITE,
        files=[("evidence", ("page.html", b"<html>synthetic</html>", "text/html"))],
    )
    assert refused.status_code == 415 and "take a screenshot" in refused.text
    assert len(stored_keys(client.app)) == 1
    second = client.post("/report/status/evidence", data=fresh, headers=SAME_SITE, files=files)
    assert notice_of(second.text) == "Thank you. 1 file was added to your report." and evidence_rows_of(client.app) == 2


def test_identifiers_are_checked_like_the_api_added_once_and_audited(reported):
    client, reference, code = reported
    form = hidden_fields(open_status(client, reference, code).text, "/report/status/identifiers")
    refused = client.post("/report/status/identifiers", data={**form, "mtcn": "12345"}, headers=SAME_SITE)
    assert refused.status_code == 422
    assert error_messages(refused.text) == ["A Western Union MTCN is 10 digits; this has 5."]
    assert 'value="12345"' in refused.text
    sent = {**form, "mtcn": "123-456-7890", "username": "synthetic_offender", "username.platform": "Instagram"}
    added = client.post("/report/status/identifiers", data=sent, headers=SAME_SITE, follow_redirects=False)
    assert added.status_code == 303
    assert notice_of(client.get(added.headers["location"]).text) == "Thank you. 2 details were added to your report."
    again = client.post("/report/status/identifiers", data=sent, headers=SAME_SITE, follow_redirects=False)
    assert again.status_code == 303
    assert audit_actions(client.app).count("identifiers.add") == 1
    rows = query_rows(client.app.state.engine, "SELECT type, normalized, platform FROM identifier ORDER BY id")
    assert [(row.type, row.platform) for row in rows] == [("mtcn", None), ("username", "instagram")]
    assert rows[0].normalized == "1234567890"


PASS_SECONDS = 60


def after_the_pass_expires():
    """The clock moved past the pass's life, and running on: a slow machine has the pass's whole life
    again for the rest of the test (a one-second pass and a sleep failed when the machine was busy)."""
    return time_machine.travel(time.time() + PASS_SECONDS + 1, tick=True)


@pytest.fixture
def short_pass(tmp_path):
    settings = form_settings(
        tmp_path, rate_report_status_per_address="5/minute", report_status_session_seconds=PASS_SECONDS
    )
    with app_client(settings) as client:
        reference, code, _ = report_through_the_form(client)
        yield client, reference, code


def test_an_expired_pass_keeps_the_details_typed_and_asks_for_the_code_to_send_them(short_pass):
    client, reference, code = short_pass
    form = hidden_fields(open_status(client, reference, code).text, "/report/status/identifiers")
    with after_the_pass_expires():
        typed = {**form, "mtcn": "12345", "username": "synthetic_offender", "username.platform": "Instagram"}
        expired = client.post("/report/status/identifiers", data=typed, headers=SAME_SITE)
        assert expired.status_code == 403
        messages = error_messages(expired.text)
        assert any("open for a long time" in message for message in re.findall(r"<li><a [^>]+>([^<]+)<", expired.text))
        assert messages == ["A Western Union MTCN is 10 digits; this has 5."]  # mistakes told at once, not after
        assert 'value="12345"' in expired.text and 'value="synthetic_offender"' in expired.text
        assert 'value="Instagram"' in expired.text and 'id="code"' in expired.text
        assert "Anything you typed is still here." in expired.text and "chose files" not in expired.text
        again = hidden_fields(expired.text, "/report/status/identifiers")
        assert "pass" not in again

        resend = {**again, "reference": reference, "code": "irt_wrong", "mtcn": "1234567890"}
        resend.update({"username": "synthetic_offender", "username.platform": "Instagram"})
        wrong = client.post("/report/status/identifiers", data=resend, headers=SAME_SITE)
        assert wrong.status_code == 404, re.findall(r"<li><a [^>]+>([^<]+)<", wrong.text)
        assert 'value="synthetic_offender"' in wrong.text
        assert f'value="{reference}"' in wrong.text
        added = client.post(
            "/report/status/identifiers", data={**resend, "code": code}, headers=SAME_SITE, follow_redirects=False
        )
        assert added.status_code == 303
        assert (
            notice_of(client.get(added.headers["location"]).text) == "Thank you. 2 details were added to your report."
        )
        assert count_rows(client.app.state.engine, "identifier") == 2


def test_an_expired_pass_asks_for_the_code_and_the_files_again_and_keeps_nothing_sent(short_pass):
    client, reference, code = short_pass
    form = hidden_fields(open_status(client, reference, code).text, "/report/status/evidence")
    with after_the_pass_expires():
        files = [("evidence", ("screenshot.png", png(), "image/png"))]
        expired = client.post("/report/status/evidence", data=form, headers=SAME_SITE, files=files)
        assert expired.status_code == 403 and "choose them again" in expired.text and 'id="code"' in expired.text
        assert stored_keys(client.app) == set()
        again = hidden_fields(expired.text, "/report/status/evidence")
        added = client.post(
            "/report/status/evidence",
            data={**again, "reference": reference, "code": code},
            headers=SAME_SITE,
            files=files,
            follow_redirects=False,
        )
        assert added.status_code == 303 and evidence_rows_of(client.app) == 1


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
    """A reported case on a deployment with the given settings, opened on the status page: (client, page)."""

    @contextmanager
    def open_with(**settings):
        with app_client(form_settings(tmp_path, **settings)) as client:
            reference, code, _ = report_through_the_form(client)
            yield client, open_status(client, reference, code).text

    return open_with


def add_file(client, page: str, name: str = "screenshot.png"):
    """Add a file with the evidence form of `page` (its pass and its own form token); redirects followed."""
    files = [("evidence", (name, png(), "image/png"))]
    form = hidden_fields(page, "/report/status/evidence")
    return client.post("/report/status/evidence", data=form, headers=SAME_SITE, files=files)


def test_additions_on_the_status_page_are_limited_per_address_and_keep_the_page(reported_with):
    with reported_with(rate_status_additions_per_address="2/minute") as (client, page):
        added = add_file(client, page)
        assert added.status_code == 200 and notice_of(added.text) == "Thank you. 1 file was added to your report."
        details = {**hidden_fields(added.text, "/report/status/identifiers"), "mtcn": "123-456-7890"}
        added_details = client.post("/report/status/identifiers", data=details, headers=SAME_SITE)
        assert notice_of(added_details.text) == "Thank you. 1 detail was added to your report."
        limited = add_file(client, added_details.text, "second.png")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "Too many additions from this address" in " ".join(error_messages(limited.text))
        assert 'name="pass"' in limited.text  # still the reporter's own page, ready to try again
        assert len(stored_keys(client.app)) == 1
        details = {**hidden_fields(limited.text, "/report/status/identifiers"), "mtcn": "123-456-7890"}
        refused_details = client.post("/report/status/identifiers", data=details, headers=SAME_SITE)
        assert refused_details.status_code == 429 and 'value="123-456-7890"' in refused_details.text


def test_additions_on_the_status_page_share_the_cases_limit_with_the_api(reported_with):
    with reported_with(rate_additions_per_case="1/minute") as (client, page):
        added = add_file(client, page)
        assert notice_of(added.text) == "Thank you. 1 file was added to your report."
        limited = add_file(client, added.text, "second.png")
        assert limited.status_code == 429
        assert "Too many additions to this case" in " ".join(error_messages(limited.text))
        assert len(stored_keys(client.app)) == 1


def test_the_status_page_keeps_to_the_cases_evidence_quota(reported_with):
    with reported_with(evidence_case_max_files=1) as (client, page):
        added = add_file(client, page)
        assert notice_of(added.text) == "Thank you. 1 file was added to your report."
        refused = add_file(client, added.text, "second.png")
        assert refused.status_code == 413
        assert "already holds 1 file " in " ".join(error_messages(refused.text))
        assert len(stored_keys(client.app)) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_form_sent_twice_at_the_same_moment_adds_its_file_once(backend, request, tmp_path, tmp_path_factory):
    database_url = fresh_database_url(backend, request, tmp_path_factory)
    with app_client(form_settings(tmp_path, database_url=database_url), migrate=False) as client:
        reference, code, _ = report_through_the_form(client)
        form = hidden_fields(open_status(client, reference, code).text, "/report/status/evidence")

        def post(_):
            files = [("evidence", ("screenshot.png", png(), "image/png"))]
            return client.post(
                "/report/status/evidence", data=form, headers=SAME_SITE, files=files, follow_redirects=False
            )

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(post, range(2)))
        assert [answer.status_code for answer in answers] == [303, 303]
        assert evidence_rows_of(client.app) == 1 and len(stored_keys(client.app)) == 1
        assert audit_actions(client.app).count("evidence.add") == 1


def test_every_status_of_the_workflow_is_told_in_plain_words():
    assert set(STATUS_WORDS) == set(CaseStatus)
    assert all(words.endswith(".") and "_" not in words for words in STATUS_WORDS.values())

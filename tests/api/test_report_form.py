"""The report form's server side: every refusal answers with the form and what was typed, cross-site
posts refused without cookies, one form token at most one case (POST-redirect-GET), the collected
question, the force, and the switch that turns the form off. (tests/browser drives it as a person would.)"""

from __future__ import annotations

import re
import time

import pytest

from service.api.report_form import issue_form_token
from service.app import create_app
from service.settings import Settings
from tests.support.apps import app_client
from tests.support.database import query_scalar
from tests.support.evidence import stored_keys
from tests.support.report_form import MINIMAL, NO_FILE, cases_stored, error_messages, form_settings, form_token, send
from tests.support.synthetic import png

# A limit filled here must stay filled until the test expects it refused.
pytestmark = pytest.mark.usefixtures("one_rate_window")


@pytest.fixture
def browser(tmp_path):
    with app_client(form_settings(tmp_path)) as client:
        yield client


def test_the_form_is_plain_html_with_its_own_tight_policy_and_sets_no_cookie(browser):
    page = browser.get("/report")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no scripts
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "private, no-cache"  # the back button brings back the same token
    assert "set-cookie" not in page.headers
    assert "<script" not in page.text
    assert "Don&#39;t pay" in page.text and "Childline" in page.text  # advice and helplines beside the form
    assert browser.get("/report/report.css").headers["content-type"].startswith("text/css")


def test_a_report_redirects_to_a_confirmation_that_shows_the_private_code_once(browser):
    sent = send(
        browser,
        form_token(browser.get("/report").text),
        {**MINIMAL, "victim.age_band": "16_17"},
        files=[("evidence", ("screenshot.png", png(), "image/png"))],
    )
    assert sent.status_code == 303
    confirmation = browser.get(sent.headers["location"])
    assert confirmation.status_code == 200
    assert re.search(r'id="reference">[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}<', confirmation.text)
    assert re.search(r'id="reporter-token">irt_', confirmation.text)
    assert "CEOP" in confirmation.text and "1 file" in confirmation.text
    again = browser.get(sent.headers["location"])  # refresh, back button, someone else later
    assert again.status_code == 200 and "irt_" not in again.text and 'id="code-shown-once"' in again.text
    assert cases_stored(browser.app) == 1
    assert browser.get("/report/sent/" + "0" * 40).status_code == 404


def test_one_form_token_makes_at_most_one_case_whatever_is_sent_again(browser):
    token = form_token(browser.get("/report").text)
    first = send(browser, token, MINIMAL)
    files = [("evidence", ("screenshot.png", png(), "image/png"))]
    double_click = send(browser, token, {**MINIMAL, "threats": "Synthetic, edited."}, files=files)
    assert first.status_code == double_click.status_code == 303
    assert double_click.headers["location"] == first.headers["location"]
    assert cases_stored(browser.app) == 1
    assert stored_keys(browser.app) == set()  # the second post's file went with it
    assert 'id="reporter-token">irt_' in browser.get(double_click.headers["location"]).text


def test_the_back_button_and_a_new_page_with_the_same_answers_lead_to_the_first_case(browser):
    first = send(browser, form_token(browser.get("/report").text), MINIMAL)
    # The back button fetches a new page (a new token) and the browser fills the answers back in.
    again = send(browser, form_token(browser.get("/report").text), MINIMAL)
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    assert cases_stored(browser.app) == 1
    different = send(browser, form_token(browser.get("/report").text), {**MINIMAL, "threats": "Synthetic, new."})
    assert different.headers["location"] != first.headers["location"] and cases_stored(browser.app) == 2


def test_mistakes_come_back_on_the_form_with_what_was_typed(browser):
    token = form_token(browser.get("/report").text)
    sent = send(browser, token, {"reporter.relationship": "other", "email": "not-an-email", "threats": "Synthetic."})
    assert sent.status_code == 422
    assert '<a href="#account">Tell us what happened' in sent.text
    assert '<a href="#email">' in sent.text
    assert 'value="not-an-email"' in sent.text and "Synthetic.</textarea>" in sent.text
    assert 'value="other" checked' in sent.text
    assert cases_stored(browser.app) == 0


def test_a_date_of_birth_in_the_future_is_refused_on_the_form(browser):
    sent = send(browser, form_token(browser.get("/report").text), {**MINIMAL, "victim.date_of_birth": "2999-02-01"})
    assert sent.status_code == 422
    assert error_messages(sent.text) == ["The date of birth is in the future. Check the day, month and year."]
    assert 'value="2999-02-01"' in sent.text
    assert cases_stored(browser.app) == 0


def test_a_post_from_another_site_is_refused_without_storing_its_files_and_its_answers_are_shown(browser):
    token = form_token(browser.get("/report").text)
    files = [("evidence", ("screenshot.png", png(), "image/png"))]
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
        forged = send(browser, token, MINIMAL, files=files, headers=headers)
        assert forged.status_code == 403
        assert "sent from another website" in forged.text and "Synthetic account kept.</textarea>" in forged.text
    # A browser without Sec-Fetch-Site still sends Origin on a cross-site post.
    forged = browser.post(
        "/report", data={"form_token": token, **MINIMAL}, files=files, headers={"Origin": "https://attacker.example"}
    )
    assert forged.status_code == 403
    assert stored_keys(browser.app) == set() and cases_stored(browser.app) == 0


def test_no_cookie_is_needed_a_browser_that_blocks_them_can_report(browser):
    token = form_token(browser.get("/report").text)
    browser.cookies.clear()
    sent = browser.post(
        "/report",
        data={"form_token": token, **MINIMAL},
        files=NO_FILE,
        follow_redirects=False,
        headers={"Origin": "http://testserver"},
    )
    assert sent.status_code == 303 and cases_stored(browser.app) == 1


def test_a_wrong_or_missing_token_is_refused_and_the_answers_kept(browser):
    for token in ("0" * 64, ""):
        wrong = send(browser, token, {**MINIMAL, "reporter.email": "kept@example.org"})
        assert wrong.status_code == 403
        assert "Synthetic account kept." in wrong.text and 'value="kept@example.org"' in wrong.text
        assert "couldn&#39;t check that this form came from this website" in wrong.text
    assert cases_stored(browser.app) == 0


def test_a_page_left_open_too_long_keeps_the_answers_and_asks_to_send_again(browser):
    lifetime = browser.app.state.settings.report_form_token_lifetime
    old = issue_form_token(browser.app.state.link_secret, time.time() - lifetime.total_seconds() - 60)
    expired = send(browser, old, {**MINIMAL, "victim.age_band": "13_15"})
    assert expired.status_code == 403
    assert "open for a long time" in expired.text
    assert "Synthetic account kept.</textarea>" in expired.text and 'value="13_15" checked' in expired.text
    assert send(browser, form_token(expired.text), MINIMAL).status_code == 303  # the new page's token works


def test_a_refused_file_comes_back_as_an_error_on_the_form(browser):
    token = form_token(browser.get("/report").text)
    files = [("evidence", ("page.html", b"<html><body>synthetic</body></html>", "text/html"))]
    fields = {**MINIMAL, "reporter.email": "a@example.org"}
    sent = send(browser, token, fields, files=files + [("evidence", ("ok.png", png(), "image/png"))])
    assert sent.status_code == 415
    assert '<a href="#evidence">' in sent.text and "take a screenshot" in sent.text
    assert "Synthetic account kept.</textarea>" in sent.text and 'value="a@example.org"' in sent.text
    assert "please choose them again" in sent.text
    assert cases_stored(browser.app) == 0 and stored_keys(browser.app) == set()  # the good file went too


def test_too_many_files_is_refused_beside_the_answers(tmp_path):
    # The form is anyone's: its allowance is the anonymous one, smaller than a secret key's.
    with app_client(form_settings(tmp_path, anonymous_evidence_max_files=1, evidence_max_files=5)) as client:
        app = client.app
        page = client.get("/report").text
        assert "Up to 1 file" in page
        files = [("evidence", (f"{n}.png", png(), "image/png")) for n in range(2)]
        sent = send(client, form_token(page), MINIMAL, files=files)
        assert sent.status_code == 413
        assert error_messages(sent.text) == ["Send at most 1 file with a report."]
        assert "Synthetic account kept.</textarea>" in sent.text
        assert cases_stored(app) == 0 and stored_keys(app) == set()


def test_a_file_over_the_forms_smaller_size_limit_is_refused_beside_the_answers(tmp_path):
    with app_client(form_settings(tmp_path, anonymous_evidence_max_bytes=1024)) as client:
        app = client.app
        files = [("evidence", ("chat.txt", b"Synthetic chat line\n" * 100, "text/plain"))]
        sent = send(client, form_token(client.get("/report").text), MINIMAL, files=files)
        assert sent.status_code == 413
        assert error_messages(sent.text) == ["&#39;chat.txt&#39; is larger than the limit of 1 KB."]
        assert "Synthetic account kept.</textarea>" in sent.text
        assert cases_stored(app) == 0 and stored_keys(app) == set()


def test_too_much_text_is_refused_and_what_came_before_it_kept(tmp_path):
    with app_client(form_settings(tmp_path, max_body_bytes=2000)) as client:
        app = client.app
        token = form_token(client.get("/report").text)
        sent = send(client, token, {"reporter.relationship": "self", "threats": "x" * 5000})
        assert sent.status_code == 413
        assert 'value="self" checked' in sent.text
        assert "What you typed is too long to send in one go." in sent.text
        assert cases_stored(app) == 0


def test_a_rate_limited_post_keeps_every_typed_value_and_says_when_to_try_again(tmp_path):
    with app_client(form_settings(tmp_path, rate_case_creation_per_address="1/minute")) as client:
        app = client.app
        token = form_token(client.get("/report").text)
        assert send(client, form_token(client.get("/report").text), MINIMAL).status_code == 303
        fields = {**MINIMAL, "victim.age_band": "13_15", "mtcn": "1234567890", "payment.collected": "unknown"}
        limited = send(client, token, fields, files=[("evidence", ("screenshot.png", png(), "image/png"))])
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert limited.headers["content-type"].startswith("text/html")
        assert f"wait {limited.headers['retry-after']} seconds" in limited.text
        assert "Synthetic account kept.</textarea>" in limited.text and 'value="1234567890"' in limited.text
        assert 'value="13_15" checked' in limited.text and 'value="unknown" checked' in limited.text
        assert cases_stored(app) == 1 and stored_keys(app) == set()


def test_with_the_database_down_the_form_comes_back_with_everything_typed(tmp_path):
    with app_client(
        Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/missing/folder/intake.db"), migrate=False
    ) as client:
        sent = send(client, form_token(client.get("/report").text), MINIMAL)
        assert sent.status_code == 503 and int(sent.headers["retry-after"]) > 0
        assert "couldn&#39;t save your report just now" in sent.text
        assert "Synthetic account kept.</textarea>" in sent.text


def test_an_unanswered_or_unknown_collection_of_a_recent_transfer_brings_the_cancel_advice(browser):
    for collected in ("unknown", None):
        fields = {**MINIMAL, "payment.method": "western_union", "payment.reference": "1234567890"}
        if collected:
            fields["payment.collected"] = collected
        sent = send(browser, form_token(browser.get("/report").text), fields)
        confirmation = browser.get(sent.headers["location"]).text
        assert 'id="advice-cancel-a-payment"' in confirmation
    refused = send(
        browser,
        form_token(browser.get("/report").text),
        {**MINIMAL, "payment.method": "western_union", "payment.collected": "yes"},
    )
    assert 'id="advice-cancel-a-payment"' not in browser.get(refused.headers["location"]).text


def test_the_form_asks_the_force_and_refuses_one_not_on_the_list(browser):
    page = browser.get("/report").text
    assert '<option value="north-yorkshire">North Yorkshire Police</option>' in page
    sent = send(browser, form_token(page), {**MINIMAL, "police_force": "north-yorkshire"})
    assert sent.status_code == 303
    assert query_scalar(browser.app.state.engine, 'SELECT police_force FROM "case"') == "north-yorkshire"
    tampered = send(browser, form_token(page), {**MINIMAL, "police_force": "north-yorks"})
    assert tampered.status_code == 422 and "Did you mean north-yorkshire" in tampered.text


def test_a_deployment_sets_the_force_of_every_form_report(tmp_path):
    with app_client(form_settings(tmp_path, form_police_force="west-yorkshire")) as client:
        app = client.app
        page = client.get("/report").text
        assert 'name="police_force"' not in page
        assert send(client, form_token(page), {**MINIMAL, "police_force": "kent"}).status_code == 303
        assert query_scalar(app.state.engine, 'SELECT police_force FROM "case"') == "west-yorkshire"
    with pytest.raises(ValueError, match="Did you mean west-yorkshire"):
        create_app(form_settings(tmp_path, form_police_force="west-yorks"))


def test_the_form_can_be_turned_off(tmp_path):
    with app_client(form_settings(tmp_path, report_form_enabled=False)) as client:
        assert client.get("/report").status_code == 404
        assert client.post("/report", data={"account": "x"}).status_code == 404
        assert client.get("/report/status").status_code == 404

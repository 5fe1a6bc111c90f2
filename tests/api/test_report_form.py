"""The report form's server side: CSRF, input kept on errors, limits, and the switch that turns it off.
(The browser tests in tests/browser drive it as a person would.)"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.api.report_form import CSRF_COOKIE
from service.app import create_app
from service.cli import upgrade_database
from service.settings import Settings
from tests.api.test_evidence import stored_keys
from tests.synthetic import png


def form_app(tmp_path, **settings):
    configured = Settings(data_dir=tmp_path, **{"rate_case_creation_per_address": "off", **settings})
    upgrade_database(configured.resolved_database_url)
    return create_app(configured)


@pytest.fixture
def browser(tmp_path):
    app = form_app(tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.engine.dispose()


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" id="csrf" value="([^"]+)"', page).group(1)


def send(client, token: str, fields: dict, files=None):
    return client.post(
        "/report",
        data={"csrf_token": token, **fields},
        files=files or [("evidence", ("", b"", "application/octet-stream"))],  # as a browser sends no file
    )


def cases_stored(app) -> int:
    import sqlalchemy as sa

    with app.state.engine.connect() as connection:
        return connection.execute(sa.text('SELECT count(*) FROM "case"')).scalar_one()


def test_the_form_is_plain_html_with_its_own_tight_policy_and_a_csrf_cookie(browser):
    page = browser.get("/report")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no scripts
    assert "form-action 'self'" in page.headers["content-security-policy"]
    assert "<script" not in page.text
    cookie = page.headers["set-cookie"]
    assert CSRF_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Don&#39;t pay" in page.text and "Childline" in page.text  # advice and helplines beside the form
    assert browser.get("/report/report.css").headers["content-type"].startswith("text/css")


def test_a_report_from_the_form_lands_with_its_evidence(browser):
    token = csrf_token(browser.get("/report").text)
    sent = send(
        browser,
        token,
        {"reporter.relationship": "self", "account": "Synthetic account.", "victim.age_band": "16_17"},
        files=[("evidence", ("screenshot.png", png(), "image/png"))],
    )
    assert sent.status_code == 201
    assert re.search(r'id="reference">[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}<', sent.text)
    assert "CEOP" in sent.text and "1 file" in sent.text
    assert cases_stored(browser.app) == 1


def test_mistakes_come_back_on_the_form_with_what_was_typed(browser):
    token = csrf_token(browser.get("/report").text)
    sent = send(browser, token, {"reporter.relationship": "other", "email": "not-an-email", "threats": "Synthetic."})
    assert sent.status_code == 422
    assert '<a href="#account">Tell us what happened' in sent.text
    assert '<a href="#email">' in sent.text
    assert 'value="not-an-email"' in sent.text and "Synthetic.</textarea>" in sent.text
    assert 'value="other" checked' in sent.text
    assert cases_stored(browser.app) == 0


def test_a_post_from_another_site_is_refused_before_its_files_are_stored(browser):
    token = csrf_token(browser.get("/report").text)
    browser.cookies.clear()  # a forged post from elsewhere carries no SameSite=Strict cookie of ours
    files = [("evidence", ("screenshot.png", png(), "image/png"))]
    forged = send(browser, token, {"reporter.relationship": "self", "account": "Synthetic."}, files=files)
    assert forged.status_code == 403
    assert "sent from another website" in forged.text
    assert stored_keys(browser.app) == set() and cases_stored(browser.app) == 0


def test_a_wrong_token_or_a_foreign_origin_is_refused_and_the_answers_kept(browser):
    browser.get("/report")
    wrong = send(browser, "0" * 64, {"reporter.relationship": "self", "account": "Synthetic kept text."})
    assert wrong.status_code == 403 and "Synthetic kept text." in wrong.text
    token = csrf_token(wrong.text)
    foreign = browser.post(
        "/report",
        data={"csrf_token": token, "reporter.relationship": "self", "account": "Synthetic."},
        files=[("evidence", ("", b"", "application/octet-stream"))],
        headers={"Origin": "https://attacker.example"},
    )
    assert foreign.status_code == 403
    assert cases_stored(browser.app) == 0


def test_a_refused_file_comes_back_as_an_error_on_the_form(browser):
    token = csrf_token(browser.get("/report").text)
    files = [("evidence", ("page.html", b"<html><body>synthetic</body></html>", "text/html"))]
    fields = {"reporter.relationship": "self", "account": "Synthetic account kept.", "reporter.email": "a@example.org"}
    sent = send(browser, token, fields, files=files + [("evidence", ("ok.png", png(), "image/png"))])
    assert sent.status_code == 415
    assert '<a href="#evidence">' in sent.text and "take a screenshot" in sent.text
    assert "Synthetic account kept.</textarea>" in sent.text and 'value="a@example.org"' in sent.text
    assert cases_stored(browser.app) == 0 and stored_keys(browser.app) == set()  # the good file went too


def test_the_form_has_the_address_rate_limit(tmp_path):
    app = form_app(tmp_path, rate_case_creation_per_address="1/minute")
    with TestClient(app, raise_server_exceptions=False) as client:
        token = csrf_token(client.get("/report").text)
        assert send(client, token, {"reporter.relationship": "self", "account": "Synthetic."}).status_code == 201
        limited = send(client, token, {"reporter.relationship": "self", "account": "Synthetic."})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    app.state.engine.dispose()


def test_the_form_can_be_turned_off(tmp_path):
    app = form_app(tmp_path, report_form_enabled=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/report").status_code == 404
        assert client.post("/report", data={"account": "x"}).status_code == 404
    app.state.engine.dispose()

"""The reporter's journey in headless Chromium (Debian's), with JavaScript off and on and with the keyboard
alone: nothing typed is lost when a post is refused, one form is one case, the collected question brings
the right advice, a future date of birth is refused, and /report/status shows the case and takes a file.
axe-core checks every page in every state it reaches (it needs JavaScript, so it runs in the JS-on passes).

Set INTAKE_UPDATE_SCREENSHOTS=1 to refresh the screenshots under docs/screenshots/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devsupport.postgres import PostgresServer
from tests.support.apps import running_service
from tests.support.browser import accessibility_violations, screenshot, tab_to
from tests.support.database import count_rows

pytestmark = [pytest.mark.browser]
EXIT_URL = "about:blank#left"


def serve(tmp_path_factory, name: str, **environment: str):
    data = tmp_path_factory.mktemp(name)
    return data, running_service(
        f"sqlite:///{data / 'intake.db'}", data, INTAKE_REPORT_EXIT_URL=EXIT_URL, **environment
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data, service = serve(tmp_path_factory, "journey")
    with service as (base, keys):
        yield base, data


@pytest.fixture(scope="module")
def rate_limited(tmp_path_factory):
    data, service = serve(tmp_path_factory, "limited", INTAKE_RATE_CASE_CREATION_PER_ADDRESS="1/hour")
    with service as (base, _):
        yield base, data


@pytest.fixture(scope="module")
def short_lived_pages(tmp_path_factory):
    data, service = serve(tmp_path_factory, "short", INTAKE_REPORT_FORM_TOKEN_LIFETIME="PT6S")
    with service as (base, _):
        yield base, data


@pytest.fixture(scope="module")
def short_status_sessions(tmp_path_factory):
    data, service = serve(tmp_path_factory, "status-short", INTAKE_REPORT_STATUS_SESSION_SECONDS="3")
    with service as (base, _):
        yield base, data


@pytest.fixture(scope="module")
def on_postgres(tmp_path_factory):
    """The service on a PostgreSQL server of its own, which a test may stop: (base, server)."""
    data = tmp_path_factory.mktemp("outage")
    with PostgresServer() as postgres:
        database_url = postgres.create_database("journey")
        with running_service(database_url, data, INTAKE_REPORT_EXIT_URL=EXIT_URL) as (base, _):
            yield base, postgres


@pytest.fixture(params=[True, False], ids=["js-on", "js-off"])
def page(request, browser):
    # CSP is bypassed only so the test can inject axe-core; the pages themselves run no script.
    context = browser.new_context(
        java_script_enabled=request.param, bypass_csp=request.param, viewport={"width": 1100, "height": 900}
    )
    opened = context.new_page()
    opened.scripts_on = request.param
    yield opened
    context.close()


def no_accessibility_violations(page) -> None:
    """Every violation axe-core finds, of any impact, on the page as it is now (skipped without JavaScript)."""
    if not _scripts_on(page):
        return
    found = accessibility_violations(page)
    assert found == [], f"{page.url}: {found}"


def _scripts_on(page) -> bool:
    return getattr(page, "scripts_on", True)


def told(page, account: str) -> str:
    # Each pass tells its own story: the same answers from the same address are the same report.
    return f"{account} (scripts {'on' if _scripts_on(page) else 'off'})"


def cases_in(data: Path) -> int:
    return count_rows(f"sqlite:///{data / 'intake.db'}", "case")


def fill_everything(page, account: str) -> None:
    page.get_by_label("I am a parent or carer of the person it happened to").check()
    page.get_by_label("13 to 15").check()
    page.get_by_label("Which police force covers where they live? (optional)").select_option("north-yorkshire")
    page.get_by_label("What happened?").fill(account)
    page.get_by_label("What are they threatening to do? (optional)").fill("Synthetic threat to share a video.")
    page.get_by_label("I feel unsafe, or I have thought about hurting myself").check()
    page.get_by_label("Their username").fill("synthetic_offender")
    page.get_by_label("Which app or site is that username on?").fill("Instagram")
    page.get_by_label("Western Union MTCN").fill("1234567890")
    page.get_by_label("How did you pay?").select_option("western_union")
    page.get_by_label("How much did you pay?").fill("£150")
    page.get_by_label("I don't know", exact=True).check()
    page.get_by_label("Email address", exact=True).fill("carer@example.org")


def assert_everything_kept(page, account: str) -> None:
    assert page.get_by_label("I am a parent or carer of the person it happened to").is_checked()
    assert page.get_by_label("13 to 15").is_checked()
    assert page.get_by_label("Which police force covers where they live? (optional)").input_value() == "north-yorkshire"
    assert page.get_by_label("What happened?").input_value() == account
    assert (
        page.get_by_label("What are they threatening to do? (optional)").input_value()
        == "Synthetic threat to share a video."
    )
    assert page.get_by_label("I feel unsafe, or I have thought about hurting myself").is_checked()
    assert page.get_by_label("Their username").input_value() == "synthetic_offender"
    assert page.get_by_label("Which app or site is that username on?").input_value() == "Instagram"
    assert page.get_by_label("Western Union MTCN").input_value() == "1234567890"
    assert page.get_by_label("How did you pay?").input_value() == "western_union"
    assert page.get_by_label("How much did you pay?").input_value() == "£150"
    assert page.get_by_label("I don't know", exact=True).is_checked()
    assert page.get_by_label("Email address", exact=True).input_value() == "carer@example.org"
    assert "please choose them again" in page.content()


def send(page) -> None:
    page.get_by_role("button", name="Send report").click()
    page.wait_for_load_state()


def test_a_rate_limited_post_keeps_every_typed_value(rate_limited, page, evidence_file, tmp_path):
    base, data = rate_limited
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill(told(page, "Synthetic first report, which uses up the hour's allowance."))
    send(page)  # the first pass (JavaScript on) spends the hour's allowance; the second finds it spent
    page.goto(base + "/report")
    account = told(page, "Synthetic account typed before the limit tripped.")
    fill_everything(page, account)
    page.get_by_label("Screenshots, videos, chat logs or receipts").set_input_files(str(evidence_file))
    before = cases_in(data)
    with page.expect_response(lambda answer: answer.request.method == "POST") as posted:
        page.get_by_role("button", name="Send report").click()
    page.wait_for_load_state()
    assert posted.value.status == 429
    assert page.title().startswith("Error:")
    assert "Too many reports have been sent from your connection" in page.get_by_role("alert").inner_text()
    assert_everything_kept(page, account)
    assert cases_in(data) == before
    no_accessibility_violations(page)
    if _scripts_on(page):
        screenshot(page, "report-rate-limited.png", tmp_path)


def test_an_expired_page_keeps_its_answers_and_sends_on_the_second_try_without_any_cookie(short_lived_pages, page):
    base, data = short_lived_pages
    page.goto(base + "/report")
    account = told(page, "Synthetic account from a page left open too long.")
    fill_everything(page, account)
    time.sleep(7)  # the deployment's pages last 6 seconds
    before = cases_in(data)
    send(page)
    assert page.title().startswith("Error:")
    assert "open for a long time" in page.get_by_role("alert").inner_text()
    assert_everything_kept(page, account)
    no_accessibility_violations(page)
    send(page)
    page.get_by_role("heading", name="Report sent").wait_for()
    assert cases_in(data) == before + 1
    assert page.context.cookies() == []  # nothing depends on a cookie


def test_double_submit_refresh_and_back_make_one_case(live, page):
    base, data = live
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill(told(page, "Synthetic account sent with a double click."))
    before = cases_in(data)
    page.get_by_role("button", name="Send report").dblclick()
    page.get_by_role("heading", name="Report sent").wait_for()
    reference = page.locator("#reference").inner_text()
    page.reload()  # a GET: POST-redirect-GET means nothing is sent again
    assert page.locator("#reference").inner_text() == reference
    assert page.locator("#reporter-token").count() == 0 and page.locator("#code-shown-once").is_visible()
    no_accessibility_violations(page)
    page.go_back()
    if page.get_by_role("button", name="Send report").count():
        send(page)  # whatever the browser restored, the same form is at most the same case
    assert cases_in(data) == before + 1


def test_dont_know_for_a_western_union_payment_leads_to_the_cancel_a_payment_advice(live, page):
    base, _ = live
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill(told(page, "Synthetic account: I paid by Western Union an hour ago."))
    page.get_by_label("How did you pay?").select_option("western_union")
    page.get_by_label("Payment or transfer reference").fill("123-456-7890")
    page.get_by_label("I don't know", exact=True).check()
    send(page)
    page.get_by_role("heading", name="Report sent").wait_for()
    advice = page.locator("#advice-cancel-a-payment")
    assert advice.is_visible()
    no_accessibility_violations(page)


def test_a_date_of_birth_in_the_future_is_refused_and_kept(live, page):
    base, data = live
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill(told(page, "Synthetic account with a mistyped date of birth."))
    page.get_by_label("Their date of birth, if you know it (optional)").fill("2999-01-01")
    before = cases_in(data)
    send(page)
    summary = page.get_by_role("alert")
    assert "The date of birth is in the future" in summary.inner_text()
    assert page.get_by_label("Their date of birth, if you know it (optional)").input_value() == "2999-01-01"
    assert cases_in(data) == before
    no_accessibility_violations(page)


def test_the_status_page_shows_the_status_and_accepts_a_new_file(live, page, evidence_file, tmp_path):
    base, _ = live
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("16 or 17").check()
    page.get_by_label("What happened?").fill(told(page, "Synthetic account, to come back to later."))
    send(page)
    reference = page.locator("#reference").inner_text()
    code = page.locator("#reporter-token").inner_text()
    page.get_by_role("link", name="check your report and add more evidence").click()
    no_accessibility_violations(page)

    page.get_by_label("Reference").fill(reference)
    page.get_by_label("Private code").fill("irt_not-the-code")
    page.get_by_role("button", name="Continue").click()
    assert "couldn't find a report with that reference and private code" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Reference").input_value() == reference
    no_accessibility_violations(page)

    page.get_by_label("Private code").fill(code)
    page.get_by_role("button", name="Continue").click()
    assert page.locator("#status").inner_text().startswith("We have received your report")
    assert page.locator("#advice-under-18").is_visible() and "Childline" in page.content()
    no_accessibility_violations(page)
    if _scripts_on(page):
        screenshot(page, "report-status.png", tmp_path)

    page.get_by_label("Western Union MTCN").fill("12345")
    page.get_by_role("button", name="Add details").click()
    assert "A Western Union MTCN is 10 digits" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Western Union MTCN").input_value() == "12345"
    no_accessibility_violations(page)

    page.get_by_label("Screenshots, videos, chat logs or receipts").set_input_files(str(evidence_file))
    page.get_by_role("button", name="Add files").click()
    assert page.locator("#notice").inner_text() == "Thank you. 1 file was added to your report."
    assert "You have sent 1 file of evidence" in page.content()
    no_accessibility_violations(page)


def report_and_open_status(page, base: str, account: str) -> tuple[str, str]:
    """Send a minimal report, then open its status page with the reference and code: (reference, code)."""
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill(told(page, account))
    send(page)
    reference, code = page.locator("#reference").inner_text(), page.locator("#reporter-token").inner_text()
    page.goto(base + "/report/status")
    page.get_by_label("Reference").fill(reference)
    page.get_by_label("Private code").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.locator("#status").wait_for()
    return reference, code


def evidence_of(data: Path, reference: str) -> int:
    in_case = 'case_id = (SELECT id FROM "case" WHERE reference = :reference)'
    return count_rows(f"sqlite:///{data / 'intake.db'}", "evidence", in_case, reference=reference)


def test_a_file_added_on_the_status_page_is_added_once_whatever_refresh_back_or_double_click(live, page, evidence_file):
    base, data = live
    reference, _ = report_and_open_status(page, base, "Synthetic account, then a file added twice over.")
    page.get_by_label("Screenshots, videos, chat logs or receipts").set_input_files(str(evidence_file))
    page.get_by_role("button", name="Add files").dblclick()
    page.locator("#notice").wait_for()
    assert page.locator("#notice").inner_text() == "Thank you. 1 file was added to your report."
    assert "/report/status/case/" in page.url  # the post answered with a redirect to a page
    page.reload()  # a GET: nothing is sent again, and the thanks is not told twice
    assert page.locator("#notice").count() == 0 and "You have sent 1 file of evidence" in page.content()
    no_accessibility_violations(page)
    page.go_back()
    page.locator("#status").wait_for()
    page.go_forward()
    page.locator("#status").wait_for()
    assert evidence_of(data, reference) == 1


def test_an_expired_status_page_keeps_the_details_and_adds_them_after_the_code(short_status_sessions, page, tmp_path):
    base, data = short_status_sessions
    reference, code = report_and_open_status(page, base, "Synthetic account, details added after a pause.")
    page.get_by_label("Their username").fill("synthetic_offender")
    page.get_by_label("Which app or site is that username on?").fill("Instagram")
    page.get_by_label("Western Union MTCN").fill("12345")
    time.sleep(4)  # this deployment's status pages last 3 seconds
    page.get_by_role("button", name="Add details").click()
    summary = page.get_by_role("alert").inner_text()
    assert "open for a long time" in summary and "A Western Union MTCN is 10 digits" in summary
    assert page.get_by_label("Their username").input_value() == "synthetic_offender"
    assert page.get_by_label("Which app or site is that username on?").input_value() == "Instagram"
    assert page.get_by_label("Western Union MTCN").input_value() == "12345"
    no_accessibility_violations(page)
    if _scripts_on(page):
        screenshot(page, "report-status-expired.png", tmp_path)
    page.get_by_label("Reference").fill(reference)
    page.get_by_label("Private code").fill(code)
    page.get_by_label("Western Union MTCN").fill("1234567890")
    page.get_by_role("button", name="Add details").click()
    assert page.locator("#notice").inner_text() == "Thank you. 2 details were added to your report."
    no_accessibility_violations(page)
    in_case = 'case_id = (SELECT id FROM "case" WHERE reference = :reference)'
    assert count_rows(f"sqlite:///{data / 'intake.db'}", "identifier", in_case, reference=reference) == 2


def test_the_status_page_with_the_keyboard_alone(live, browser):
    base, _ = live
    context = browser.new_context()
    page = context.new_page()
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill(told(page, "Synthetic account for the keyboard check."))
    send(page)
    reference, code = page.locator("#reference").inner_text(), page.locator("#reporter-token").inner_text()
    page.goto(base + "/report/status")

    tab_to(page, "reference", presses=40)
    page.keyboard.type(reference)
    tab_to(page, "code", presses=40)
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.locator("#status").wait_for()
    tab_to(page, "mtcn", presses=40)
    page.keyboard.type("1234567890")
    page.keyboard.press("Enter")
    assert page.locator("#notice").inner_text() == "Thank you. 1 detail was added to your report."
    context.close()


def test_a_confirmation_link_that_has_gone_says_so_plainly(live, page):
    base, _ = live
    response = page.goto(base + "/report/sent/" + "0" * 40)
    assert response.status == 404
    assert page.get_by_role("heading", name="This page is no longer available").is_visible()
    no_accessibility_violations(page)


def test_every_report_page_has_the_quick_exit_first(live, page):
    base, _ = live
    for path in ("/report", "/report/status"):
        page.goto(base + path)
        exit_link = page.get_by_role("link", name="Leave this site quickly")
        assert exit_link.get_attribute("href") == EXIT_URL
        assert page.locator("a").nth(1).get_attribute("id") == "exit-this-page"  # after the skip link only


@pytest.mark.postgres
def test_with_the_database_stopped_every_page_says_so_plainly_and_keeps_what_was_typed(on_postgres, page):
    base, postgres = on_postgres
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill(told(page, "Synthetic account sent before the outage."))
    send(page)
    sent_page = page.url
    reference, code = page.locator("#reference").inner_text(), page.locator("#reporter-token").inner_text()
    page.goto(base + "/report/status")
    page.get_by_label("Reference").fill(reference)
    page.get_by_label("Private code").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.locator("#status").wait_for()
    postgres.pg_ctl("stop")
    try:
        page.get_by_label("Western Union MTCN").fill("1234567890")
        with page.expect_response(lambda answer: answer.request.method == "POST") as posted:
            page.get_by_role("button", name="Add details").click()
        page.wait_for_load_state()
        assert posted.value.status == 503
        assert "couldn't reach your report just now" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("Western Union MTCN").input_value() == "1234567890"
        no_accessibility_violations(page)

        assert page.goto(sent_page).status == 503
        assert page.get_by_role("heading", name="Sorry, this page is not working right now").is_visible()
        no_accessibility_violations(page)

        page.goto(base + "/report")
        account = told(page, "Synthetic account typed during the outage.")
        fill_everything(page, account)
        with page.expect_response(lambda answer: answer.request.method == "POST") as posted:
            page.get_by_role("button", name="Send report").click()
        page.wait_for_load_state()
        assert posted.value.status == 503
        assert "couldn't save your report just now" in page.get_by_role("alert").inner_text()
        assert_everything_kept(page, account)
        no_accessibility_violations(page)
    finally:
        postgres.pg_ctl("start")

"""The reference report form in real headless Chromium (Debian's), driven by Playwright.

Set INTAKE_UPDATE_SCREENSHOTS=1 to refresh the screenshots under docs/screenshots/.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.apps import running_service
from tests.support.browser import AXE, accessibility_violations, screenshot, tab_to
from tests.support.database import create_key
from tests.support.http import bearer

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("browser")
    exit_url = "about:blank#left"  # the closed network has nowhere else to go
    with running_service(f"sqlite:///{data / 'intake.db'}", data, INTAKE_REPORT_EXIT_URL=exit_url) as running:
        yield (*running, data)


@pytest.fixture
def page(browser):
    # CSP is bypassed only so the test can inject axe-core; the page itself runs no script.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1100, "height": 900})
    yield context.new_page()
    context.close()


def serious_accessibility_violations(page) -> list[str]:
    return accessibility_violations(page, impacts=("serious", "critical"))


def test_a_report_with_a_file_gets_a_reference_that_the_api_then_returns(live, page, evidence_file, tmp_path):
    base, keys, data = live
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("13 to 15").check()
    page.get_by_label("What happened?").fill("Synthetic account: someone on a video call recorded it and wants money.")
    page.get_by_label("Link to their profile").fill("https://www.instagram.com/synthetic.offender")
    page.get_by_label("Screenshots, videos, chat logs or receipts").set_input_files(str(evidence_file))
    screenshot(page, "report-form.png", tmp_path)
    page.get_by_role("button", name="Send report").click()

    page.get_by_role("heading", name="Report sent").wait_for()
    reference = page.locator("#reference").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", reference)
    assert page.locator("#reporter-token").inner_text().startswith("irt_")
    assert "CEOP" in page.content()  # an under-18 is sent to the child protection helplines
    screenshot(page, "report-confirmation.png", tmp_path)

    stored = httpx.get(f"{base}/v1/cases/{reference}", headers=bearer(keys.analyst))
    assert stored.status_code == 200
    case = stored.json()
    assert case["submission"]["victim"]["age_band"] == "13_15"
    assert "under_18" in {flag["code"] for flag in case["flags"]}
    # An under-18 case's evidence is listed only to an analyst with that permission, who says why.
    child_analyst = create_key(f"sqlite:///{data / 'intake.db'}", "analyst", "test", can_view_child_evidence=True)
    with_reason = {**bearer(child_analyst), "X-Access-Reason": "checking the report arrived whole"}
    evidence = httpx.get(f"{base}/v1/cases/{reference}/evidence", headers=with_reason).json()
    assert [item["content_type"] for item in evidence["evidence"]] == ["image/png"]


def test_mistakes_are_summarised_linked_to_their_fields_and_what_was_typed_is_kept(live, page, tmp_path):
    base, _, _ = live
    page.goto(base + "/report")
    page.get_by_label("I am reporting for someone else").check()
    page.get_by_label("Their email address").fill("not-an-email")
    page.get_by_role("button", name="Send report").click()

    summary = page.get_by_role("alert")
    summary.wait_for()
    assert page.title().startswith("Error:")
    assert page.evaluate("document.activeElement.className") == "error-summary"  # read out first
    links = summary.get_by_role("link")
    assert links.count() == 2
    assert links.nth(0).inner_text() == "Tell us what happened. A few words is enough"
    assert page.get_by_label("Their email address").input_value() == "not-an-email"
    assert page.get_by_label("I am reporting for someone else").is_checked()
    screenshot(page, "report-errors.png", tmp_path)
    links.nth(1).click()
    assert page.evaluate("document.activeElement.id") == "email"


def test_a_report_can_be_made_with_the_keyboard_alone(live, page):
    base, keys, _ = live
    page.goto(base + "/report")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "exit-this-page"  # the way out comes first

    tab_to(page, "reporter-relationship")
    page.keyboard.press("Space")
    tab_to(page, "account")
    page.keyboard.type("Synthetic account typed with the keyboard only.")
    tab_to(page, "submit")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Report sent").wait_for()
    reference = page.locator("#reference").inner_text()
    assert httpx.get(f"{base}/v1/cases/{reference}", headers=bearer(keys.analyst)).status_code == 200


def test_the_quick_exit_leaves_at_once(live, page):
    base, _, _ = live
    page.goto(base + "/report")
    exit_link = page.get_by_role("link", name="Leave this site quickly")
    assert exit_link.is_visible()
    assert exit_link.get_attribute("rel") == "noreferrer"
    exit_link.click()
    page.wait_for_url("about:blank#left")


def test_the_form_its_errors_and_the_confirmation_have_no_serious_accessibility_violations(live, page, evidence_file):
    assert AXE.exists(), "make test installs axe-core from the npm registry"
    base, _, _ = live
    page.goto(base + "/report")
    assert serious_accessibility_violations(page) == []
    page.get_by_role("button", name="Send report").click()
    page.get_by_role("alert").wait_for()
    assert serious_accessibility_violations(page) == []
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill("Synthetic account for the accessibility check.")
    page.get_by_role("button", name="Send report").click()
    page.get_by_role("heading", name="Report sent").wait_for()
    assert serious_accessibility_violations(page) == []


def test_the_form_works_without_javascript(live, browser):
    base, keys, _ = live
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(base + "/report")
    page.get_by_label("It happened to me").check()
    page.get_by_label("What happened?").fill("Synthetic account sent with scripts turned off.")
    page.get_by_role("button", name="Send report").click()
    page.get_by_role("heading", name="Report sent").wait_for()
    reference = page.locator("#reference").inner_text()
    context.close()
    stored = httpx.get(f"{base}/v1/cases/{reference}", headers=bearer(keys.analyst))
    assert stored.status_code == 200
    assert stored.json()["submission"]["account"] == "Synthetic account sent with scripts turned off."
    assert stored.json()["submission"]["reporter"]["relationship"] == "self"

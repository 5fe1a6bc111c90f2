"""The API reference renders in Chromium with no network beyond this service (the machine has none)."""

from __future__ import annotations

import pytest

from tests.support.apps import running_service

pytestmark = [pytest.mark.browser]


def test_the_api_reference_renders_offline_with_every_operation(browser, tmp_path):
    with running_service(f"sqlite:///{tmp_path / 'intake.db'}", tmp_path) as (api, _):
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(api + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "Sextortion case intake" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector("#operations-cases-post_case", timeout=20_000)
        assert [url for url in requested if not url.startswith(api)] == []
        assert [text for text in console if "Content Security Policy" in text] == []
        page.close()

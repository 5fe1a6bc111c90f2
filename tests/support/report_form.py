"""Driving the report form as a browser posts it, for the server-side tests of /report and /report/status."""

from __future__ import annotations

import re

from service.settings import Settings
from tests.support.database import count_rows

NO_FILE = [("evidence", ("", b"", "application/octet-stream"))]  # as a browser sends an empty file input
MINIMAL = {"reporter.relationship": "self", "account": "Synthetic account kept."}


def form_settings(tmp_path, **settings) -> Settings:
    """A deployment of its own for a form test, with no address limit unless the test sets one."""
    return Settings(data_dir=tmp_path, **{"rate_case_creation_per_address": "off", **settings})


def form_token(page: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', page).group(1)


def send(client, token: str, fields: dict, files=None, headers=None):
    return client.post(
        "/report",
        data={"form_token": token, **fields},
        files=files or NO_FILE,
        headers={"Sec-Fetch-Site": "same-origin", **(headers or {})},
        follow_redirects=False,
    )


def cases_stored(app) -> int:
    return count_rows(app.state.engine, "case")


def error_messages(page: str) -> list[str]:
    return re.findall(r'<p class="error-message"[^>]*><span class="visually-hidden">Error:</span> (.*?)</p>', page)


SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


def report_through_the_form(client, fields: dict = MINIMAL) -> tuple[str, str, str]:
    """Send a report through /report and see its confirmation once: (reference, private code, confirmation address)."""
    sent = send(client, form_token(client.get("/report").text), fields)
    confirmation = client.get(sent.headers["location"]).text
    reference = re.search(r'id="reference">([^<]+)<', confirmation).group(1)
    code = re.search(r'id="reporter-token">([^<]+)<', confirmation).group(1)
    return reference, code, sent.headers["location"]


def open_status(client, reference: str, code: str):
    """Open /report/status with the reference and code, as its form posts them (the redirect followed)."""
    return client.post("/report/status", data={"reference": reference, "code": code}, headers=SAME_SITE)


def hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form on `page` that posts to `action` (a status page's pass and form token)."""
    form = re.search(rf'<form method="post" action="{action}".*?</form>', page, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))

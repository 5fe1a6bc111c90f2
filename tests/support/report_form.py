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

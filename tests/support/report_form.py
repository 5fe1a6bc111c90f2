"""Driving the report form as a browser posts it, for the server-side tests of /report and /report/status."""

from __future__ import annotations

import re

import sqlalchemy as sa

from service.app import create_app
from service.cli import upgrade_database
from service.settings import Settings

NO_FILE = [("evidence", ("", b"", "application/octet-stream"))]  # as a browser sends an empty file input
MINIMAL = {"reporter.relationship": "self", "account": "Synthetic account kept."}


def form_app(tmp_path, **settings):
    configured = Settings(data_dir=tmp_path, **{"rate_case_creation_per_address": "off", **settings})
    upgrade_database(configured.resolved_database_url)
    return create_app(configured)


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
    with app.state.engine.connect() as connection:
        return connection.execute(sa.text('SELECT count(*) FROM "case"')).scalar_one()


def error_messages(page: str) -> list[str]:
    return re.findall(r'<p class="error-message"[^>]*><span class="visually-hidden">Error:</span> (.*?)</p>', page)

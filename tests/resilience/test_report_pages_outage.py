"""The reporter's pages with PostgreSQL stopped: every page answers in plain words (503, Retry-After), keeps
what was typed and asks to send it again; nothing is a 500 or JSON, and sending again after the database
is back does what was asked."""

from __future__ import annotations

import pytest

from devsupport.postgres import PostgresServer
from service.cli import upgrade_database
from tests.support.apps import app_client
from tests.support.database import count_rows
from tests.support.report_form import (
    MINIMAL,
    SAME_SITE,
    form_settings,
    form_token,
    hidden_fields,
    open_status,
    report_through_the_form,
    send,
)
from tests.support.synthetic import png

pytestmark = [pytest.mark.faults, pytest.mark.postgres]


@pytest.fixture
def database_that_goes_away(tmp_path):
    """The form's app on a PostgreSQL server of its own, and that server, to stop and start."""
    with PostgresServer() as postgres:
        database_url = postgres.create_database("outage")
        upgrade_database(database_url)
        with app_client(form_settings(tmp_path, database_url=database_url), migrate=False) as client:
            yield client, postgres


def assert_plain_page(answer, status: int = 503) -> None:
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"].startswith("text/html")
    assert int(answer.headers["retry-after"]) > 0
    assert '<div class="error-summary"' in answer.text or "not working right now" in answer.text


def test_with_the_database_stopped_the_report_and_status_pages_keep_what_was_typed(database_that_goes_away):
    client, postgres = database_that_goes_away
    reference, code, receipt_page = report_through_the_form(client)
    opened = open_status(client, reference, code)
    case_page = str(opened.url)
    details_form = hidden_fields(opened.text, "/report/status/identifiers")
    files_form = hidden_fields(opened.text, "/report/status/evidence")

    postgres.pg_ctl("stop")
    try:
        assert client.get("/report").status_code == 200  # the form itself needs no database
        report = send(client, form_token(client.get("/report").text), {**MINIMAL, "mtcn": "1234567890"})
        assert_plain_page(report)
        assert "Synthetic account kept.</textarea>" in report.text and 'value="1234567890"' in report.text

        with_file = send(
            client,
            form_token(client.get("/report").text),
            {**MINIMAL, "reporter.email": "synthetic@example.org"},  # after the file input on the page
            files=[("evidence", ("screenshot.png", png(), "image/png"))],
        )
        assert_plain_page(with_file)
        assert (
            "Synthetic account kept.</textarea>" in with_file.text and 'value="synthetic@example.org"' in with_file.text
        )

        assert_plain_page(client.get(receipt_page))
        lookup = client.post("/report/status", data={"reference": reference, "code": code}, headers=SAME_SITE)
        assert_plain_page(lookup)
        assert f'value="{reference}"' in lookup.text
        assert_plain_page(client.get(case_page))

        typed = {**details_form, "mtcn": "123-456-7890", "username": "synthetic_offender", "username.platform": "Kik"}
        details = client.post("/report/status/identifiers", data=typed, headers=SAME_SITE)
        assert_plain_page(details)
        assert 'value="123-456-7890"' in details.text and 'value="Kik"' in details.text
        files = client.post(
            "/report/status/evidence",
            data=files_form,
            files=[("evidence", ("screenshot.png", png(), "image/png"))],
            headers=SAME_SITE,
        )
        assert_plain_page(files)
        assert "choose them again" in files.text
    finally:
        postgres.pg_ctl("start")

    # Sent again from the page that kept it, once the database is back: added, and only once.
    again = hidden_fields(details.text, "/report/status/identifiers")
    resent = client.post(
        "/report/status/identifiers",
        data={**again, "mtcn": "123-456-7890", "username": "synthetic_offender", "username.platform": "Kik"},
        headers=SAME_SITE,
    )
    assert resent.status_code == 200 and "2 details were added" in resent.text
    assert count_rows(client.app.state.engine, "identifier") == 2
    assert client.get(receipt_page).status_code == 200

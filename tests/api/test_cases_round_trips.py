"""What PostgreSQL is sent to keep a case: a report that repeats no earlier identifier is one statement,
one round trip (issue 11), with or without an Idempotency-Key. Read from the server's own statement log."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from devsupport.postgres import PostgresServer
from service.settings import Settings
from tests.support.apps import app_client, fresh_database_url
from tests.support.cases import MINIMAL_CASE
from tests.support.database import make_keys
from tests.support.http import bearer

# With log_statement=all, PostgreSQL logs every statement when it is executed, whichever protocol sent
# it: "statement: ..." (simple) or "execute <name>: ..." (extended). Parse and bind are not round trips
# of their own: the driver pipelines them with the execute.
_LOGGED_STATEMENT = re.compile(r"LOG:\s+(?:statement|execute [^:]*):\s(.*)", re.DOTALL)
_LOG_ENTRY_START = re.compile(r"^(?=\d{4}-\d\d-\d\d )", re.MULTILINE)  # a statement's own lines have no prefix


@pytest.fixture
def logged_database(request, tmp_path_factory) -> tuple[str, PostgresServer]:
    """A fresh database whose sessions log every statement they execute."""
    url = fresh_database_url("postgres", request, tmp_path_factory)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = sa.engine.make_url(url).database
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"ALTER DATABASE {name} SET log_statement = 'all'"))
    engine.dispose()
    return url, server


def statements_sent(server: PostgresServer, work) -> list[str]:
    log = server.root / "log"
    start = log.stat().st_size
    work()
    with log.open("rb") as handle:
        handle.seek(start)
        logged = handle.read().decode("utf-8", "replace")
    entries = (_LOGGED_STATEMENT.search(entry) for entry in _LOG_ENTRY_START.split(logged))
    return [" ".join(found.group(1).split()) for found in entries if found]


@pytest.mark.postgres
def test_a_case_that_repeats_nothing_is_kept_by_one_statement_in_one_round_trip(logged_database, tmp_path):
    url, server = logged_database
    keys = make_keys(url)
    settings = Settings(data_dir=tmp_path, database_url=url, key_cache_seconds=5)
    with app_client(settings) as client:
        headers = bearer(keys.submitter)

        def report(number: str, **extra_headers: str) -> None:
            case = {**MINIMAL_CASE, "identifiers": [{"type": "mtcn", "value": number}]}
            response = client.post("/v1/cases", json=case, headers={**headers, **extra_headers})
            assert response.status_code == 201, response.text

        report("1000000001")  # the key read and cached, a connection opened, its statement prepared

        plain = statements_sent(server, lambda: report("1000000002"))
        with_key = statements_sent(server, lambda: report("1000000003", **{"Idempotency-Key": "round-trips-1"}))

    for sent in (plain, with_key):
        assert len(sent) == 1, sent
        assert sent[0].startswith("WITH shared AS"), sent
        assert 'INSERT INTO "case"' in sent[0]
        assert not any(word in sent[0].upper() for word in ("BEGIN", "COMMIT", "DEALLOCATE"))


@pytest.mark.postgres
def test_a_repeat_case_reads_what_it_repeats_at_once_and_decides_earlier_cases_again_in_two_statements(
    logged_database, tmp_path
):
    """Which identifiers other cases hold and which earlier cases await the repeat flag: one read before
    the case is kept. However many earlier cases it flags: one update of their rows, one of their flag rows."""
    url, server = logged_database
    keys = make_keys(url)
    settings = Settings(data_dir=tmp_path, database_url=url, key_cache_seconds=5)
    with app_client(settings) as client:
        headers = bearer(keys.submitter)

        def report(*numbers: str) -> None:
            case = {**MINIMAL_CASE, "identifiers": [{"type": "mtcn", "value": number} for number in numbers]}
            response = client.post("/v1/cases", json=case, headers=headers)
            assert response.status_code == 201, response.text

        report("2000000001")
        report("2000000002")
        report("2000000003", "2000000004")
        report("2000000003")  # a repeat case: the transaction's statements are prepared on a connection
        sent = statements_sent(server, lambda: report("2000000001", "2000000002"))

    begun = next(position for position, statement in enumerate(sent) if statement.startswith("BEGIN"))
    read, kept = sent[begun + 1], sent[begun + 2]
    assert "FROM identifier" in read and "case_flag" in read and read.count("UNION ALL") == 1, sent
    assert kept.startswith("WITH new_case AS"), sent
    assert len([statement for statement in sent if statement.startswith('UPDATE "case"')]) == 1, sent
    assert len([statement for statement in sent[begun + 3 :] if "case_flag" in statement]) == 1, sent

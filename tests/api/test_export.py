"""GET /v1/cases/export and `intake export`."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
import sqlalchemy as sa

from service import exporting
from service.domain.export import EXPORT_COLUMNS, export_record, spreadsheet_safe
from service.storage.database import session_scope
from service.storage.export import copy_export_lines, stream_cases
from service.storage.search import CaseFilters
from tests.support.cases import unique_force, unique_mtcn
from tests.support.cli import run_intake
from tests.support.database import query_rows
from tests.support.http import bearer


def test_ndjson_export_streams_every_matching_case_with_identifiers(client, keys, new_case):
    force = unique_force()
    made = [
        new_case(police_force=force, identifiers=[{"type": "mtcn", "value": f"{i:010d}"}])["reference"]
        for i in range(3)
    ]
    response = client.get("/v1/cases/export", params={"force": force}, headers=bearer(keys.analyst))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [row["reference"] for row in rows] == made  # oldest first
    assert rows[0]["identifiers"] == "mtcn:0000000000"
    assert set(rows[0]) == set(EXPORT_COLUMNS)


def test_csv_export_has_the_versioned_columns_and_neutralises_formulas(client, keys, new_case):
    force = unique_force()
    new_case(police_force=force, account='=HYPERLINK("http://evil.example","click")', threats="@SUM(1)")
    response = client.get("/v1/cases/export", params={"force": force, "format": "csv"}, headers=bearer(keys.analyst))
    assert response.headers["x-export-version"] == "1"
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == EXPORT_COLUMNS
    row = dict(zip(table[0], table[1], strict=True))
    assert row["account"].startswith("'=HYPERLINK")
    assert row["threats"] == "'@SUM(1)"


def test_spreadsheet_safety_covers_every_formula_start():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert spreadsheet_safe(f"{start}1").startswith("'")
    assert spreadsheet_safe("plain") == "plain"
    assert spreadsheet_safe(None) == "" and spreadsheet_safe(True) == "true"


def test_a_scoped_key_exports_only_its_forces(client, new_case, scoped_key):
    mine, theirs = unique_force(), unique_force()
    own = new_case(police_force=mine)["reference"]
    new_case(police_force=theirs)
    response = client.get("/v1/cases/export", params={"force": theirs}, headers=bearer(scoped_key(mine)))
    assert response.text == ""
    everything = client.get("/v1/cases/export", headers=bearer(scoped_key(mine))).text.splitlines()
    assert [json.loads(line)["reference"] for line in everything] == [own]


def test_only_analysts_export(client, keys):
    for who in ("submitter", "admin"):
        assert client.get("/v1/cases/export", headers=bearer(getattr(keys, who))).status_code == 403


def test_intake_export_writes_the_same_rows_to_an_owner_only_file(client, keys, new_case, settings, tmp_path):
    force = unique_force()
    made = [new_case(police_force=force)["reference"] for _ in range(2)]
    output = tmp_path / f"export-{uuid.uuid4().hex}.csv"
    result = run_intake(
        *("export", "--format", "csv", "--force", force, "--output", str(output)),
        environment={
            "INTAKE_DATABASE_URL": settings.resolved_database_url,
            "INTAKE_CONTENT_DIR": str(settings.content_dir),
        },
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 2 case(s)" in result.stdout
    assert oct(output.stat().st_mode & 0o777) == "0o600"
    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert [row["reference"] for row in rows] == made
    api = client.get("/v1/cases/export", params={"force": force, "format": "csv"}, headers=bearer(keys.analyst))
    assert api.text.replace("\r\n", "\n") == output.read_text().replace("\r\n", "\n")
    (audited,) = export_audit(client, keys, actor="cli:export")[:1]  # newest first: this export's
    assert audited["detail"]["cases"] == made and audited["detail"]["output"] == output.name


def test_postgresql_builds_the_same_export_records_as_python(client, keys, new_case, settings):
    """On PostgreSQL the NDJSON lines are built by the database; they must hold exactly what
    export_record makes in Python (which SQLite exports and CSV use) for every kind of case."""
    if not settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL builds export lines in the database")
    force = unique_force()
    new_case(police_force=force)
    new_case(
        police_force=force,
        victim={"age": 15, "date_of_birth": "2011-03-04"},
        platforms=["instagram", "skype", "snapchat"],
        first_contact_at="2026-11-20T18:30:00Z",
        deadline_at="2026-11-26T09:15:30.250000+01:00",
        images_shared=True,
        feels_unsafe=False,
        payments=[{"amount": "100", "currency": "GBP", "method": "western_union"}, {"amount": "20"}],
        identifiers=[
            {"type": "skype_id", "value": "live:.cid.1a2b3c4d5e6f7a8b"},
            {"type": "mtcn", "value": "123-456-7890"},
            {"type": "email", "value": "Zed@Example.net"},
        ],
        account='Synthetic: "quotes", a newline\nand ünïcödé, a tab\tand a backslash \\ too.',
        threats="To send it to everyone.",
    )
    new_case(police_force=force, victim={"age_band": "25_plus"}, reporter={"relationship": "parent_or_carer"})
    with client.app.state.engine.begin() as connection:  # a whole second: isoformat() drops the microseconds
        connection.execute(
            sa.text("UPDATE \"case\" SET created_at = date_trunc('second', created_at) WHERE police_force = :f"),
            {"f": force},
        )
    filters = CaseFilters(force=force)
    with session_scope(client.app.state.engine) as session:
        from_python = [export_record(row) for row in stream_cases(session, filters)]
        copied = b"".join(copy_export_lines(session, filters)).decode().splitlines()
    from_database = [json.loads(line) for line in copied]  # one object per line: COPY passed them on untouched
    assert len(from_python) == 3
    assert from_database == from_python
    assert list(from_database[1]) == EXPORT_COLUMNS  # the same order of keys, too
    with session_scope(client.app.state.engine) as session:  # and with no filter (so no parameters) too
        everything = b"".join(copy_export_lines(session, CaseFilters())).decode().splitlines()
    assert len(everything) >= 3 and all(json.loads(line)["reference"] for line in everything)


def export_audit(client, keys, *, actor: str, request_id: str | None = None) -> list[dict]:
    """The cases.export audit rows of an actor (newest first), of one request if given."""
    events = client.get("/v1/audit", params={"actor": actor, "limit": 200}, headers=bearer(keys.admin)).json()
    return [
        event
        for event in events["events"]
        if event["action"] == "cases.export" and (request_id is None or event["request_id"] == request_id)
    ]


def analyst_actor(keys) -> str:
    return f"key:{keys.analyst.split('_')[1]}"


@pytest.mark.parametrize(("format", "version"), [("ndjson", "1"), ("ndjson", "2"), ("csv", "1"), ("stix", "1")])
def test_an_export_records_which_cases_it_returned(client, keys, new_case, format, version):
    force = unique_force()
    made = [
        new_case(police_force=force, consent_to_share=True, identifiers=[{"type": "mtcn", "value": unique_mtcn()}])[
            "reference"
        ]
        for _ in range(3)
    ]
    response = client.get(
        "/v1/cases/export",
        params={"force": force, "format": format, "version": version},
        headers={**bearer(keys.analyst), "X-Access-Reason": "weekly return"},
    )
    assert response.status_code == 200, response.text
    (event,) = export_audit(client, keys, actor=analyst_actor(keys), request_id=response.headers["x-request-id"])
    assert event["detail"]["cases"] == made
    assert event["detail"]["returned"] == event["detail"]["total"] == 3 and event["detail"]["last"] is True
    assert event["detail"]["format"] == format and event["detail"]["filters"]["force"] == force
    assert event["reason"] == "weekly return"
    for reference in made:
        assert reference in response.text


def test_an_export_of_nothing_is_audited_too(client, keys):
    response = client.get("/v1/cases/export", params={"force": unique_force()}, headers=bearer(keys.analyst))
    assert response.status_code == 200 and response.text == ""
    (event,) = export_audit(client, keys, actor=analyst_actor(keys), request_id=response.headers["x-request-id"])
    assert event["detail"]["cases"] == [] and event["detail"]["total"] == 0


def test_a_large_export_is_audited_part_by_part_before_each_part_leaves(client, keys, new_case, monkeypatch):
    """Each part's row names its cases and is committed before its bytes are handed on: an export
    abandoned after its first part has recorded that part's cases and no others."""
    monkeypatch.setattr(exporting, "AUDIT_PART_CASES", 2)
    force = unique_force()
    made = [new_case(police_force=force)["reference"] for _ in range(5)]
    engine, settings = client.app.state.engine, client.app.state.settings
    marker = f"abandoned-{uuid.uuid4().hex}"
    asked = exporting.ExportRequest(CaseFilters(force=force), "ndjson", "1", actor="test", request_id=marker)
    parts = exporting.export_cases(engine, settings, asked)
    assert audit_details(engine, marker) == []  # nothing read, nothing sent, nothing recorded yet
    first = next(parts)
    assert [json.loads(line)["reference"] for line in first.splitlines()] == made[:2]
    assert [detail["cases"] for detail in audit_details(engine, marker)] == [made[:2]]
    parts.close()  # the client went away

    response = client.get("/v1/cases/export", params={"force": force}, headers=bearer(keys.analyst))
    assert [json.loads(line)["reference"] for line in response.text.splitlines()] == made
    events = export_audit(client, keys, actor=analyst_actor(keys), request_id=response.headers["x-request-id"])
    details = [event["detail"] for event in reversed(events)]
    assert [detail["cases"] for detail in details] == [made[:2], made[2:4], made[4:]]
    assert [detail["part"] for detail in details] == [1, 2, 3]
    assert [detail["last"] for detail in details] == [False, False, True] and details[-1]["total"] == 5


def audit_details(engine, request_id: str) -> list[dict]:
    rows = query_rows(engine, "SELECT detail FROM audit_event WHERE request_id = :r ORDER BY id", r=request_id)
    return [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]

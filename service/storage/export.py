"""Exports as lines of text, read from the database as they are written out."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.domain.export import EXPORT_COLUMNS, export_record, export_record_v2, spreadsheet_safe
from service.storage.database import session_scope
from service.storage.models import Case, Identifier
from service.storage.search import CaseFilters, filtered

_CASES = Case.__table__
_IDENTIFIERS = Identifier.__table__

# One exported piece: the references of the cases its bytes hold (none for the CSV header), and the bytes.
ExportedPiece = tuple[tuple[str, ...], bytes]


def export_pieces(engine: Engine, filters: CaseFilters, format: str, version: str = "1") -> Iterator[ExportedPiece]:
    """NDJSON or CSV lines, each with the reference it holds, from its own session (the export outlives
    the request's); read from the database as they are handed on, so memory stays flat."""
    with session_scope(engine) as session:
        if format == "ndjson" and version == "2":
            for case in stream_cases(session, filters):
                yield (case["reference"],), orjson.dumps(export_record_v2(case)) + b"\n"
            return
        if format == "ndjson" and engine.dialect.name == "postgresql":
            for block in copy_export_lines(session, filters):
                yield _references_in(block), block
            return
        if format == "csv":
            yield (), _csv_line(EXPORT_COLUMNS)
        for case in stream_cases(session, filters):
            record = export_record(case)
            if format == "csv":
                yield (case["reference"],), _csv_line([spreadsheet_safe(record[column]) for column in EXPORT_COLUMNS])
            else:
                yield (case["reference"],), orjson.dumps(record) + b"\n"


# Each line the database builds starts with its reference (the first key of _EXPORT_JSON; references are
# letters, digits and hyphens, never escaped), so it is read back without parsing the line.
_LINE_REFERENCE = re.compile(rb'^\{"reference" : "([A-Za-z0-9-]+)"', re.MULTILINE)


def _references_in(block: bytes) -> tuple[str, ...]:
    references = tuple(match.decode() for match in _LINE_REFERENCE.findall(block))
    if len(references) != block.count(b"\n"):
        # Never hand on a line whose case the audit could not name.
        raise ValueError("an exported line does not start with its case reference")
    return references


def _csv_line(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()


EXPORT_BATCH = 500


def stream_cases(session: Session, filters: CaseFilters) -> Iterator[dict]:
    """Every matching case, oldest first, from a server-side cursor read in batches: memory stays flat
    however many rows there are. Each row carries its identifiers as [type, normalized] pairs."""
    # As a JSON array of [type, normalized] pairs: a normalized identifier may hold any separator (a ";"
    # in a URL), and an array needs none.
    if session.get_bind().dialect.name == "postgresql":
        pairs = sa.func.json_agg(sa.func.json_build_array(_IDENTIFIERS.c.type, _IDENTIFIERS.c.normalized))
    else:
        pairs = sa.func.json_group_array(sa.func.json_array(_IDENTIFIERS.c.type, _IDENTIFIERS.c.normalized))
    identifiers = (
        sa.select(sa.type_coerce(pairs, sa.JSON))
        .where(_IDENTIFIERS.c.case_id == _CASES.c.id)
        .scalar_subquery()
        .label("identifiers")
    )
    columns = [
        _CASES.c[name]
        for name in (
            "reference",
            "created_at",
            "updated_at",
            "status",
            "priority",
            "flags",
            "police_force",
            "assigned_to",
            "submission",
        )
    ]
    query = filtered(sa.select(*columns, identifiers), filters).order_by(_CASES.c.created_at, _CASES.c.id)
    for batch in session.execute(query.execution_options(yield_per=EXPORT_BATCH)).mappings().partitions():
        yield from batch


def copy_export_lines(session: Session, filters: CaseFilters) -> Iterator[bytes]:
    """PostgreSQL only: every matching case as one JSON line of the export's columns, built by the
    database itself (the same values export_record makes in Python) and sent through COPY TO STDOUT in
    blocks as the database sends them; Python only passes them on, so the export runs at the database's pace.

    CSV mode with control characters as delimiter and quote: JSON text never holds either raw, so
    nothing is quoted or escaped and each row is exactly one JSON object and a newline.
    """
    compiled = _export_json_query(filters).compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    statement = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(statement, compiled.params) as copy:  # psycopg binds the filters client-side, quoted
        for block in copy:
            yield bytes(block)


def _export_json_query(filters: CaseFilters):
    line = sa.literal_column(_EXPORT_JSON)
    return filtered(sa.select(line).select_from(_CASES), filters).order_by(_CASES.c.created_at, _CASES.c.id)


def _iso_utc(column: str) -> str:
    # As Python's isoformat() writes a UTC time: microseconds only when there are any.
    return (
        f"CASE WHEN mod(date_part('microseconds', {column})::bigint, 1000000) = 0 "
        f"""THEN to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') """
        f"""ELSE to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') END"""
    )


# The columns of service.domain.export.EXPORT_COLUMNS, in order; tests compare it with export_record.
_EXPORT_JSON = f"""json_build_object(
    'reference', "case".reference,
    'created_at', {_iso_utc('"case".created_at')},
    'updated_at', {_iso_utc('"case".updated_at')},
    'status', "case".status,
    'priority', "case".priority,
    'flags', COALESCE((SELECT string_agg(flag->>'code', ';' ORDER BY position)
                       FROM jsonb_array_elements("case".flags) WITH ORDINALITY AS f(flag, position)), ''),
    'police_force', "case".police_force,
    'assigned_to', "case".assigned_to,
    'reporter_relationship', "case".submission->'reporter'->>'relationship',
    'victim_age', "case".submission->'victim'->'age',
    'victim_age_band', "case".submission->'victim'->>'age_band',
    'victim_date_of_birth', "case".submission->'victim'->>'date_of_birth',
    'platforms', COALESCE((SELECT string_agg(platform, ';' ORDER BY position)
                           FROM jsonb_array_elements_text("case".submission->'platforms')
                                WITH ORDINALITY AS p(platform, position)), ''),
    'first_contact_at', "case".submission->>'first_contact_at',
    'deadline_at', "case".submission->>'deadline_at',
    'images_shared', "case".submission->'images_shared',
    'feels_unsafe', "case".submission->'feels_unsafe',
    'consent_to_share', "case".submission->'consent_to_share',
    'payments_count', COALESCE(jsonb_array_length("case".submission->'payments'), 0),
    'identifiers', COALESCE((SELECT string_agg(identifier.type || ':' || identifier.normalized, ';'
                                              ORDER BY identifier.type || ':' || identifier.normalized COLLATE "C")
                             FROM identifier WHERE identifier.case_id = "case".id), ''),
    'account', "case".submission->>'account',
    'threats', "case".submission->>'threats'
)::text"""  # noqa: S608 - built from constants only, never from input

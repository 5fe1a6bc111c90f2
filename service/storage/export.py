"""Exports as lines of text, read from the database as they are written out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from sqlalchemy.engine import Engine

from service.domain.export import EXPORT_COLUMNS, export_record, spreadsheet_safe
from service.storage.cases import CaseFilters, stream_cases
from service.storage.database import session_scope


def export_lines(engine: Engine, filters: CaseFilters, format: str) -> Iterator[bytes]:
    """NDJSON or CSV, a case at a time, from its own session: the export outlives the request's."""
    with session_scope(engine) as session:
        if format == "csv":
            yield _csv_line(EXPORT_COLUMNS)
        for case, identifiers in stream_cases(session, filters):
            record = export_record(case, identifiers)
            if format == "csv":
                yield _csv_line([spreadsheet_safe(record[column]) for column in EXPORT_COLUMNS])
            else:
                yield (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()


def _csv_line(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()

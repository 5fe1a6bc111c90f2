"""Exports as lines of text, read from the database as they are written out."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

import orjson
from sqlalchemy.engine import Engine

from service.domain.export import EXPORT_COLUMNS, export_record, export_record_v2, spreadsheet_safe
from service.storage.cases import CaseFilters, copy_export_lines, stream_cases
from service.storage.database import session_scope

CHUNK_BYTES = 64 * 1024


def export_lines(
    engine: Engine,
    filters: CaseFilters,
    format: str,
    on_case: Callable[[], None] | None = None,
    version: str = "1",
) -> Iterator[bytes]:
    """NDJSON or CSV from its own session (the export outlives the request's), in chunks of about
    CHUNK_BYTES: the server hands each chunk across a thread, so one per line would dominate."""
    pending: list[bytes] = []
    size = 0
    for line in _lines(engine, filters, format, on_case or (lambda: None), version):
        pending.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def _lines(
    engine: Engine, filters: CaseFilters, format: str, on_case: Callable[[], None], version: str
) -> Iterator[bytes]:
    with session_scope(engine) as session:
        if format == "ndjson" and version == "2":
            for case in stream_cases(session, filters):
                on_case()
                yield orjson.dumps(export_record_v2(case)) + b"\n"
            return
        if format == "ndjson" and engine.dialect.name == "postgresql":
            for block in copy_export_lines(session, filters):
                for _ in range(block.count(b"\n")):
                    on_case()
                yield block
            return
        if format == "csv":
            yield _csv_line(EXPORT_COLUMNS)
        for case in stream_cases(session, filters):
            on_case()
            record = export_record(case)
            if format == "csv":
                yield _csv_line([spreadsheet_safe(record[column]) for column in EXPORT_COLUMNS])
            else:
                yield orjson.dumps(record) + b"\n"


def _csv_line(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()

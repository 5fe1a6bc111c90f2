"""Exporting cases: the one use case behind `GET /v1/cases/export` and `intake export`, in every format.

The audit log must say whose data each export revealed, yet an export streams far more cases than a
request should hold. So the answer goes out in parts, and each part's audit row, naming the cases the
part holds, is committed before the part's bytes leave: what the log names is what was produced, memory
holds one part at most, and an export cut off (or a process killed) part-way is recorded up to where it
went. Every row of one export carries the same request id; the last says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from service.domain.sharing import stix_bundle
from service.settings import Settings
from service.storage.audit import record_audit_event
from service.storage.database import session_scope
from service.storage.export import ExportedPiece, export_pieces
from service.storage.models import utc_now
from service.storage.search import CaseFilters
from service.storage.sharing import shareable_cases

# A part's audit row names at most this many cases, and a part holds at most this many bytes in memory.
AUDIT_PART_CASES = 1000
AUDIT_PART_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ExportRequest:
    filters: CaseFilters
    format: str  # ndjson, csv or stix
    version: str
    actor: str
    reason: str | None = None
    request_id: str | None = None
    # STIX only: include cases whose victims did not agree to sharing (the analyst's export permission,
    # or the operator's explicit CLI flag); the audit rows say so.
    share_without_consent: bool = False
    noted: dict = field(default_factory=dict)  # more for the audit row, e.g. the CLI's output file name


def export_cases(
    engine: Engine, settings: Settings, asked: ExportRequest, on_cases: Callable[[int], None] | None = None
) -> Iterator[bytes]:
    """The export's bytes, part by part, each part audited with the references it holds before it is
    handed on. Nothing is read or audited until the first part is asked for."""
    detail = {"format": asked.format, "filters": asked.filters.described(), **asked.noted}
    if asked.format == "stix":
        pieces = _stix_pieces(engine, settings, asked.filters, asked.share_without_consent)
        detail["tlp"] = settings.stix_tlp
        detail["without_consent"] = asked.share_without_consent
    else:
        pieces = export_pieces(engine, asked.filters, asked.format, asked.version)
        detail["version"] = asked.version
    return _audited_parts(engine, asked, detail, pieces, on_cases or (lambda _: None))


def _stix_pieces(
    engine: Engine, settings: Settings, filters: CaseFilters, without_consent: bool
) -> Iterator[ExportedPiece]:
    """One bundle (a STIX document is one JSON object), with the cases whose identifiers it shares: a
    shared case with no identifier adds nothing to it, so it is not named either."""
    with session_scope(engine) as session:
        cases = shareable_cases(session, filters, without_consent=without_consent)
    bundle = stix_bundle(cases, tlp=settings.stix_tlp, producer=settings.stix_producer, now=utc_now())
    yield tuple(case.reference for case in cases if case.identifiers), bundle.serialize().encode()


def _audited_parts(
    engine: Engine, asked: ExportRequest, detail: dict, pieces: Iterator[ExportedPiece], on_cases
) -> Iterator[bytes]:
    part, total = 0, 0
    references: list[str] = []
    chunks: list[bytes] = []
    size = 0
    upcoming = next(pieces, None)
    while upcoming is not None or part == 0:  # an export of nothing is audited too
        if upcoming is not None:
            held, data = upcoming
            references += held
            chunks.append(data)
            size += len(data)
            upcoming = next(pieces, None)
        last = upcoming is None
        if last or len(references) >= AUDIT_PART_CASES or size >= AUDIT_PART_BYTES:
            part += 1
            total += len(references)
            _record_export_part(engine, asked, {**detail, "part": part, "last": last}, references, total)
            on_cases(len(references))
            if chunks:
                yield b"".join(chunks)
            references, chunks, size = [], [], 0


def _record_export_part(engine: Engine, asked: ExportRequest, detail: dict, references: list[str], total: int):
    """The only place an export is audited: committed on its own, before the part's bytes go anywhere."""
    if detail["last"]:
        detail["total"] = total
    with session_scope(engine) as session:
        record_audit_event(
            session,
            actor=asked.actor,
            action="cases.export",
            reason=asked.reason,
            request_id=asked.request_id,
            detail={**detail, "returned": len(references), "cases": references},
        )
        session.commit()

"""The audit trail: who read or changed what, when and why. Rows are only ever added."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.models import AuditEvent, Case, utc_now

_AUDIT_EVENTS = AuditEvent.__table__

# The X-Request-Id the client sent with the request being served (set by the request middleware): every
# audit row written while serving it keeps it beside the server's own request id, whichever code writes it.
CLIENT_REQUEST_ID: ContextVar[str | None] = ContextVar("client_request_id", default=None)


def record_audit_event(
    session: Session,
    *,
    actor: str,
    action: str,
    case_id: int | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    detail: dict | None = None,
) -> None:
    """Write an audit row in the caller's transaction: it commits, or rolls back, with the work."""
    session.execute(
        sa.insert(_AUDIT_EVENTS),
        {
            "at": utc_now(),
            "actor": actor,
            "action": action,
            "case_id": case_id,
            "reason": reason,
            "request_id": request_id,
            "client_request_id": CLIENT_REQUEST_ID.get(),
            "detail": detail,
        },
    )


@dataclass(frozen=True)
class CaseTrail:
    """Where one case's rows lie in the log. A case id can be given again after its case is erased
    (SQLite hands out the largest rowid + 1), so a case's rows are those with its id written after
    the id's previous erasure and up to its own (for an erased case)."""

    case_id: int
    after_event_id: int | None = None
    up_to_event_id: int | None = None


def list_audit(
    session: Session,
    *,
    trail: CaseTrail | None,
    actor: str | None,
    since: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEvent]:
    """Newest first; `before_id` pages back through a log that only ever grows at the top."""
    query = select(AuditEvent)
    if trail is not None:
        query = query.where(AuditEvent.case_id == trail.case_id)
        if trail.after_event_id is not None:
            query = query.where(AuditEvent.id > trail.after_event_id)
        if trail.up_to_event_id is not None:
            query = query.where(AuditEvent.id <= trail.up_to_event_id)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.exec(query.order_by(AuditEvent.id.desc()).limit(limit)))


def live_case_trail(session: Session, case_id: int) -> CaseTrail:
    """The rows of the case that has this id now: those after any erasure of an earlier holder of the id."""
    erasures = _erasures(session, {case_id}).get(case_id, [])
    return CaseTrail(case_id, after_event_id=erasures[-1][0] if erasures else None)


def erased_case_trail(session: Session, reference: str) -> CaseTrail | None:
    """The rows of an erased case, found through the erasure row (which names the reference)."""
    named = AuditEvent.detail["reference"].as_string()
    query = select(AuditEvent.id, AuditEvent.case_id).where(AuditEvent.action == "case.erased", named == reference)
    found = session.exec(query.order_by(AuditEvent.id).limit(1)).first()
    if found is None or found[1] is None:
        return None
    erasure_id, case_id = found
    earlier = [event_id for event_id, _ in _erasures(session, {case_id})[case_id] if event_id < erasure_id]
    return CaseTrail(case_id, after_event_id=earlier[-1] if earlier else None, up_to_event_id=erasure_id)


def references_of_events(session: Session, events: list[AuditEvent]) -> dict[int, str]:
    """Each event's case reference by event id: the reference its case had when the event was written,
    an erased case's from its erasure row, never that of a later case given the same id."""
    case_ids = {event.case_id for event in events if event.case_id is not None}
    if not case_ids:
        return {}
    live = dict(session.exec(select(Case.id, Case.reference).where(Case.id.in_(case_ids))).all())
    erasures = _erasures(session, case_ids)
    references: dict[int, str] = {}
    for event in events:
        if event.case_id is None:
            continue
        # The first erasure of this id at or after the event: the event was about the case it erased.
        erased = next((ref for event_id, ref in erasures.get(event.case_id, []) if event_id >= event.id), None)
        reference = erased or live.get(event.case_id)
        if reference is not None:
            references[event.id] = reference
    return references


def _erasures(session: Session, case_ids: set[int]) -> dict[int, list[tuple[int, str]]]:
    """Per case id, its erasure rows (event id, erased reference), oldest first."""
    rows = session.exec(
        select(AuditEvent.id, AuditEvent.case_id, AuditEvent.detail)
        .where(AuditEvent.action == "case.erased", AuditEvent.case_id.in_(case_ids))
        .order_by(AuditEvent.id)
    ).all()
    found: dict[int, list[tuple[int, str]]] = {case_id: [] for case_id in case_ids}
    for event_id, case_id, detail in rows:
        found[case_id].append((event_id, (detail or {}).get("reference")))
    return found

"""The audit trail: who read or changed what, when and why. Rows are only ever added."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.models import AuditEvent, utc_now

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


def list_audit(
    session: Session,
    *,
    case_id: int | None,
    actor: str | None,
    since: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEvent]:
    """Newest first; `before_id` pages back through a log that only ever grows at the top."""
    query = select(AuditEvent)
    if case_id is not None:
        query = query.where(AuditEvent.case_id == case_id)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.exec(query.order_by(AuditEvent.id.desc()).limit(limit)))


def erased_case_id(session: Session, reference: str) -> int | None:
    """The id an erased case had, from the audit row its erasure left (which names the reference)."""
    named = AuditEvent.detail["reference"].as_string()
    query = select(AuditEvent.case_id).where(AuditEvent.action == "case.erased", named == reference)
    return session.exec(query.limit(1)).first()

"""The audit trail: who read or changed what, when and why. Rows are only ever added."""

from __future__ import annotations

from sqlmodel import Session

from service.storage.models import AuditEvent


def record_access(
    session: Session,
    *,
    actor: str,
    action: str,
    case_id: int | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    detail: dict | None = None,
) -> None:
    """Add an audit row to the caller's transaction: it commits, or rolls back, with the work."""
    session.add(
        AuditEvent(actor=actor, action=action, case_id=case_id, reason=reason, request_id=request_id, detail=detail)
    )

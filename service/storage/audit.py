"""The audit trail: who read or changed what, when and why. Rows are only ever added."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from service.storage.models import AuditEvent, utc_now

_AUDIT_EVENTS = AuditEvent.__table__


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
            "detail": detail,
        },
    )

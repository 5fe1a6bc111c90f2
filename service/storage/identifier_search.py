"""Finding cases by identifiers as analysts type them: exact normalised forms, or an account handle."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.models import Case, Identifier

# The kinds of identifier whose handle is an account name on some platform.
_HANDLE_TYPES = ("username", "profile_url", "skype_id")


def cases_holding(
    session: Session, typed: list[tuple[str, str]], *, any_type: list[str] = (), handle: str | None = None
) -> list[tuple[Case, Identifier]]:
    """Cases holding any of these (type, normalized) identifiers, any identifier normalised to one of
    `any_type`, or an account handle equal to `handle`; oldest case first."""
    conditions = [sa.and_(Identifier.type == kind, Identifier.normalized == normalized) for kind, normalized in typed]
    if any_type:
        conditions.append(Identifier.normalized.in_(list(any_type)))
    if handle:
        conditions.append(sa.and_(Identifier.type.in_(_HANDLE_TYPES), Identifier.handle == handle))
    if not conditions:
        return []
    query = (
        select(Case, Identifier)
        .join(Identifier, Identifier.case_id == Case.id)
        .where(sa.or_(*conditions))
        .order_by(Case.created_at, Case.id, Identifier.id)
    )
    return list(session.exec(query))

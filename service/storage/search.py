"""Finding cases: the filters analysts search by, shared by listing, counting and export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.models import Case, CaseFlag, Identifier

_CASES = Case.__table__
_IDENTIFIERS = Identifier.__table__
_FLAGS = CaseFlag.__table__


@dataclass(frozen=True)
class CaseFilters:
    since: datetime | None = None
    until: datetime | None = None
    priority: str | None = None
    flag: str | None = None
    force: str | None = None
    status: str | None = None
    identifier: str | None = None
    forces_in_scope: tuple[str, ...] | None = None  # the caller's key scope; None is every force

    def described(self) -> dict[str, str]:
        """The filters given, as text for an audit row."""
        return {name: str(value) for name, value in vars(self).items() if value is not None}


def list_cases(session: Session, filters: CaseFilters, *, after: tuple[datetime, int] | None, limit: int) -> list[Case]:
    """Newest first, by (created_at, id): a keyset page, so cases arriving meanwhile never shift it."""
    query = filtered(select(Case), filters)
    if after is not None:
        created_at, case_id = after
        query = query.where(
            sa.or_(Case.created_at < created_at, sa.and_(Case.created_at == created_at, Case.id < case_id))
        )
    return list(session.exec(query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)))


def filtered(query, filters: CaseFilters):
    """The WHERE clauses of a case search, shared by listing and export."""
    if filters.since is not None:
        query = query.where(_CASES.c.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(_CASES.c.created_at < filters.until)
    for column, value in (
        (_CASES.c.priority, filters.priority),
        (_CASES.c.status, filters.status),
        (_CASES.c.police_force, filters.force),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.forces_in_scope is not None:
        query = query.where(_CASES.c.police_force.in_(filters.forces_in_scope))
    if filters.flag is not None:
        query = query.where(sa.exists().where(_FLAGS.c.case_id == _CASES.c.id, _FLAGS.c.code == filters.flag))
    if filters.identifier is not None:
        query = query.where(
            sa.exists().where(_IDENTIFIERS.c.case_id == _CASES.c.id, _IDENTIFIERS.c.normalized == filters.identifier)
        )
    return query


def count_cases(session: Session, filters: CaseFilters) -> int:
    return session.execute(filtered(sa.select(sa.func.count()).select_from(_CASES), filters)).scalar_one()

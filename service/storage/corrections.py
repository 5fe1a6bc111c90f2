"""Analysts' corrections of the links: kept with their reasons, revoked rather than deleted, and read
wherever links are (a case's links, clusters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.models import LinkCorrection

IDENTIFIER_NOT_LINKING = "identifier_not_linking"
FALSE_LINK = "false_link"
MANUAL_LINK = "manual_link"
DUPLICATE = "duplicate"
KINDS = (IDENTIFIER_NOT_LINKING, FALSE_LINK, MANUAL_LINK, DUPLICATE)

_CORRECTIONS = LinkCorrection.__table__
_ACTIVE = _CORRECTIONS.c.revoked_at.is_(None)


def not_linking_identifiers():
    """A subquery of the normalized identifiers that join nothing (a platform's support address...)."""
    return sa.select(_CORRECTIONS.c.identifier).where(_CORRECTIONS.c.kind == IDENTIFIER_NOT_LINKING, _ACTIVE)


@dataclass
class PairCorrections:
    """Active pair corrections touching some cases, each pair as (lower id, higher id)."""

    false_links: set[tuple[int, int]] = field(default_factory=set)
    added: dict[tuple[int, int], str] = field(default_factory=dict)  # pair -> manual_link | duplicate
    duplicates: set[int] = field(default_factory=set)  # cases marked as a duplicate of another


def pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def pair_corrections(session: Session, case_ids: list[int]) -> PairCorrections:
    rows = session.execute(
        sa.select(_CORRECTIONS.c.kind, _CORRECTIONS.c.case_id, _CORRECTIONS.c.other_case_id).where(
            _ACTIVE,
            _CORRECTIONS.c.kind.in_((FALSE_LINK, MANUAL_LINK, DUPLICATE)),
            sa.or_(_CORRECTIONS.c.case_id.in_(case_ids), _CORRECTIONS.c.other_case_id.in_(case_ids)),
        )
    ).all()
    found = PairCorrections()
    for kind, case_id, other_case_id in rows:
        if kind == FALSE_LINK:
            found.false_links.add(pair(case_id, other_case_id))
        else:
            found.added[pair(case_id, other_case_id)] = kind
            if kind == DUPLICATE:
                found.duplicates.add(case_id)
    return found


def add_correction(
    session: Session,
    *,
    kind: str,
    case_id: int | None,
    other_case_id: int | None,
    identifier: str | None,
    reason: str,
    actor: str,
    now: datetime,
) -> LinkCorrection:
    correction = LinkCorrection(
        kind=kind,
        case_id=case_id,
        other_case_id=other_case_id,
        identifier=identifier,
        reason=reason,
        created_by=actor,
        created_at=now,
    )
    session.add(correction)
    session.flush()
    return correction


def find_active(
    session: Session, *, kind: str, case_id: int | None, other_case_id: int | None, identifier: str | None
) -> LinkCorrection | None:
    query = select(LinkCorrection).where(LinkCorrection.kind == kind, LinkCorrection.revoked_at.is_(None))
    if identifier is not None:
        return session.exec(query.where(LinkCorrection.identifier == identifier)).first()
    if kind == DUPLICATE:  # a case is a duplicate of one original at a time
        return session.exec(query.where(LinkCorrection.case_id == case_id)).first()
    a, b = pair(case_id, other_case_id)
    return session.exec(
        query.where(
            sa.or_(
                sa.and_(LinkCorrection.case_id == a, LinkCorrection.other_case_id == b),
                sa.and_(LinkCorrection.case_id == b, LinkCorrection.other_case_id == a),
            )
        )
    ).first()


def revoke_correction(session: Session, correction: LinkCorrection, *, actor: str, reason: str, now: datetime) -> None:
    correction.revoked_at = now
    correction.revoked_by = actor
    correction.revoke_reason = reason
    session.add(correction)
    session.flush()


def corrections_touching(session: Session, case_id: int, identifiers: list[str]) -> list[LinkCorrection]:
    """Every correction, active or revoked, about this case or one of its identifiers, oldest first."""
    conditions = [LinkCorrection.case_id == case_id, LinkCorrection.other_case_id == case_id]
    if identifiers:
        conditions.append(LinkCorrection.identifier.in_(identifiers))
    return list(session.exec(select(LinkCorrection).where(sa.or_(*conditions)).order_by(LinkCorrection.id)))


def list_corrections(session: Session, *, active_only: bool, limit: int, before_id: int | None) -> list[LinkCorrection]:
    query = select(LinkCorrection)
    if active_only:
        query = query.where(LinkCorrection.revoked_at.is_(None))
    if before_id is not None:
        query = query.where(LinkCorrection.id < before_id)
    return list(session.exec(query.order_by(LinkCorrection.id.desc()).limit(limit)))

"""Retention: closed cases past their period are erased whole, objects first, leaving an audit row
that says what was erased and never what it held."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.audit import record_audit_event
from service.storage.clusters import cluster_mates, recluster
from service.storage.models import Case, CaseNote, Cluster, ClusterMember, Evidence, Identifier, utc_now
from service.storage.objects import ObjectStore


@dataclass(frozen=True)
class Expired:
    case_id: int
    reference: str
    closed_at: datetime
    evidence: int


def expired_cases(session: Session, *, closed_before: datetime) -> list[Expired]:
    """Closed cases whose last change (the closing, unless touched since) is older than `closed_before`."""
    evidence_count = (
        sa.select(sa.func.count()).select_from(Evidence.__table__).where(Evidence.case_id == Case.id).scalar_subquery()
    )
    rows = session.execute(
        select(Case.id, Case.reference, Case.updated_at, evidence_count)
        .where(Case.status == "closed", Case.updated_at < closed_before)
        .order_by(Case.updated_at)
    ).all()
    return [Expired(row[0], row[1], row[2], row[3]) for row in rows]


def erase_case(session: Session, store: ObjectStore, expired: Expired, *, actor: str, max_image_distance: int) -> None:
    """Evidence objects first, then the case (its rows go with it); committed with its audit row. The
    cluster it was in is worked out again without it (it may have been the one case joining two parts)."""
    keys = session.exec(select(Evidence.object_key).where(Evidence.case_id == expired.case_id)).all()
    for key in keys:
        store.delete(key)
    counts = {
        "identifiers": _count(session, Identifier, expired.case_id),
        "notes": _count(session, CaseNote, expired.case_id),
        "evidence": len(keys),
    }
    cluster_id, others = cluster_mates(session, expired.case_id)
    session.execute(sa.delete(ClusterMember.__table__).where(ClusterMember.__table__.c.case_id == expired.case_id))
    session.execute(sa.delete(Case.__table__).where(Case.__table__.c.id == expired.case_id))
    if others:
        recluster(session, others, now=utc_now(), max_image_distance=max_image_distance)
    elif cluster_id is not None:
        session.execute(sa.delete(Cluster.__table__).where(Cluster.__table__.c.id == cluster_id))
    record_audit_event(
        session,
        actor=actor,
        action="case.erased",
        case_id=expired.case_id,
        reason="retention period passed",
        detail={"reference": expired.reference, "closed_at": expired.closed_at.isoformat(), **counts},
    )
    session.commit()


def _count(session: Session, model, case_id: int) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(model.__table__).where(model.__table__.c.case_id == case_id)
    ).scalar_one()

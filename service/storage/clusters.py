"""Clusters of linked cases: joined incrementally at intake, merged when a case bridges two, rebuilt
from the links when asked, and read with their harm added up for an analyst's key scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session

from service.domain.clusters import ClusterAlertPolicy, add_money, connected_components, money_paid
from service.storage.alerts import queue_alert
from service.storage.corrections import not_linking_identifiers, pair, pair_corrections
from service.storage.models import Case, Cluster, ClusterMember, Identifier, ImageMatch, UTCDateTime

CLUSTER_EVENT = "cluster.joined"

_CASES = Case.__table__
_CLUSTERS = Cluster.__table__
_MEMBERS = ClusterMember.__table__
_IDENTIFIERS = Identifier.__table__
_MATCHES = ImageMatch.__table__


# --- the links -----------------------------------------------------------------------------------


def neighbours_of(session: Session, case_ids: list[int], max_image_distance: int) -> set[tuple[int, int]]:
    """Links (case, other case) from these cases: shared normalised identifiers and matching images, as
    analysts have corrected them (identifiers that join nothing, false links out; manual links and
    duplicates in)."""
    mine, other = _IDENTIFIERS.alias("mine"), _IDENTIFIERS.alias("other")
    by_identifier = (
        sa.select(mine.c.case_id, other.c.case_id)
        .select_from(
            mine.join(other, sa.and_(other.c.normalized == mine.c.normalized, other.c.case_id != mine.c.case_id))
        )
        .where(mine.c.case_id.in_(case_ids), mine.c.normalized.not_in(not_linking_identifiers()))
    )
    close = _MATCHES.c.distance <= max_image_distance
    forward = sa.select(_MATCHES.c.case_id, _MATCHES.c.matched_case_id).where(_MATCHES.c.case_id.in_(case_ids), close)
    backward = sa.select(_MATCHES.c.matched_case_id, _MATCHES.c.case_id).where(
        _MATCHES.c.matched_case_id.in_(case_ids), close
    )
    found = {(a, b) for a, b in session.execute(sa.union(by_identifier, forward, backward)).all()}
    corrections = pair_corrections(session, case_ids)
    found = {(a, b) for a, b in found if pair(a, b) not in corrections.false_links}
    wanted = set(case_ids)
    for a, b in corrections.added:
        found |= {(a, b)} if a in wanted else set()
        found |= {(b, a)} if b in wanted else set()
    return found


def _member_rows(session: Session, case_ids: list[int], cluster_id: int) -> list[dict]:
    duplicates = pair_corrections(session, case_ids).duplicates
    rows = session.execute(
        sa.select(
            _CASES.c.id, _CASES.c.police_force, _CASES.c.victim_was_under_18, _CASES.c.created_at, _CASES.c.submission
        ).where(_CASES.c.id.in_(case_ids))
    ).all()
    return [
        {
            "case_id": case_id,
            "cluster_id": cluster_id,
            "police_force": force,
            "child_victim": bool(child),
            "money": money_paid((submission or {}).get("payments") or []),
            "reported_at": created_at,
            "duplicate": case_id in duplicates,
        }
        for case_id, force, child, created_at, submission in rows
    ]


# --- keeping clusters up to date ------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterJoin:
    cluster_id: int
    joined: bool  # the case is now linked to cases it was not linked to before


def join_clusters(
    session: Session,
    case_id: int,
    *,
    now: datetime,
    max_image_distance: int,
    alert_policy: ClusterAlertPolicy | None = None,
) -> ClusterJoin:
    """Put a case in the cluster of every case it links to, merging their clusters if it bridges
    several (the caller commits). Costs one lookup of its links and one of their clusters; a merge
    moves the members of the smaller clusters into the largest."""
    others = {other for _, other in neighbours_of(session, [case_id], max_image_distance)}
    involved = [case_id, *others]
    current = dict(
        session.execute(
            sa.select(_MEMBERS.c.case_id, _MEMBERS.c.cluster_id).where(_MEMBERS.c.case_id.in_(involved))
        ).all()
    )
    clusters = set(current.values())
    sizes = dict(session.execute(sa.select(_CLUSTERS.c.id, _CLUSTERS.c.size).where(_CLUSTERS.c.id.in_(clusters))).all())
    if sizes:
        survivor = min(sizes, key=lambda cluster: (-sizes[cluster], cluster))
    else:
        survivor = session.execute(
            sa.insert(_CLUSTERS).returning(_CLUSTERS.c.id), {"size": 0, "created_at": now, "updated_at": now}
        ).scalar_one()
    absorbed = [cluster for cluster in sizes if cluster != survivor]
    if absorbed:
        session.execute(sa.update(_MEMBERS).where(_MEMBERS.c.cluster_id.in_(absorbed)).values(cluster_id=survivor))
        session.execute(sa.delete(_CLUSTERS).where(_CLUSTERS.c.id.in_(absorbed)))
    missing = [case for case in involved if case not in current]
    if missing:
        session.execute(sa.insert(_MEMBERS), _member_rows(session, missing, survivor))
    joined = (
        bool(absorbed)
        or (case_id not in current and bool(others))
        or (case_id in current and any(case not in current for case in others))
    )
    if not absorbed and not missing:
        return ClusterJoin(survivor, joined=False)
    size = session.execute(
        sa.select(sa.func.count()).select_from(_MEMBERS).where(_MEMBERS.c.cluster_id == survivor)
    ).scalar_one()
    session.execute(sa.update(_CLUSTERS).where(_CLUSTERS.c.id == survivor).values(size=size, updated_at=now))
    if joined and alert_policy is not None:
        _alert_if_due(session, survivor, case_id, alert_policy, now)
    return ClusterJoin(survivor, joined=joined)


def _alert_if_due(session: Session, cluster_id: int, case_id: int, policy: ClusterAlertPolicy, now: datetime) -> None:
    counted = sa.not_(_MEMBERS.c.duplicate)
    victims, children, forces = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((counted, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((sa.and_(counted, _MEMBERS.c.child_victim), 1), else_=0)), 0),
            sa.func.count(sa.distinct(_MEMBERS.c.police_force)),
        ).where(_MEMBERS.c.cluster_id == cluster_id)
    ).one()
    if not policy.is_due(victims=victims, child_victims=children):
        return
    reference = session.execute(sa.select(_CASES.c.reference).where(_CASES.c.id == case_id)).scalar_one()
    # Counts and references only: whoever receives it reads the cases through the API, audited.
    queue_alert(
        session,
        event=CLUSTER_EVENT,
        now=now,
        payload={
            "cluster_id": cluster_id,
            "joined_by": reference,
            "victims": victims,
            "child_victims": int(children),
            "forces": forces,
            "created_at": now.isoformat(),
        },
    )


def recluster(session: Session, case_ids: list[int], *, now: datetime, max_image_distance: int) -> None:
    """Work out again the clusters these cases are in, after a correction added or removed links among
    them: only their clusters' members are read, so the cost is the size of the clusters touched."""
    cluster_ids = set(
        session.execute(sa.select(_MEMBERS.c.cluster_id).where(_MEMBERS.c.case_id.in_(case_ids))).scalars()
    )
    members = set(case_ids) | set(
        session.execute(sa.select(_MEMBERS.c.case_id).where(_MEMBERS.c.cluster_id.in_(cluster_ids))).scalars()
    )
    existing = set(session.execute(sa.select(_CASES.c.id).where(_CASES.c.id.in_(members))).scalars())
    edges = [(a, b) for a, b in neighbours_of(session, sorted(existing), max_image_distance) if b in existing]
    session.execute(sa.delete(_MEMBERS).where(_MEMBERS.c.case_id.in_(existing)))
    session.execute(sa.delete(_CLUSTERS).where(_CLUSTERS.c.id.in_(cluster_ids)))
    for component in sorted(connected_components(existing, edges), key=min):
        cluster_id = session.execute(
            sa.insert(_CLUSTERS).returning(_CLUSTERS.c.id),
            {"size": len(component), "created_at": now, "updated_at": now},
        ).scalar_one()
        session.execute(sa.insert(_MEMBERS), _member_rows(session, sorted(component), cluster_id))


def rebuild_clusters(session: Session, *, now: datetime, max_image_distance: int) -> int:
    """Every cluster worked out again from the links (after links are corrected, or for cases that
    predate clusters). Returns the number of clusters of two or more cases."""
    case_ids = list(session.execute(sa.select(_CASES.c.id)).scalars())
    edges = neighbours_of(session, case_ids, max_image_distance) if case_ids else set()
    session.execute(sa.delete(_MEMBERS))
    session.execute(sa.delete(_CLUSTERS))
    linked = 0
    for component in connected_components(case_ids, edges):
        cluster_id = session.execute(
            sa.insert(_CLUSTERS).returning(_CLUSTERS.c.id),
            {"size": len(component), "created_at": now, "updated_at": now},
        ).scalar_one()
        session.execute(sa.insert(_MEMBERS), _member_rows(session, sorted(component), cluster_id))
        linked += len(component) > 1
    return linked


# --- reading --------------------------------------------------------------------------------------


@dataclass
class ClusterView:
    """A cluster as one analyst's key sees it: totals over the cases it may see, and how many it may not."""

    cluster_id: int
    cases: int
    hidden_cases: int
    victims: int
    child_victims: int
    first_seen: datetime
    last_seen: datetime
    money: dict[str, str] = field(default_factory=dict)
    forces: list[str] = field(default_factory=list)
    joining_identifiers: list[tuple[str, str, int]] = field(default_factory=list)  # type, normalized, cases
    image_links: int = 0


_ORDER = {
    "harm": ("child_victims", "victims", "last_seen"),
    "victims": ("victims", "child_victims", "last_seen"),
    "last_seen": ("last_seen",),
    "first_seen": ("first_seen",),
}


def _visible(forces: tuple[str, ...] | None):
    return sa.true() if forces is None else _MEMBERS.c.police_force.in_(forces)


def _totals(forces: tuple[str, ...] | None):
    visible = _visible(forces)
    one_if = lambda condition: sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)  # noqa: E731
    return sa.select(
        _MEMBERS.c.cluster_id,
        sa.func.count().label("cases"),
        one_if(visible).label("visible"),
        one_if(sa.and_(visible, sa.not_(_MEMBERS.c.duplicate))).label("victims"),
        one_if(sa.and_(visible, _MEMBERS.c.child_victim, sa.not_(_MEMBERS.c.duplicate))).label("child_victims"),
        sa.type_coerce(sa.func.min(sa.case((visible, _MEMBERS.c.reported_at))), UTCDateTime).label("first_seen"),
        sa.type_coerce(sa.func.max(sa.case((visible, _MEMBERS.c.reported_at))), UTCDateTime).label("last_seen"),
    ).group_by(_MEMBERS.c.cluster_id)


def list_clusters(
    session: Session, *, forces: tuple[str, ...] | None, sort: str, offset: int, limit: int
) -> list[ClusterView]:
    """Clusters of two or more cases with at least one the key may see, in the order asked for."""
    totals = (
        _totals(forces)
        .where(_MEMBERS.c.cluster_id.in_(sa.select(_CLUSTERS.c.id).where(_CLUSTERS.c.size >= 2)))
        .having(sa.func.count() >= 2)
        .subquery()
    )
    columns = {"child_victims": totals.c.child_victims, "victims": totals.c.victims}
    columns.update(last_seen=totals.c.last_seen, first_seen=totals.c.first_seen)
    order = [columns[name].desc() for name in _ORDER[sort]]
    rows = session.execute(
        sa.select(totals).where(totals.c.visible >= 1).order_by(*order, totals.c.cluster_id).offset(offset).limit(limit)
    ).all()
    return _views(session, rows, forces)


def cluster_of_case(session: Session, case_id: int, forces: tuple[str, ...] | None) -> ClusterView | None:
    cluster_id = session.execute(
        sa.select(_MEMBERS.c.cluster_id).where(_MEMBERS.c.case_id == case_id)
    ).scalar_one_or_none()
    if cluster_id is None:
        return None
    rows = session.execute(_totals(forces).where(_MEMBERS.c.cluster_id == cluster_id)).all()
    return _views(session, rows, forces)[0]


def member_cases(session: Session, cluster_id: int, forces: tuple[str, ...] | None) -> list[Case]:
    query = (
        sa.select(Case)
        .join(ClusterMember, ClusterMember.case_id == Case.id)
        .where(ClusterMember.cluster_id == cluster_id, _visible(forces))
        .order_by(Case.created_at, Case.id)
    )
    return list(session.execute(query).scalars())


def links_between(session: Session, case_ids: list[int], max_image_distance: int) -> list[tuple[int, int, str, str]]:
    """Links among these cases as (case, other case, kind, what): for drawing a cluster."""
    if not case_ids:
        return []
    mine, other = _IDENTIFIERS.alias("mine"), _IDENTIFIERS.alias("other")
    shared = session.execute(
        sa.select(mine.c.case_id, other.c.case_id, mine.c.type, mine.c.normalized)
        .select_from(
            mine.join(other, sa.and_(other.c.normalized == mine.c.normalized, other.c.case_id > mine.c.case_id))
        )
        .where(mine.c.case_id.in_(case_ids), other.c.case_id.in_(case_ids))
    ).all()
    images = session.execute(
        sa.select(_MATCHES.c.case_id, _MATCHES.c.matched_case_id, _MATCHES.c.distance).where(
            _MATCHES.c.case_id.in_(case_ids),
            _MATCHES.c.matched_case_id.in_(case_ids),
            _MATCHES.c.distance <= max_image_distance,
        )
    ).all()
    links = [(min(a, b), max(a, b), "identifier", f"{kind}:{normalized}") for a, b, kind, normalized in shared]
    links += [(min(a, b), max(a, b), "image", f"pdq distance {distance}") for a, b, distance in images]
    return sorted(set(links))


def _views(session: Session, rows, forces: tuple[str, ...] | None) -> list[ClusterView]:
    if not rows:
        return []
    cluster_ids = [row.cluster_id for row in rows]
    visible = _visible(forces)
    money: dict[int, dict[str, Decimal]] = {cluster: {} for cluster in cluster_ids}
    force_names: dict[int, set[str]] = {cluster: set() for cluster in cluster_ids}
    for cluster, force, paid in session.execute(
        sa.select(_MEMBERS.c.cluster_id, _MEMBERS.c.police_force, _MEMBERS.c.money).where(
            _MEMBERS.c.cluster_id.in_(cluster_ids), visible
        )
    ).all():
        add_money(money[cluster], paid or {})
        if force:
            force_names[cluster].add(force)
    joining = _joining_identifiers(session, cluster_ids, forces)
    image_links = dict(
        session.execute(
            sa.select(_MEMBERS.c.cluster_id, sa.func.count())
            .select_from(_MATCHES.join(_MEMBERS, _MEMBERS.c.case_id == _MATCHES.c.case_id))
            .where(_MEMBERS.c.cluster_id.in_(cluster_ids), visible)
            .group_by(_MEMBERS.c.cluster_id)
        ).all()
    )
    return [
        ClusterView(
            cluster_id=row.cluster_id,
            cases=row.visible,
            hidden_cases=row.cases - row.visible,
            victims=row.victims,
            child_victims=row.child_victims,
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            money={currency: str(total) for currency, total in sorted(money[row.cluster_id].items())},
            forces=sorted(force_names[row.cluster_id]),
            joining_identifiers=joining.get(row.cluster_id, []),
            image_links=image_links.get(row.cluster_id, 0),
        )
        for row in rows
    ]


def _joining_identifiers(
    session: Session, cluster_ids: list[int], forces: tuple[str, ...] | None
) -> dict[int, list[tuple[str, str, int]]]:
    """Identifiers held by two or more cases of a cluster, at least one of which the key may see."""
    visible = sa.case((_visible(forces), 1), else_=0)
    rows = session.execute(
        sa.select(
            _MEMBERS.c.cluster_id,
            _IDENTIFIERS.c.type,
            _IDENTIFIERS.c.normalized,
            sa.func.count(sa.distinct(_IDENTIFIERS.c.case_id)).label("cases"),
        )
        .select_from(_IDENTIFIERS.join(_MEMBERS, _MEMBERS.c.case_id == _IDENTIFIERS.c.case_id))
        .where(_MEMBERS.c.cluster_id.in_(cluster_ids))
        .group_by(_MEMBERS.c.cluster_id, _IDENTIFIERS.c.type, _IDENTIFIERS.c.normalized)
        .having(sa.func.count(sa.distinct(_IDENTIFIERS.c.case_id)) >= 2, sa.func.max(visible) == 1)
        .order_by(_MEMBERS.c.cluster_id, sa.desc("cases"), _IDENTIFIERS.c.type, _IDENTIFIERS.c.normalized)
    ).all()
    joining: dict[int, list[tuple[str, str, int]]] = {}
    for cluster, kind, normalized, cases in rows:
        joining.setdefault(cluster, []).append((kind, normalized, cases))
    return joining

"""Clusters of linked cases: joined incrementally at intake, merged when a case bridges two, rebuilt
from the links when asked, and read with their harm added up for an analyst's key scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from service.domain.clusters import ClusterAlertPolicy, ClusterTotals, connected_components, money_paid, money_sum
from service.storage.alerts import queue_alert
from service.storage.corrections import (
    DUPLICATE,
    FALSE_LINK,
    MANUAL_LINK,
    not_linking_identifiers,
    pair,
    pair_corrections,
)
from service.storage.models import (
    Case,
    Cluster,
    ClusterForce,
    ClusterMember,
    Identifier,
    ImageMatch,
    LinkCorrection,
    UTCDateTime,
)

CLUSTER_EVENT = "cluster.joined"

_CASES = Case.__table__
_CLUSTERS = Cluster.__table__
_MEMBERS = ClusterMember.__table__
_FORCES = ClusterForce.__table__
_CORRECTIONS = LinkCorrection.__table__
_IDENTIFIERS = Identifier.__table__
_MATCHES = ImageMatch.__table__


# --- the links -----------------------------------------------------------------------------------


def _neighbours_statement():
    """Built once (expanding parameters): the links of some cases and the corrections touching them,
    tagged, in one round trip."""
    case_ids = sa.bindparam("case_ids", expanding=True)
    close = _MATCHES.c.distance <= sa.bindparam("max_distance")
    mine, other = _IDENTIFIERS.alias("mine"), _IDENTIFIERS.alias("other")
    linked = sa.literal_column("'link'")
    by_identifier = (
        sa.select(linked, mine.c.case_id, other.c.case_id)
        .select_from(
            mine.join(other, sa.and_(other.c.normalized == mine.c.normalized, other.c.case_id != mine.c.case_id))
        )
        .where(mine.c.case_id.in_(case_ids), mine.c.normalized.not_in(not_linking_identifiers()))
    )
    forward = sa.select(linked, _MATCHES.c.case_id, _MATCHES.c.matched_case_id).where(
        _MATCHES.c.case_id.in_(case_ids), close
    )
    backward = sa.select(linked, _MATCHES.c.matched_case_id, _MATCHES.c.case_id).where(
        _MATCHES.c.matched_case_id.in_(case_ids), close
    )
    corrections = sa.select(
        sa.case((_CORRECTIONS.c.kind == FALSE_LINK, sa.literal_column("'false'")), else_=sa.literal_column("'added'")),
        _CORRECTIONS.c.case_id,
        _CORRECTIONS.c.other_case_id,
    ).where(
        _CORRECTIONS.c.revoked_at.is_(None),
        _CORRECTIONS.c.kind.in_((FALSE_LINK, MANUAL_LINK, DUPLICATE)),
        sa.or_(_CORRECTIONS.c.case_id.in_(case_ids), _CORRECTIONS.c.other_case_id.in_(case_ids)),
    )
    return sa.union(by_identifier, forward, backward, corrections)


_NEIGHBOURS = _neighbours_statement()


def neighbours_of(session: Session, case_ids: list[int], max_image_distance: int) -> set[tuple[int, int]]:
    """Links (case, other case) from these cases: shared normalised identifiers and matching images, as
    analysts have corrected them (identifiers that join nothing, false links out; manual links and
    duplicates in). One round trip: the links and the corrections come back as one tagged list."""
    rows = session.connection().execute(_NEIGHBOURS, {"case_ids": case_ids, "max_distance": max_image_distance}).all()
    false_links = {pair(a, b) for tag, a, b in rows if tag == "false"}
    found = {(a, b) for tag, a, b in rows if tag == "link" and pair(a, b) not in false_links}
    wanted = set(case_ids)
    for tag, a, b in rows:
        if tag == "added":
            found |= {(a, b)} if a in wanted else set()
            found |= {(b, a)} if b in wanted else set()
    return found


def _neighbours_of_one_statement():
    """The cases one case (`:case_id`) links to, as `neighbours_of` finds them, in SQL: the
    statements of a join take the one case id, never a list whose length changes with the cluster's
    size (each length would be another statement to prepare, on every pooled connection)."""
    case_id = sa.bindparam("case_id", type_=sa.Integer)
    close = _MATCHES.c.distance <= sa.bindparam("max_distance", type_=sa.Integer)
    mine, other = _IDENTIFIERS.alias("mine"), _IDENTIFIERS.alias("other")
    links = sa.union(
        sa.select(other.c.case_id.label("id"))
        .select_from(
            mine.join(other, sa.and_(other.c.normalized == mine.c.normalized, other.c.case_id != mine.c.case_id))
        )
        .where(mine.c.case_id == case_id, mine.c.normalized.not_in(not_linking_identifiers())),
        sa.select(_MATCHES.c.matched_case_id).where(_MATCHES.c.case_id == case_id, close),
        sa.select(_MATCHES.c.case_id).where(_MATCHES.c.matched_case_id == case_id, close),
    ).subquery("links")

    def corrected(*kinds: str):
        # kind = a OR kind = b, not IN: an IN of literals is expanded afresh on every execution
        active = sa.and_(_CORRECTIONS.c.revoked_at.is_(None), sa.or_(*(_CORRECTIONS.c.kind == kind for kind in kinds)))
        return sa.union(
            sa.select(_CORRECTIONS.c.other_case_id).where(active, _CORRECTIONS.c.case_id == case_id),
            sa.select(_CORRECTIONS.c.case_id).where(active, _CORRECTIONS.c.other_case_id == case_id),
        ).subquery()

    false_links = corrected(FALSE_LINK)
    added = corrected(MANUAL_LINK, DUPLICATE)
    kept = sa.select(links.c.id).where(links.c.id.not_in(sa.select(false_links.c[0])))
    return [kept, sa.select(added.c[0])]  # a union's parts: SQLite takes no union nested in another


_NEIGHBOURS_OF_ONE = _neighbours_of_one_statement()


def _case_facts_statement():
    is_duplicate = (
        sa.select(_CORRECTIONS.c.id)
        .where(
            _CORRECTIONS.c.kind == DUPLICATE,
            _CORRECTIONS.c.revoked_at.is_(None),
            _CORRECTIONS.c.case_id == _CASES.c.id,
        )
        .exists()
    )
    return sa.select(
        _CASES.c.id,
        _CASES.c.police_force,
        _CASES.c.victim_was_under_18,
        _CASES.c.created_at,
        _CASES.c.submission,
        is_duplicate,
    ).where(_CASES.c.id.in_(sa.bindparam("case_ids", expanding=True)))


_CASE_FACTS = _case_facts_statement()


def _member_rows(session: Session, case_ids: list[int], cluster_id: int) -> list[dict]:
    rows = session.connection().execute(_CASE_FACTS, {"case_ids": case_ids}).all()
    return [
        {
            "case_id": case_id,
            "cluster_id": cluster_id,
            "police_force": force,
            "child_victim": bool(child),
            "money": money_paid((submission or {}).get("payments") or []),
            "reported_at": created_at,
            "duplicate": bool(duplicate),
        }
        for case_id, force, child, created_at, submission, duplicate in rows
    ]


# --- keeping clusters up to date ------------------------------------------------------------------
#
# A cluster of two or more cases keeps its totals (cluster row) and its totals per police force
# (cluster_force rows), changed here in the transaction that changes its cases: a join adds what
# joined, a merge adds the absorbed cluster's rows (never its cases' rows), and only a correction,
# which can split a cluster, counts a cluster's members again. A case linked to no other case is in no
# cluster and has no rows here: intake writes none for it (nine new cases in ten), and a join creates
# them when it gains a link. A cluster of one may still be stored (written before, asked for by
# cluster_of_case, or left by a split): it keeps no totals, its one member row is them.
#
# Locks: a case in no cluster has no cluster row to lock, and two joins linking it at once would both
# give it a member row: its case row is what they wait on. A join locks the rows of the cases it
# involves that are in no cluster, then their clusters; a recomputation the rows of the cases it was
# given, then their clusters; reading a lone case's cluster its row. Each lowest id first.

NO_FORCE = ""  # cluster_force's key for cases given no police force


def _member_totals(row) -> tuple[str, ClusterTotals]:
    return (row["police_force"] or NO_FORCE), ClusterTotals.of_case(
        child_victim=row["child_victim"],
        money=row["money"] or {},
        reported_at=row["reported_at"],
        duplicate=row["duplicate"],
    )


_MEMBER_FACTS = (
    _MEMBERS.c.case_id,
    _MEMBERS.c.cluster_id,
    _MEMBERS.c.police_force,
    _MEMBERS.c.child_victim,
    _MEMBERS.c.money,
    _MEMBERS.c.reported_at,
    _MEMBERS.c.duplicate,
)
_TOTAL_COLUMNS = ("victims", "child_victims", "money", "first_seen", "last_seen")


def _stored_totals(row, cases: int) -> ClusterTotals:
    return ClusterTotals(cases, row.victims, row.child_victims, dict(row.money or {}), row.first_seen, row.last_seen)


_LOCK_CLUSTERS_OF = (
    sa.select(_CLUSTERS)
    .where(
        _CLUSTERS.c.id.in_(
            sa.select(_MEMBERS.c.cluster_id).where(_MEMBERS.c.case_id.in_(sa.bindparam("involved", expanding=True)))
        )
    )
    .order_by(_CLUSTERS.c.id)
    .with_for_update()
)
_LOCK_CLUSTERS = (
    sa.select(_CLUSTERS)
    .where(_CLUSTERS.c.id.in_(sa.bindparam("clusters", expanding=True)))
    .order_by(_CLUSTERS.c.id)
    .with_for_update()
)
_MEMBERS_OF = sa.select(*_MEMBER_FACTS).where(_MEMBERS.c.case_id.in_(sa.bindparam("involved", expanding=True)))
_FORCE_TOTALS_OF = sa.select(_FORCES).where(_FORCES.c.cluster_id.in_(sa.bindparam("clusters", expanding=True)))
_SET_CLUSTER_TOTALS = (
    sa.update(_CLUSTERS)
    .where(_CLUSTERS.c.id == sa.bindparam("target"))
    .values(**{name: sa.bindparam(name) for name in ("size", "updated_at", *_TOTAL_COLUMNS)})
)
_SET_FORCE_TOTALS = (
    sa.update(_FORCES)
    .where(_FORCES.c.cluster_id == sa.bindparam("target"), _FORCES.c.police_force == sa.bindparam("force"))
    .values(**{name: sa.bindparam(name) for name in ("cases", *_TOTAL_COLUMNS)})
)


_LOCK_CASES = (
    sa.select(_CASES.c.id)
    .where(_CASES.c.id.in_(sa.bindparam("cases", expanding=True)))
    .order_by(_CASES.c.id)
    .with_for_update(key_share=True)  # FOR NO KEY UPDATE: rows referring to the case may still be added
)


def _lock_cases(connection, case_ids) -> None:
    """These cases' rows locked, lowest id first: PostgreSQL only, SQLite's writers take turns."""
    if case_ids and connection.dialect.name == "postgresql":
        connection.execute(_LOCK_CASES, {"cases": sorted(case_ids)})


def _lock_clusters(session: Session, involved: list[int]) -> tuple[dict[int, dict], dict]:
    """The member rows of these cases and their clusters, locked (the cases' rows first, then the
    clusters, each lowest id first, so two joins never wait on each other in a circle); the members are
    read after locking, as a merge committed meanwhile may have moved them."""
    connection = session.connection()
    _lock_cases(connection, involved)
    locked = {row.id: row for row in connection.execute(_LOCK_CLUSTERS_OF, {"involved": involved})}
    for _ in range(4):
        members = {row["case_id"]: row for row in connection.execute(_MEMBERS_OF, {"involved": involved}).mappings()}
        unlocked = {row["cluster_id"] for row in members.values()} - locked.keys()
        if not unlocked:
            break
        locked |= {row.id: row for row in connection.execute(_LOCK_CLUSTERS, {"clusters": sorted(unlocked)})}
    return members, {
        row["cluster_id"]: locked[row["cluster_id"]] for row in members.values() if row["cluster_id"] in locked
    }


_CASE_ID = sa.bindparam("case_id", type_=sa.Integer)
_INVOLVED_IDS = sa.union(*_NEIGHBOURS_OF_ONE, sa.select(_CASE_ID.label("id")))  # a case and those it links to
_INVOLVED = _INVOLVED_IDS.subquery("involved")


def _locked_clusters_of(involved):
    """The clusters of these cases, locked lowest id first."""
    return (
        sa.select(_CLUSTERS)
        .where(
            _CLUSTERS.c.id.in_(sa.select(_MEMBERS.c.cluster_id).where(_MEMBERS.c.case_id.in_(sa.select(involved.c.id))))
        )
        .order_by(_CLUSTERS.c.id)
        .with_for_update()
    )


_LOCK_CLUSTERS_OF_CASE = _locked_clusters_of(_INVOLVED)


def _lock_lone_cases_and_clusters_of_case():
    """PostgreSQL: in one statement, the rows of the involved cases in no cluster (`lone` true: their id),
    then the involved clusters (`lone` false: the cluster row), each locked lowest id first. A CTE with
    a locking clause is run once, whole, when the UNION ALL reaches it: the cases first."""
    involved = _INVOLVED_IDS.cte("involved")
    in_no_cluster = ~sa.select(_MEMBERS.c.case_id).where(_MEMBERS.c.case_id == _CASES.c.id).exists()
    lone = (
        sa.select(_CASES.c.id)
        .where(_CASES.c.id.in_(sa.select(involved.c.id)), in_no_cluster)
        .order_by(_CASES.c.id)
        .with_for_update(key_share=True)
        .cte("lone")
    )
    clusters = _locked_clusters_of(involved).cte("clusters")
    empty = [sa.cast(sa.null(), column.type).label(column.name) for column in _CLUSTERS.c if column.name != "id"]
    return sa.union_all(
        sa.select(sa.true().label("lone"), lone.c.id, *empty),
        sa.select(sa.false().label("lone"), *clusters.c),
    )


_LOCK_LONE_CASES_AND_CLUSTERS_OF_CASE = _lock_lone_cases_and_clusters_of_case()


def _involved_statement():
    """A case and every case it links to, each with its member row if it has one, else the facts its
    member row is made of (what it paid is read only then: a member row has it added up already)."""
    member, case = _MEMBERS, _CASES
    unclustered = member.c.case_id.is_(None)
    is_duplicate = (
        sa.select(_CORRECTIONS.c.id)
        .where(
            _CORRECTIONS.c.kind == DUPLICATE, _CORRECTIONS.c.revoked_at.is_(None), _CORRECTIONS.c.case_id == case.c.id
        )
        .exists()
    )
    return (
        sa.select(
            _INVOLVED.c.id.label("case_id"),
            case.c.reference,
            member.c.cluster_id,
            sa.func.coalesce(member.c.police_force, case.c.police_force).label("police_force"),
            sa.func.coalesce(member.c.child_victim, case.c.victim_was_under_18).label("child_victim"),
            member.c.money,
            sa.func.coalesce(member.c.reported_at, case.c.created_at).label("reported_at"),
            sa.case((unclustered, is_duplicate), else_=member.c.duplicate).label("duplicate"),
            sa.case((unclustered, case.c.submission)).label("submission"),
        )
        .select_from(
            _INVOLVED.join(case, case.c.id == _INVOLVED.c.id).outerjoin(member, member.c.case_id == _INVOLVED.c.id)
        )
        .order_by(_INVOLVED.c.id)
    )


_INVOLVED_CASES = _involved_statement()


@dataclass(frozen=True)
class _Involved:
    """A case, the cases it links to and the clusters they are in, as read with those clusters locked."""

    references: dict[int, str]  # case -> reference
    members: dict[int, dict]  # case -> its member row, for those in a cluster
    unclustered: list[dict]  # member rows to make, for those in none (the joining case, usually)
    clusters: dict[int, object]  # cluster -> its locked row


def _lock_clusters_of_case(session: Session, case_id: int, max_image_distance: int) -> _Involved:
    """As _lock_clusters, for one case and the cases it links to, found in the same statements (two
    round trips when nothing moved meanwhile)."""
    connection = session.connection()
    parameters = {"case_id": case_id, "max_distance": max_image_distance}
    on_postgresql = connection.dialect.name == "postgresql"
    held: set[int] = set()  # cases in no cluster, their rows locked
    locked: dict[int, object] = {}
    if on_postgresql:
        for row in connection.execute(_LOCK_LONE_CASES_AND_CLUSTERS_OF_CASE, parameters):
            if row.lone:
                held.add(row.id)
            else:
                locked[row.id] = row
    else:
        locked = {row.id: row for row in connection.execute(_LOCK_CLUSTERS_OF_CASE, parameters)}
    for _ in range(4):
        rows = connection.execute(_INVOLVED_CASES, parameters).mappings().all()
        unlocked = {row["cluster_id"] for row in rows if row["cluster_id"] is not None} - locked.keys()
        # in no cluster, not locked: one a cluster lost since (a split), or a link committed since
        unheld = {row["case_id"] for row in rows if row["cluster_id"] is None} - held if on_postgresql else set()
        if not unlocked and not unheld:
            break
        _lock_cases(connection, unheld)
        held |= unheld
        if unlocked:
            locked |= {row.id: row for row in connection.execute(_LOCK_CLUSTERS, {"clusters": sorted(unlocked)})}
    members, unclustered = {}, []
    for row in rows:
        if row["cluster_id"] is not None:
            members[row["case_id"]] = {name: row[name] for name in _MEMBER_COLUMNS}
        else:
            unclustered.append(
                {
                    **{name: row[name] for name in _MEMBER_COLUMNS},
                    "child_victim": bool(row["child_victim"]),
                    "duplicate": bool(row["duplicate"]),
                    "money": money_paid((row["submission"] or {}).get("payments") or []),
                }
            )
    clusters = {row["cluster_id"]: locked[row["cluster_id"]] for row in members.values() if row["cluster_id"] in locked}
    return _Involved({row["case_id"]: row["reference"] for row in rows}, members, unclustered, clusters)


_MEMBER_COLUMNS = tuple(column.name for column in _MEMBER_FACTS)


@dataclass(frozen=True)
class ClusterJoin:
    cluster_id: int | None  # None: the case links to no other case and is in no cluster
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
    several (the caller commits); a case linked to none is left in none. Four round trips on PostgreSQL
    when a case joins one cluster, whatever its size, or makes one with cases in none: the clusters (and
    cases in none) locked, the cases read, their force totals read, the member rows, the totals (and the
    new cluster) written; a merge moves the members of
    the smaller clusters into the largest and adds up their stored totals. Every statement takes the one
    case id, so each is prepared once per connection."""
    connection = session.connection()
    involved = _lock_clusters_of_case(session, case_id, max_image_distance)
    members, clusters = involved.members, involved.clusters
    others = involved.references.keys() - {case_id}
    if not clusters and not others:  # linked to no other case: no cluster, no rows
        return ClusterJoin(None, joined=False)
    survivor = _surviving_cluster(connection, clusters, now)
    absorbed = [cluster for cluster in clusters if cluster != survivor]
    missing = [{**row, "cluster_id": survivor} for row in involved.unclustered]
    joined = (
        bool(absorbed)
        or (case_id not in members and bool(others))
        or (case_id in members and any(case not in members for case in others))
    )
    if not absorbed and not missing:
        return ClusterJoin(survivor, joined=False)

    larger = sorted(cluster for cluster, row in clusters.items() if row.size >= 2)
    stored_by_force = connection.execute(_FORCE_TOTALS_OF, {"clusters": larger}).all() if larger else []
    by_force, gained = _taken_over(members, clusters, stored_by_force, survivor)
    if absorbed:
        if set(larger) - {survivor}:
            connection.execute(sa.delete(_FORCES).where(_FORCES.c.cluster_id.in_(absorbed)))
        connection.execute(sa.update(_MEMBERS).where(_MEMBERS.c.cluster_id.in_(absorbed)).values(cluster_id=survivor))
        connection.execute(sa.delete(_CLUSTERS).where(_CLUSTERS.c.id.in_(absorbed)))
    for row in missing:
        force, totals = _member_totals(row)
        by_force.setdefault(force, ClusterTotals()).add(totals)
        gained.add(totals)

    base = ClusterTotals()
    if survivor in clusters and clusters[survivor].size >= 2:
        base = _stored_totals(clusters[survivor], clusters[survivor].size)
    base.add(gained)
    forces: set[str] = set()
    force_rows: list[dict] = []
    if base.cases >= 2:
        survivor_rows = {row.police_force: row for row in stored_by_force if row.cluster_id == survivor}
        force_rows = _force_total_rows(survivor, survivor_rows, by_force)
        forces = (survivor_rows.keys() | by_force.keys()) - {NO_FORCE}
    totals = {"target": survivor, "size": base.cases, "updated_at": now, **_columns(base)}
    survivor = _write_join(connection, missing, force_rows, totals)
    if (
        joined
        and alert_policy is not None
        and alert_policy.is_due(victims=base.victims, child_victims=base.child_victims)
    ):
        # Counts and references only: whoever receives it reads the cases through the API, audited.
        queue_alert(
            session,
            event=CLUSTER_EVENT,
            now=now,
            payload={
                "cluster_id": survivor,
                "joined_by": involved.references[case_id],
                "victims": base.victims,
                "child_victims": base.child_victims,
                "forces": len(forces),
                "created_at": now.isoformat(),
            },
        )
    return ClusterJoin(survivor, joined=joined)


def _new_cluster(connection, *, size: int, now: datetime) -> int:
    """A new cluster row (its totals written by whoever fills it); its id."""
    return connection.execute(
        sa.insert(_CLUSTERS).returning(_CLUSTERS.c.id), {"size": size, "created_at": now, "updated_at": now}
    ).scalar_one()


def _surviving_cluster(connection, clusters: dict, now: datetime) -> int | None:
    """The largest cluster (the oldest of the largest); with none, a new one (on PostgreSQL None: the
    join's write makes it, in the same round trip)."""
    if clusters:
        return min(clusters, key=lambda cluster: (-clusters[cluster].size, cluster))
    if connection.dialect.name == "postgresql":
        return None
    return _new_cluster(connection, size=0, now=now)


def _taken_over(
    members: dict[int, dict], clusters: dict, stored_by_force: list, survivor: int
) -> tuple[dict[str, ClusterTotals], ClusterTotals]:
    """What the surviving cluster takes over, per force and in all: the stored totals of the absorbed
    clusters of two or more, and the member row of each cluster of one (absorbed, or the survivor
    itself), since a cluster of one keeps no totals."""
    by_force: dict[str, ClusterTotals] = {}
    gained = ClusterTotals()

    def gain(force: str, totals: ClusterTotals) -> None:
        by_force.setdefault(force, ClusterTotals()).add(totals)
        gained.add(totals)

    for row in stored_by_force:
        if row.cluster_id != survivor:
            gain(row.police_force, _stored_totals(row, row.cases))
    for row in members.values():
        if row["cluster_id"] in clusters and clusters[row["cluster_id"]].size < 2:
            gain(*_member_totals(row))
    return by_force, gained


def _columns(totals: ClusterTotals) -> dict:
    return {name: getattr(totals, name) for name in _TOTAL_COLUMNS}


def _force_totals_upsert(insert):
    statement = insert(_FORCES)
    written = {name: statement.excluded[name] for name in ("cases", *_TOTAL_COLUMNS)}
    return statement.on_conflict_do_update(index_elements=[_FORCES.c.cluster_id, _FORCES.c.police_force], set_=written)


# Built once: a statement built per call is compiled per call.
_UPSERT_FORCE_TOTALS = {
    "postgresql": _force_totals_upsert(postgresql.insert),
    "sqlite": _force_totals_upsert(sqlite.insert),
}


def _force_total_rows(cluster_id: int, stored: dict[str, object], by_force: dict[str, ClusterTotals]) -> list[dict]:
    """The cluster's totals per force, each what was stored plus what it gained."""
    rows = []
    for force, totals in by_force.items():
        if force in stored:
            merged = _stored_totals(stored[force], stored[force].cases)
            merged.add(totals)
            totals = merged
        rows.append({"cluster_id": cluster_id, "police_force": force, "cases": totals.cases, **_columns(totals)})
    return rows


def _typed(names: tuple[str, ...], kind) -> list:
    return [sa.bindparam(name, type_=kind) for name in names]


# PostgreSQL: what a join writes (the new member rows, the force totals, the cluster's totals; the
# cluster itself when the cases joined were in none, `:target` NULL) in one statement, one round trip,
# not three or four. A row inserted by one part is not seen by another's UPDATE: a new cluster is
# inserted with its totals. JSON goes as text: None stays SQL NULL, never JSON null.
_WRITE_JOIN_ON_POSTGRESQL = sa.text("""
WITH made AS (
    INSERT INTO cluster (size, victims, child_victims, money, first_seen, last_seen, created_at, updated_at)
    SELECT :size, :victims, :child_victims, CAST(:money AS jsonb), :first_seen, :last_seen, :updated_at, :updated_at
    WHERE CAST(:target AS integer) IS NULL
    RETURNING id
), target AS (
    SELECT id FROM made UNION ALL SELECT CAST(:target AS integer) WHERE CAST(:target AS integer) IS NOT NULL
), members AS (
    INSERT INTO cluster_member (case_id, cluster_id, police_force, child_victim, money, reported_at, duplicate)
    SELECT kept.case_id, target.id, kept.police_force, kept.child_victim, kept.money::jsonb, kept.reported_at,
           kept.duplicate
    FROM target, unnest(:member_cases, :member_forces, :member_children, :member_money, :member_reported_at,
                        :member_duplicates) AS kept(case_id, police_force, child_victim, money, reported_at, duplicate)
), forces AS (
    INSERT INTO cluster_force (cluster_id, police_force, cases, victims, child_victims, money, first_seen, last_seen)
    SELECT target.id, kept.police_force, kept.cases, kept.victims, kept.child_victims, kept.money::jsonb,
           kept.first_seen, kept.last_seen
    FROM target, unnest(:force_names, :force_cases, :force_victims, :force_children, :force_money,
                        :force_first_seen, :force_last_seen)
         AS kept(police_force, cases, victims, child_victims, money, first_seen, last_seen)
    ON CONFLICT (cluster_id, police_force) DO UPDATE
    SET cases = excluded.cases, victims = excluded.victims, child_victims = excluded.child_victims,
        money = excluded.money, first_seen = excluded.first_seen, last_seen = excluded.last_seen
), updated AS (
    UPDATE cluster SET size = :size, victims = :victims, child_victims = :child_victims, money = CAST(:money AS jsonb),
                       first_seen = :first_seen, last_seen = :last_seen, updated_at = :updated_at
    WHERE id = :target
)
SELECT id FROM target
""").bindparams(
    *_typed(("member_cases",), postgresql.ARRAY(sa.Integer)),
    *_typed(("member_forces", "member_money", "force_names", "force_money"), postgresql.ARRAY(sa.Text)),
    *_typed(("member_children", "member_duplicates"), postgresql.ARRAY(sa.Boolean)),
    *_typed(
        ("member_reported_at", "force_first_seen", "force_last_seen"), postgresql.ARRAY(sa.DateTime(timezone=True))
    ),
    *_typed(("force_cases", "force_victims", "force_children"), postgresql.ARRAY(sa.Integer)),
    *_typed(("target", "size", "victims", "child_victims"), sa.Integer),
    *_typed(("first_seen", "last_seen", "updated_at"), sa.DateTime(timezone=True)),
    sa.bindparam("money", type_=sa.Text),
)


def _write_join(connection, members: list[dict], force_rows: list[dict], totals: dict) -> int:
    """The new member rows, the force totals (each upserted) and the cluster's totals; on PostgreSQL the
    cluster too when `totals["target"]` is None. Returns the cluster's id."""
    if connection.dialect.name == "postgresql":
        return connection.execute(
            _WRITE_JOIN_ON_POSTGRESQL,
            {
                "member_cases": [row["case_id"] for row in members],
                "member_forces": [row["police_force"] for row in members],
                "member_children": [row["child_victim"] for row in members],
                "member_money": [_json(row["money"]) for row in members],
                "member_reported_at": [row["reported_at"] for row in members],
                "member_duplicates": [row["duplicate"] for row in members],
                "force_names": [row["police_force"] for row in force_rows],
                "force_cases": [row["cases"] for row in force_rows],
                "force_victims": [row["victims"] for row in force_rows],
                "force_children": [row["child_victims"] for row in force_rows],
                "force_money": [_json(row["money"]) for row in force_rows],
                "force_first_seen": [row["first_seen"] for row in force_rows],
                "force_last_seen": [row["last_seen"] for row in force_rows],
                **{name: totals[name] for name in ("target", "size", "victims", "child_victims")},
                **{name: totals[name] for name in ("first_seen", "last_seen", "updated_at")},
                "money": _json(totals["money"]),
            },
        ).scalar_one()
    if members:
        connection.execute(sa.insert(_MEMBERS), members)
    if force_rows:
        upsert = _UPSERT_FORCE_TOTALS[connection.dialect.name]
        connection.execute(upsert, force_rows[0] if len(force_rows) == 1 else force_rows)
    connection.execute(_SET_CLUSTER_TOTALS, totals)
    return totals["target"]


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def count_again(session: Session, cluster_ids: list[int], *, now: datetime) -> None:
    """Work out these clusters' stored totals from their members (after a split or a duplicate)."""
    if not cluster_ids:
        return
    per_cluster: dict[int, dict[str, ClusterTotals]] = {cluster: {} for cluster in cluster_ids}
    for row in session.execute(sa.select(*_MEMBER_FACTS).where(_MEMBERS.c.cluster_id.in_(cluster_ids))).mappings():
        force, totals = _member_totals(row)
        per_cluster[row["cluster_id"]].setdefault(force, ClusterTotals()).add(totals)
    session.execute(sa.delete(_FORCES).where(_FORCES.c.cluster_id.in_(cluster_ids)))
    _write_totals(session, per_cluster, now)


def _write_totals(session: Session, per_cluster: dict[int, dict[str, ClusterTotals]], now: datetime) -> None:
    force_rows, cluster_rows = [], []
    for cluster_id, by_force in per_cluster.items():
        whole = ClusterTotals()
        for totals in by_force.values():
            whole.add(totals)
        if whole.cases >= 2:
            force_rows += [
                {"cluster_id": cluster_id, "police_force": force, "cases": totals.cases, **_columns(totals)}
                for force, totals in by_force.items()
            ]
        cluster_rows.append({"target": cluster_id, "size": whole.cases, "updated_at": now, **_columns(whole)})
    if force_rows:
        session.execute(sa.insert(_FORCES), force_rows)
    if cluster_rows:
        session.connection().execute(_SET_CLUSTER_TOTALS, cluster_rows)


def ids_kept_after_split(components: list[set[int]], cluster_of: dict[int, int]) -> list[int | None]:
    """Which old cluster id each new component keeps: each old id goes to the component holding most of
    its cases (on a tie the larger component, then the lowest case id), so the larger part of a split
    cluster keeps its id; a component given none gets a new one."""
    pairs = []
    for position, component in enumerate(components):
        counts: dict[int, int] = {}
        for case in component:
            if case in cluster_of:
                counts[cluster_of[case]] = counts.get(cluster_of[case], 0) + 1
        pairs += [(-count, -len(component), min(component), cluster, position) for cluster, count in counts.items()]
    kept: list[int | None] = [None] * len(components)
    used: set[int] = set()
    for _, _, _, cluster, position in sorted(pairs):
        if kept[position] is None and cluster not in used:
            kept[position] = cluster
            used.add(cluster)
    return kept


def cluster_mates(session: Session, case_id: int) -> tuple[int | None, list[int]]:
    """The case's cluster and the other cases in it."""
    cluster_id = session.execute(
        sa.select(_MEMBERS.c.cluster_id).where(_MEMBERS.c.case_id == case_id)
    ).scalar_one_or_none()
    if cluster_id is None:
        return None, []
    mates = session.execute(
        sa.select(_MEMBERS.c.case_id).where(_MEMBERS.c.cluster_id == cluster_id, _MEMBERS.c.case_id != case_id)
    ).scalars()
    return cluster_id, sorted(mates)


def recluster(session: Session, case_ids: list[int], *, now: datetime, max_image_distance: int) -> None:
    """Work out again the clusters these cases are in, after a correction added or removed links among
    them: only their clusters' members are read, so the cost is the size of the clusters touched. Ids
    stay where most of their cases are (ids_kept_after_split); the totals are counted again."""
    _, locked = _lock_clusters(session, case_ids)
    cluster_ids = set(locked)
    cluster_of = dict(
        session.execute(
            sa.select(_MEMBERS.c.case_id, _MEMBERS.c.cluster_id).where(_MEMBERS.c.cluster_id.in_(cluster_ids))
        ).all()
    )
    cases = set(cluster_of) | set(case_ids)
    existing = set(session.execute(sa.select(_CASES.c.id).where(_CASES.c.id.in_(cases))).scalars())
    edges = [(a, b) for a, b in neighbours_of(session, sorted(existing), max_image_distance) if b in existing]
    components = sorted(connected_components(existing, edges), key=lambda component: (-len(component), min(component)))
    result: list[int] = []
    for component, kept in zip(components, ids_kept_after_split(components, cluster_of), strict=True):
        if kept is None and len(component) == 1:  # linked to no other case now: in no cluster
            session.execute(sa.delete(_MEMBERS).where(_MEMBERS.c.case_id.in_(sorted(component))))
            continue
        cluster_id = kept
        if cluster_id is None:
            cluster_id = _new_cluster(session, size=0, now=now)
        moving = sorted(case for case in component if case in cluster_of and cluster_of[case] != cluster_id)
        if moving:
            session.execute(sa.update(_MEMBERS).where(_MEMBERS.c.case_id.in_(moving)).values(cluster_id=cluster_id))
        new = sorted(case for case in component if case not in cluster_of)
        if new:
            session.execute(sa.insert(_MEMBERS), _member_rows(session, new, cluster_id))
        result.append(cluster_id)
    duplicates = pair_corrections(session, sorted(existing)).duplicates & existing
    session.execute(
        sa.update(_MEMBERS)
        .where(_MEMBERS.c.case_id.in_(sorted(existing)))
        .values(duplicate=_MEMBERS.c.case_id.in_(sorted(duplicates)))
    )
    gone = sorted(cluster_ids - set(result))
    if gone:
        session.execute(sa.delete(_FORCES).where(_FORCES.c.cluster_id.in_(gone)))
        session.execute(sa.delete(_CLUSTERS).where(_CLUSTERS.c.id.in_(gone)))
    count_again(session, result, now=now)


def rebuild_clusters(session: Session, *, now: datetime, max_image_distance: int) -> int:
    """Every cluster worked out again from the links (after links are corrected, or for cases that
    predate clusters); a case linked to no other is left in none, as intake leaves it. Returns the
    number of clusters (of two or more cases)."""
    case_ids = list(session.execute(sa.select(_CASES.c.id)).scalars())
    edges = neighbours_of(session, case_ids, max_image_distance) if case_ids else set()
    session.execute(sa.delete(_MEMBERS))
    session.execute(sa.delete(_FORCES))
    session.execute(sa.delete(_CLUSTERS))
    linked = 0
    per_cluster: dict[int, dict[str, ClusterTotals]] = {}
    for component in connected_components(case_ids, edges):
        if len(component) < 2:
            continue
        cluster_id = _new_cluster(session, size=len(component), now=now)
        rows = _member_rows(session, sorted(component), cluster_id)
        session.execute(sa.insert(_MEMBERS), rows)
        by_force = per_cluster.setdefault(cluster_id, {})
        for row in rows:
            force, totals = _member_totals(row)
            by_force.setdefault(force, ClusterTotals()).add(totals)
        linked += 1
    _write_totals(session, per_cluster, now)
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
# A literal, not a parameter, so PostgreSQL may use the partial indexes kept for listing (models.Cluster).
_LISTED = _CLUSTERS.c.size >= sa.literal_column("2")


def _visible(forces: tuple[str, ...] | None):
    return sa.true() if forces is None else _MEMBERS.c.police_force.in_(forces)


def _page(forces: tuple[str, ...] | None, only: int | None = None):
    """Each cluster's totals as the key sees them: the stored totals for a key that sees every force,
    else the sum of its forces' stored totals (cases in other forces counted, not shown). Only clusters
    of two or more cases have force rows, so the sum needs no cluster row: the page's sizes are read
    once it is chosen (_views)."""
    if forces is None:
        query = sa.select(
            _CLUSTERS.c.id.label("cluster_id"),
            _CLUSTERS.c.size.label("cases"),
            _CLUSTERS.c.size.label("visible"),
            _CLUSTERS.c.victims,
            _CLUSTERS.c.child_victims,
            _CLUSTERS.c.first_seen,
            _CLUSTERS.c.last_seen,
        ).where(_LISTED)
        return query if only is None else query.where(_CLUSTERS.c.id == only)
    mine = _FORCES.c.police_force.in_(forces) if len(forces) > 1 else _FORCES.c.police_force == forces[0]
    if only is not None:
        mine = sa.and_(mine, _FORCES.c.cluster_id == only)
    if len(forces) == 1:  # one row per cluster: no sum, and the order may come straight from the rows
        return sa.select(
            _FORCES.c.cluster_id,
            _FORCES.c.cases.label("visible"),
            _FORCES.c.victims,
            _FORCES.c.child_victims,
            _FORCES.c.first_seen,
            _FORCES.c.last_seen,
        ).where(mine)
    return (
        sa.select(
            _FORCES.c.cluster_id,
            sa.func.sum(_FORCES.c.cases).label("visible"),
            sa.func.sum(_FORCES.c.victims).label("victims"),
            sa.func.sum(_FORCES.c.child_victims).label("child_victims"),
            sa.type_coerce(sa.func.min(_FORCES.c.first_seen), UTCDateTime).label("first_seen"),
            sa.type_coerce(sa.func.max(_FORCES.c.last_seen), UTCDateTime).label("last_seen"),
        )
        .where(mine)
        .group_by(_FORCES.c.cluster_id)
    )


def list_clusters(
    session: Session, *, forces: tuple[str, ...] | None, sort: str, offset: int, limit: int
) -> list[ClusterView]:
    """Clusters of two or more cases with at least one the key may see, in the order asked for (the
    newest cluster first on a tie). Reads a page of stored totals, never the clusters' cases."""
    page = _page(forces).subquery()
    order = [page.c[name].desc() for name in _ORDER[sort]]
    rows = session.execute(sa.select(page).order_by(*order, page.c.cluster_id.desc()).offset(offset).limit(limit)).all()
    return _views(session, rows, forces)


_MEMBER_OF_CASE = sa.select(*_MEMBER_FACTS).where(_MEMBERS.c.case_id == sa.bindparam("case_id"))


def cluster_of_case(session: Session, case_id: int, forces: tuple[str, ...] | None, *, now: datetime) -> ClusterView:
    """The case's cluster as the key sees it (the key may see the case itself). A case in none, linked to
    no other case, is given its cluster of one now, in the caller's transaction: the id answered stays
    the cluster's when the case is linked later (a join keeps the largest cluster's id, and the oldest)."""
    member = session.execute(_MEMBER_OF_CASE, {"case_id": case_id}).mappings().first()
    if member is None:
        member = _cluster_of_one(session, case_id, now)
    rows = session.execute(_page(forces, only=member["cluster_id"])).all()
    if rows:
        return _views(session, rows, forces)[0]
    force, alone = _member_totals(member)  # a cluster of one keeps no totals: its member row is them
    return ClusterView(
        cluster_id=member["cluster_id"],
        cases=1,
        hidden_cases=0,
        victims=alone.victims,
        child_victims=alone.child_victims,
        first_seen=member["reported_at"],
        last_seen=member["reported_at"],
        money=alone.money,
        forces=[force] if force else [],
    )


def _cluster_of_one(session: Session, case_id: int, now: datetime):
    """The case's member row, made with a cluster of one unless a join or another reader made it first:
    they write it holding the case's row (join_clusters), so it is read again once that is held."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":  # the write lock now (one writer at a time), as hold_case
        connection.execute(sa.update(_CASES).where(_CASES.c.id == case_id).values(id=_CASES.c.id))
    else:
        _lock_cases(connection, [case_id])
    member = connection.execute(_MEMBER_OF_CASE, {"case_id": case_id}).mappings().first()
    if member is not None:
        return member
    cluster_id = _new_cluster(connection, size=1, now=now)
    (member,) = _member_rows(session, [case_id], cluster_id)
    connection.execute(sa.insert(_MEMBERS), member)
    return member


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
    if forces is None:
        sizes = {row.cluster_id: row.cases for row in rows}
    else:
        sizes = dict(
            session.execute(sa.select(_CLUSTERS.c.id, _CLUSTERS.c.size).where(_CLUSTERS.c.id.in_(cluster_ids))).all()
        )
    money: dict[int, dict[str, str]] = {cluster: {} for cluster in cluster_ids}
    force_names: dict[int, list[str]] = {cluster: [] for cluster in cluster_ids}
    shown = _FORCES.c.cluster_id.in_(cluster_ids)
    if forces is not None:
        shown = sa.and_(shown, _FORCES.c.police_force.in_(forces))
    for cluster, force, paid in session.execute(
        sa.select(_FORCES.c.cluster_id, _FORCES.c.police_force, _FORCES.c.money)
        .where(shown)
        .order_by(_FORCES.c.cluster_id, _FORCES.c.police_force)
    ).all():
        money[cluster] = money_sum(money[cluster], paid or {})
        if force != NO_FORCE:
            force_names[cluster].append(force)
    joining = _joining_identifiers(session, cluster_ids, forces)
    image_links = dict(
        session.execute(
            sa.select(_MEMBERS.c.cluster_id, sa.func.count())
            .select_from(_MATCHES.join(_MEMBERS, _MEMBERS.c.case_id == _MATCHES.c.case_id))
            .where(_MEMBERS.c.cluster_id.in_(cluster_ids), _visible(forces))
            .group_by(_MEMBERS.c.cluster_id)
        ).all()
    )
    return [
        ClusterView(
            cluster_id=row.cluster_id,
            cases=row.visible,
            hidden_cases=sizes[row.cluster_id] - row.visible,
            victims=row.victims,
            child_victims=row.child_victims,
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            money=money[row.cluster_id],
            forces=force_names[row.cluster_id],
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

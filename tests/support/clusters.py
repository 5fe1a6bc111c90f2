"""Clusters' stored totals against a count from their members, as a rebuild would make them."""

from __future__ import annotations

import sqlalchemy as sa

from service.domain.clusters import ClusterTotals
from service.storage.database import session_scope
from service.storage.models import Cluster, ClusterForce, ClusterMember


def counted_from_scratch(session) -> tuple[dict, dict]:
    """Every cluster's totals, in all and per force, counted from its members as a rebuild would."""
    whole: dict[int, ClusterTotals] = {}
    by_force: dict[tuple[int, str], ClusterTotals] = {}
    for member in session.exec(sa.select(ClusterMember)).scalars():
        totals = ClusterTotals.of_case(
            child_victim=member.child_victim,
            money=member.money,
            reported_at=member.reported_at,
            duplicate=member.duplicate,
        )
        whole.setdefault(member.cluster_id, ClusterTotals()).add(totals)
        by_force.setdefault((member.cluster_id, member.police_force or ""), ClusterTotals()).add(totals)
    return whole, by_force


def stored_totals(session) -> tuple[dict, dict]:
    whole = {
        row.id: ClusterTotals(row.size, row.victims, row.child_victims, row.money, row.first_seen, row.last_seen)
        for row in session.exec(sa.select(Cluster)).scalars()
    }
    by_force = {
        (row.cluster_id, row.police_force): ClusterTotals(
            row.cases, row.victims, row.child_victims, row.money, row.first_seen, row.last_seen
        )
        for row in session.exec(sa.select(ClusterForce)).scalars()
    }
    return whole, by_force


def assert_stored_totals_are_a_count_from_scratch(engine) -> None:
    with session_scope(engine) as session:
        counted, counted_by_force = counted_from_scratch(session)
        stored, stored_by_force = stored_totals(session)
    assert stored.keys() == counted.keys()  # no cluster without members
    assert {cluster: totals.cases for cluster, totals in stored.items()} == {
        cluster: totals.cases for cluster, totals in counted.items()
    }
    larger = {cluster for cluster, totals in counted.items() if totals.cases >= 2}
    assert {cluster: stored[cluster] for cluster in larger} == {cluster: counted[cluster] for cluster in larger}
    assert stored_by_force == {key: totals for key, totals in counted_by_force.items() if key[0] in larger}

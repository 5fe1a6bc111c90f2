"""The one call every entry point makes after a case gains links (new case, identifiers, evidence)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Session

from service.domain.clusters import ClusterAlertPolicy
from service.settings import Settings
from service.storage.clusters import ClusterJoin, join_clusters


def refresh_cluster(session: Session, case_id: int, settings: Settings, *, alerts: bool, now: datetime) -> ClusterJoin:
    """Join the case to the cluster of every case it links to, in the caller's transaction; with
    alerts on, a join into a cluster with a child victim or enough victims queues the urgent webhook."""
    policy = ClusterAlertPolicy(min_victims=settings.cluster_alert_min_victims) if alerts else None
    return join_clusters(
        session, case_id, now=now, max_image_distance=settings.image_match_max_distance, alert_policy=policy
    )


async def refresh_cluster_on(
    connection: AsyncConnection, case_id: int, settings: Settings, *, alerts: bool, now: datetime
) -> ClusterJoin:
    """`refresh_cluster` in the transaction of an asyncio connection (intake's): run_sync, so SQLAlchemy
    drives the blocking code on the event loop, no thread."""

    def join(sync_connection) -> ClusterJoin:
        with Session(bind=sync_connection) as session:  # joins the transaction; never ends it
            joined = refresh_cluster(session, case_id, settings, alerts=alerts, now=now)
            session.flush()
            return joined

    return await connection.run_sync(join)

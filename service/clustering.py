"""The one call every entry point makes after a case gains links (new case, identifiers, evidence)."""

from __future__ import annotations

from datetime import datetime

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

"""What may be shared with partner agencies: the offender identifiers of the cases whose victims agreed
(or of every matching case, for a caller the domain allows to share without consent)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from service.domain.sharing import SharedCase, SharedIdentifier
from service.storage.export import stream_cases
from service.storage.models import Case, Cluster, ClusterMember, Identifier
from service.storage.search import CaseFilters

_BATCH = 500


def shareable_cases(session: Session, filters: CaseFilters, *, without_consent: bool = False) -> list[SharedCase]:
    """Matching cases with consent_to_share (every matching case given `without_consent`), oldest first,
    with their identifiers and cluster: of two or more cases, as a case linked to no other is in none
    (a cluster of one may still be stored for it, service.storage.clusters)."""
    references = [
        case["reference"]
        for case in stream_cases(session, filters)
        if without_consent or case["submission"].get("consent_to_share")
    ]
    shared: list[SharedCase] = []
    for start in range(0, len(references), _BATCH):
        batch = references[start : start + _BATCH]
        rows = session.execute(
            sa.select(
                Case.reference,
                sa.case((Cluster.size >= 2, ClusterMember.cluster_id)),
                Identifier.type,
                Identifier.normalized,
                Identifier.platform,
                Identifier.handle,
            )
            .select_from(Case)
            .outerjoin(ClusterMember, ClusterMember.case_id == Case.id)
            .outerjoin(Cluster, Cluster.id == ClusterMember.cluster_id)
            .outerjoin(Identifier, Identifier.case_id == Case.id)
            .where(Case.reference.in_(batch))
            .order_by(Identifier.id)
        ).all()
        found: dict[str, tuple[int | None, list[SharedIdentifier]]] = {}
        for reference, cluster_id, kind, normalized, platform, handle in rows:
            _, identifiers = found.setdefault(reference, (cluster_id, []))
            if kind is not None:
                identifiers.append(SharedIdentifier(kind, normalized, platform, handle))
        shared += [
            SharedCase(reference, found[reference][0], tuple(found[reference][1]))
            for reference in batch
            if reference in found
        ]
    return shared

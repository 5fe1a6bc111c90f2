"""Offender networks for analysts: clusters of linked cases with the harm they add up to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from service.api.cases import CaseReference, visible_case
from service.api.deps import AccessReason, Caller, DatabaseSession, RequestId, Role, require_role
from service.api.pages import Cursor, PageSize, encode_cursor, offset, page_model, page_size, read_cursor
from service.api.schemas import Priority, Status
from service.storage.audit import record_audit_event
from service.storage.clusters import ClusterView, cluster_of_case, links_between, list_clusters, member_cases
from service.storage.models import utc_now

router = APIRouter(tags=["clusters"])

Sort = Literal["harm", "victims", "last_seen", "first_seen"]


class JoiningIdentifier(BaseModel):
    type: str
    normalized: str
    cases: int = Field(description="How many cases of the cluster hold it.")


class ClusterSummary(BaseModel):
    id: int = Field(
        description="Stable while the cluster grows; when two clusters merge, the larger one's id stays; when a "
        "correction splits one, the part holding most of its cases keeps it and the others get new ids."
    )
    cases: int = Field(description="Cases in the cluster that this key may see.")
    hidden_cases: int = Field(description="Cases in the cluster in forces this key may not see: counted, not shown.")
    victims: int = Field(description="Victims among the cases shown (one per case).")
    child_victims: int = Field(description="Of those, victims who were under 18 when they reported.")
    money: dict[str, str] = Field(
        description="Money paid per ISO 4217 currency, as decimal strings (XXX: no currency given); a duplicate "
        "case's payments are not counted again.",
        examples=[{"GBP": "450.00", "USD": "200"}],
    )
    forces: list[str] = Field(description="Police forces of the cases shown.")
    first_seen: datetime = Field(description="When the earliest case shown was reported.")
    last_seen: datetime = Field(description="When the latest case shown was reported.")
    joining_identifiers: list[JoiningIdentifier] = Field(
        description="Identifiers held by two or more of its cases, most shared first."
    )
    image_links: int = Field(description="Matching images between its cases.")

    @classmethod
    def of(cls, view: ClusterView) -> ClusterSummary:
        return cls(
            id=view.cluster_id,
            cases=view.cases,
            hidden_cases=view.hidden_cases,
            victims=view.victims,
            child_victims=view.child_victims,
            money=view.money,
            forces=view.forces,
            first_seen=view.first_seen,
            last_seen=view.last_seen,
            joining_identifiers=[
                JoiningIdentifier(type=kind, normalized=normalized, cases=cases)
                for kind, normalized, cases in view.joining_identifiers
            ],
            image_links=view.image_links,
        )


ClusterPage = page_model("ClusterPage", "clusters", ClusterSummary)


class ClusterCase(BaseModel):
    reference: str
    priority: Priority
    status: Status
    police_force: str | None
    created_at: datetime
    child_victim: bool


class ClusterLink(BaseModel):
    case: str
    other_case: str
    kind: Literal["identifier", "image"]
    via: str = Field(description="`type:normalized` of the shared identifier, or the images' PDQ distance.")


class CaseCluster(BaseModel):
    reference: str = Field(description="The case asked about.")
    cluster: ClusterSummary
    cases: list[ClusterCase] = Field(description="The cluster's cases this key may see, oldest first.")
    links: list[ClusterLink] = Field(description="The links between those cases: enough to draw the network.")


@router.get(
    "/v1/clusters",
    summary="List offender networks",
    description=(
        "Clusters of two or more cases joined by shared identifiers or matching images (connected components, "
        "kept up to date as cases arrive), with the harm they add up to. A key limited to some forces sees "
        "only its forces' cases in each cluster and how many others there are. `sort=harm` (default): child "
        "victims, then victims, then the most recently active. Every read is audited."
    ),
    response_model=ClusterPage,
)
def get_clusters(
    request: Request,
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
    sort: Annotated[
        Sort, Query(description="harm, victims, last_seen or first_seen; largest or newest first.")
    ] = "harm",
    cursor: Cursor = None,
    limit: PageSize = None,
    caller: Caller = require_role(Role.analyst),
) -> ClusterPage:
    size = page_size(request.app.state.settings, limit)
    start = read_cursor(cursor, "clusters", lambda position: _position_in(position, sort)) or 0
    views = list_clusters(session, forces=caller.forces, sort=sort, offset=start, limit=size + 1)
    page, more = views[:size], len(views) > size
    record_audit_event(
        session,
        actor=caller.actor,
        action="clusters.list",
        reason=reason,
        request_id=request_id,
        detail={"sort": sort, "offset": start, "returned": len(page)},
    )
    session.commit()
    next_cursor = encode_cursor("clusters", {"o": start + size, "s": sort}) if more else None
    return ClusterPage(clusters=[ClusterSummary.of(view) for view in page], next_cursor=next_cursor)


@router.get(
    "/v1/cases/{reference}/cluster",
    summary="The offender network a case belongs to",
    description="The case's cluster as this key may see it, its cases and the links between them. A case "
    "linked to no other case is a cluster of one. Audited.",
    response_model=CaseCluster,
)
def get_case_cluster(
    reference: CaseReference,
    request: Request,
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
    caller: Caller = require_role(Role.analyst),
) -> CaseCluster:
    case = visible_case(session, reference, caller)
    view = cluster_of_case(session, case.id, caller.forces, now=utc_now())
    members = member_cases(session, view.cluster_id, caller.forces)
    by_id = {member.id: member for member in members}
    links = links_between(session, list(by_id), request.app.state.settings.image_match_max_distance)
    record_audit_event(
        session,
        actor=caller.actor,
        action="case.cluster",
        case_id=case.id,
        reason=reason,
        request_id=request_id,
        detail={"cluster": view.cluster_id, "cases": len(members)},
    )
    session.commit()
    return CaseCluster(
        reference=case.reference,
        cluster=ClusterSummary.of(view),
        cases=[
            ClusterCase(
                reference=member.reference,
                priority=member.priority,
                status=member.status,
                police_force=member.police_force,
                created_at=member.created_at,
                child_victim=member.victim_was_under_18,
            )
            for member in members
        ],
        links=[
            ClusterLink(case=by_id[a].reference, other_case=by_id[b].reference, kind=kind, via=via)
            for a, b, kind, via in links
        ],
    )


def _position_in(position: dict, sort: str) -> int:
    """How far into the list a cursor is; it was given out for this order or it is not ours."""
    if position["s"] != sort:
        raise ValueError
    return offset(position["o"])

"""Analysts finding cases, and admins reading the audit log."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import select

from service import exporting
from service.api.cases import CaseReference, visible_case
from service.api.deps import AccessReason, Caller, DatabaseSession, RequestId, Role, require_role
from service.api.pages import Cursor, PageSize, encode_cursor, moment, page_model, page_size, read_cursor, row_id
from service.api.problems import validation_problem
from service.api.query import refuse_unknown_query_parameters
from service.api.schemas import Priority, Status
from service.domain.cases import SearchMoment
from service.domain.export import EXPORT_COLUMNS, EXPORT_V1_SUNSET, EXPORT_VERSION
from service.domain.police_forces import UnknownPoliceForce
from service.domain.reference import canonical_reference
from service.domain.urgency import FlagCode
from service.exporting import ExportRequest
from service.storage.audit import (
    CaseTrail,
    erased_case_trail,
    list_audit,
    live_case_trail,
    record_audit_event,
    references_of_events,
)
from service.storage.cases import find_case
from service.storage.corrections import corrections_touching
from service.storage.identifiers import identifiers_of
from service.storage.links import links_of
from service.storage.models import AuditEvent, Case
from service.storage.search import CaseFilters, list_cases

# Every search, export and audit read: a misspelt filter must not widen the answer to everything.
router = APIRouter(tags=["analysts"], dependencies=[Depends(refuse_unknown_query_parameters)])


class CaseSummary(BaseModel):
    reference: str
    status: Status
    priority: Priority
    flags: list[str] = Field(examples=[["under_18", "payment_recallable"]])
    police_force: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, case: Case) -> CaseSummary:
        return cls(
            reference=case.reference,
            status=case.status,
            priority=case.priority,
            flags=[flag["code"] for flag in case.flags],
            police_force=case.police_force,
            created_at=case.created_at,
            updated_at=case.updated_at,
        )


CasePage = page_model("CasePage", "cases", CaseSummary)


class SharedIdentifier(BaseModel):
    type: str
    normalized: str


class MatchingImage(BaseModel):
    evidence_id: str = Field(description="The image of the case asked about.")
    matched_evidence_id: str = Field(description="The image of the linked case.")
    distance: int = Field(description="PDQ Hamming distance, 0 (identical) to 256; a match is at most the setting.")


class LinkedCase(BaseModel):
    reference: str
    priority: Priority
    status: Status
    police_force: str | None
    created_at: datetime
    link_types: list[Literal["identifier", "image", "manual_link", "duplicate"]] = Field(
        description="What links the cases: a shared identifier, a matching image, an analyst's manual link, "
        "or one case being a duplicate of the other."
    )
    shared: list[SharedIdentifier] = Field(description="The identifiers this case shares with the one asked about.")
    images: list[MatchingImage] = Field(
        description="Images of the two cases whose perceptual hashes match, nearest first (no image is shown)."
    )


class CorrectionOut(BaseModel):
    id: int
    kind: Literal["identifier_not_linking", "false_link", "manual_link", "duplicate"]
    case: str | None = Field(description="For a duplicate, the duplicate case.")
    other_case: str | None = Field(description="For a duplicate, the original it points to.")
    identifier: str | None = Field(description="The normalized identifier marked as joining nothing.")
    reason: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None


class CaseLinks(BaseModel):
    reference: str
    duplicate_of: str | None = Field(description="The original, if analysts marked this case a duplicate of it.")
    links: list[LinkedCase]
    corrections: list[CorrectionOut] = Field(
        description="Analysts' corrections about this case or its identifiers, in force or revoked, oldest first."
    )


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(examples=["key:3f2a9c1b7d4e"], description="Who: an API key id, a reporter, or a link.")
    action: str = Field(examples=["case.read"])
    case: str | None = Field(description="The case reference, if the event concerns one.")
    reason: str | None
    request_id: str | None = Field(
        description="The service's own id for the request (its X-Request-Id answer header); never chosen by the client."
    )
    client_request_id: str | None = Field(
        description="The X-Request-Id the client sent, if it was up to 64 visible ASCII characters; the client's "
        "own word, kept for matching with its logs."
    )
    detail: dict[str, Any] | None


AuditPage = page_model("AuditPage", "events", AuditEventOut)


def case_filters(
    request: Request,
    caller: Caller = require_role(Role.analyst),
    since: Annotated[SearchMoment | None, Query(description="Created at or after (UTC if no offset is given).")] = None,
    until: Annotated[SearchMoment | None, Query(description="Created before (UTC if no offset is given).")] = None,
    priority: Priority | None = None,
    flag: FlagCode | None = None,
    force: Annotated[str | None, Query(max_length=80, description="Police force slug (GET /v1/police-forces).")] = None,
    status: Status | None = None,
    identifier: Annotated[str | None, Query(max_length=1000, description="A normalized identifier.")] = None,
) -> CaseFilters:
    if force is not None:
        try:
            request.app.state.content.police_forces.check(force)
        except UnknownPoliceForce as error:
            raise validation_problem([{"field": "force", "message": str(error)}]) from None
    return CaseFilters(
        since=since,
        until=until,
        priority=priority,
        flag=flag.value if flag else None,
        force=force,
        status=status,
        identifier=identifier,
        forces_in_scope=caller.forces,
    )


Filters = Annotated[CaseFilters, Depends(case_filters)]


@router.get(
    "/v1/cases/export",
    summary="Export every matching case",
    description="Streams NDJSON (one case per line) or CSV, in constant memory however many cases match. "
    f"CSV columns are version {EXPORT_VERSION}: " + ", ".join(EXPORT_COLUMNS) + ". Cells that a "
    "spreadsheet would run as a formula start with a quote. NDJSON `version=2` has real JSON arrays for "
    "flags, platforms and identifiers; version 1 (`;`-joined text) stays the default until "
    f"{EXPORT_V1_SUNSET} (its answers carry a `Sunset` header), then version 2 will be. `format=stix` is a STIX "
    "2.1 bundle for partner agencies: the offender identifiers of the matching cases whose victims agreed to "
    "sharing (`consent_to_share`) as observables, one grouping per offender network, all marked with the "
    "deployment's TLP 2.0 level (default TLP:AMBER); no victim data. An analyst key made with the permission "
    "to share without consent (`intake keys create --role analyst --share-without-consent`) gets the matching "
    "cases whose victims did not agree too, still within its forces and TLP-marked; its audit rows say "
    "`without_consent: true`. Every export is audited with the "
    "references of the cases it returned, part by part as they are sent (`cases.export` rows).",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}, "application/stix+json": {}}}},
)
def export_cases(
    request: Request,
    filters: Filters,
    request_id: RequestId,
    reason: AccessReason,
    format: Annotated[Literal["ndjson", "csv", "stix"], Query(description="ndjson, csv or stix.")] = "ndjson",
    version: Annotated[Literal["1", "2"], Query(description="NDJSON version: 2 has JSON arrays.")] = "1",
    caller: Caller = require_role(Role.analyst),
) -> StreamingResponse:
    if version == "2" and format != "ndjson":
        raise validation_problem([{"field": "version", "message": "Version 2 is for NDJSON; CSV stays flat."}])
    asked = ExportRequest(
        filters,
        format,
        version,
        actor=caller.actor,
        reason=reason,
        request_id=request_id,
        share_without_consent=format == "stix" and caller.can_share_without_consent,
    )
    parts = exporting.export_cases(request.app.state.engine, request.app.state.settings, asked)
    # The first part is read (and audited) here, before the 200 is sent: a database that is down or a
    # query that fails is then a problem+json answer, not a response cut off half-way.
    first = next(parts, b"")
    return StreamingResponse(itertools.chain([first], parts), media_type=_MEDIA_TYPES[format], headers=_headers(asked))


_MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8", "stix": "application/stix+json"}


def _headers(asked: ExportRequest) -> dict[str, str]:
    if asked.format == "stix":
        return {"Content-Disposition": 'attachment; filename="cases.stix.json"'}
    exported_version = asked.version if asked.format == "ndjson" else EXPORT_VERSION
    headers = {
        "Content-Disposition": f'attachment; filename="cases-v{exported_version}.{asked.format}"',
        "X-Export-Version": exported_version,
    }
    if asked.format == "ndjson" and asked.version == "1":
        headers["Sunset"] = format_datetime(datetime.fromisoformat(EXPORT_V1_SUNSET).replace(tzinfo=UTC), usegmt=True)
    return headers


@router.get(
    "/v1/cases",
    summary="Find cases",
    description="Newest first, with keyset pagination that stays stable while new cases arrive. A key "
    "limited to some forces sees only their cases. Every search is audited.",
    response_model=CasePage,
)
def find_cases(
    request: Request,
    filters: Filters,
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
    cursor: Cursor = None,
    limit: PageSize = None,
    caller: Caller = require_role(Role.analyst),
) -> CasePage:
    size = page_size(request.app.state.settings, limit)
    after = read_cursor(cursor, "cases", lambda position: (moment(position["t"]), row_id(position["i"])))
    cases = list_cases(session, filters, after=after, limit=size + 1)
    page, more = cases[:size], len(cases) > size
    record_audit_event(
        session,
        actor=caller.actor,
        action="cases.search",
        reason=reason,
        request_id=request_id,
        # Which cases were shown, not only how many: the trail must say whose data each search revealed.
        detail={"filters": filters.described(), "returned": len(page), "cases": [case.reference for case in page]},
    )
    session.commit()
    next_cursor = encode_cursor("cases", {"t": page[-1].created_at.isoformat(), "i": page[-1].id}) if more else None
    return CasePage(cases=[CaseSummary.of(case) for case in page], next_cursor=next_cursor)


@router.get(
    "/v1/cases/{reference}/links",
    summary="Cases linked by a shared identifier or a matching image",
    description="Offenders reuse MTCN receivers, Skype IDs, profile links and bait photos across victims: these "
    "are the other cases that share a normalized identifier with this one, or hold an image whose PDQ "
    "perceptual hash is within the match distance of one of its images, and what links them.",
    response_model=CaseLinks,
)
def get_links(
    reference: CaseReference,
    request: Request,
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
    caller: Caller = require_role(Role.analyst),
) -> CaseLinks:
    case = visible_case(session, reference, caller)
    max_distance = request.app.state.settings.image_match_max_distance
    links = [link for link in links_of(session, case.id, max_distance) if caller.may_see_force(link.case.police_force)]
    record_audit_event(
        session,
        actor=caller.actor,
        action="case.links",
        case_id=case.id,
        reason=reason,
        request_id=request_id,
        detail={"linked": len(links)},
    )
    session.commit()
    corrections = corrections_touching(session, case.id, [row.normalized for row in identifiers_of(session, case.id)])
    references = case_references(
        session, {c.case_id for c in corrections} | {c.other_case_id for c in corrections}, caller
    )
    # A correction about a pair that includes a case of a force this key may not see is not shown.
    corrections = [
        c for c in corrections if c.identifier is not None or {c.case_id, c.other_case_id} <= references.keys()
    ]
    duplicate_of = next(
        (c.other_case_id for c in corrections if c.kind == "duplicate" and c.case_id == case.id and not c.revoked_at),
        None,
    )
    return CaseLinks(
        reference=case.reference,
        duplicate_of=references.get(duplicate_of),
        corrections=[correction_out(c, references) for c in corrections],
        links=[
            LinkedCase(
                reference=link.case.reference,
                priority=link.case.priority,
                status=link.case.status,
                police_force=link.case.police_force,
                created_at=link.case.created_at,
                link_types=(["identifier"] if link.identifiers else [])
                + (["image"] if link.images else [])
                + ([link.by_analyst] if link.by_analyst else []),
                shared=[SharedIdentifier(type=row.type, normalized=row.normalized) for row in link.identifiers],
                images=[
                    MatchingImage(
                        evidence_id=image.evidence_id,
                        matched_evidence_id=image.other_evidence_id,
                        distance=image.distance,
                    )
                    for image in link.images
                ],
            )
            for link in links
        ],
    )


@router.get(
    "/v1/audit",
    summary="Read the audit log",
    description="Who read or changed what, when and why; newest first. Admin keys only.",
    response_model=AuditPage,
)
def read_audit(
    request: Request,
    session: DatabaseSession,
    request_id: RequestId,
    case: Annotated[str | None, Query(max_length=40, description="A case reference.")] = None,
    actor: Annotated[str | None, Query(max_length=80, examples=["key:3f2a9c1b7d4e"])] = None,
    since: Annotated[SearchMoment | None, Query(description="At or after (UTC if no offset is given).")] = None,
    cursor: Cursor = None,
    limit: PageSize = None,
    caller: Caller = require_role(Role.admin),
) -> AuditPage:
    size = page_size(request.app.state.settings, limit)
    before_id = read_cursor(cursor, "audit", lambda position: row_id(position["i"]))
    trail = _case_trail(session, case) if case is not None else None
    events = (
        []
        if case is not None and trail is None
        else list_audit(session, trail=trail, actor=actor, since=since, before_id=before_id, limit=size + 1)
    )
    page, more = events[:size], len(events) > size
    # Reading the log is itself an access to what it says about cases: audited like any other.
    filters = {"case": case, "actor": actor, "since": since.isoformat() if since else None}
    record_audit_event(
        session,
        actor=caller.actor,
        action="audit.read",
        request_id=request_id,
        detail={"filters": {k: v for k, v in filters.items() if v is not None}, "returned": len(page)},
    )
    session.commit()
    references = references_of_events(session, page)
    return AuditPage(
        events=[_audit_out(event, references.get(event.id)) for event in page],
        next_cursor=encode_cursor("audit", {"i": page[-1].id}) if more else None,
    )


def case_references(session, case_ids: set[int | None], caller: Caller) -> dict[int, str]:
    """References of the cases among these that the caller may see."""
    wanted = {case_id for case_id in case_ids if case_id is not None}
    if not wanted:
        return {}
    rows = session.exec(select(Case.id, Case.reference, Case.police_force).where(Case.id.in_(wanted))).all()
    return {case_id: reference for case_id, reference, force in rows if caller.may_see_force(force)}


def correction_out(correction, references: dict[int, str]) -> CorrectionOut:
    return CorrectionOut(
        id=correction.id,
        kind=correction.kind,
        case=references.get(correction.case_id),
        other_case=references.get(correction.other_case_id),
        identifier=correction.identifier,
        reason=correction.reason,
        created_by=correction.created_by,
        created_at=correction.created_at,
        revoked_at=correction.revoked_at,
        revoked_by=correction.revoked_by,
        revoke_reason=correction.revoke_reason,
    )


def _case_trail(session, reference: str) -> CaseTrail | None:
    """The rows about the case with this reference: a live case's, or an erased case's (its rows stay
    in the log; its erasure row remembers the reference); None if no case ever had it."""
    canonical = canonical_reference(reference)
    if not canonical:
        return None
    found = find_case(session, canonical)
    return live_case_trail(session, found.id) if found else erased_case_trail(session, canonical)


def _audit_out(event: AuditEvent, reference: str | None) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        at=event.at,
        actor=event.actor,
        action=event.action,
        case=reference,
        reason=event.reason,
        request_id=event.request_id,
        client_request_id=event.client_request_id,
        detail=event.detail,
    )

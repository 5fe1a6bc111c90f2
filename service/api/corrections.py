"""Analysts correcting the links: an identifier that joins nothing, a false link, a link made by hand,
a duplicate case. Each has a reason, is audited, and is revoked (never deleted) to undo it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.api.analysts import CorrectionOut, case_references, correction_out
from service.api.bodies import StrictJsonRoute
from service.api.cases import visible_case
from service.api.deps import AccessReason, Caller, DatabaseSession, RequestId, Role, require_role
from service.api.problems import ProblemError, validation_problem
from service.domain.urgency import UrgencyPolicy
from service.linking import decide_holders_again
from service.storage.audit import record_audit_event
from service.storage.clusters import recluster
from service.storage.corrections import (
    DUPLICATE,
    IDENTIFIER_NOT_LINKING,
    add_correction,
    find_active,
    list_corrections,
    revoke_correction,
)
from service.storage.models import Identifier, LinkCorrection, utc_now

router = APIRouter(tags=["clusters"], route_class=StrictJsonRoute)

Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*\S[^\x00]*$")]


class CorrectionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["identifier_not_linking", "false_link", "manual_link", "duplicate"] = Field(
        description="identifier_not_linking: `identifier` joins no cases anywhere (a platform's support address, a "
        "victim's own number, a shared payment agent). false_link: `case` and `other_case` are not linked "
        "whatever they share. manual_link: they are. duplicate: `case` is the same report as `other_case`, "
        "the original (kept, linked, not counted twice)."
    )
    case: str | None = Field(default=None, max_length=40, description="A case reference.")
    other_case: str | None = Field(default=None, max_length=40, description="A case reference.")
    identifier: str | None = Field(default=None, min_length=1, max_length=2048, description="A normalized identifier.")
    reason: Reason = Field(description="Why: kept with the correction and in the audit log.")

    @model_validator(mode="after")
    def _right_fields_for_the_kind(self) -> CorrectionInput:
        if self.kind == IDENTIFIER_NOT_LINKING:
            if self.identifier is None or self.case is not None or self.other_case is not None:
                raise ValueError("identifier_not_linking takes `identifier` and no cases.")
        elif self.case is None or self.other_case is None or self.identifier is not None:
            raise ValueError(f"{self.kind} takes `case` and `other_case` and no identifier.")
        return self


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why the correction is undone.")


class CorrectionPage(BaseModel):
    corrections: list[CorrectionOut]


def _links_changed(request: Request, session, correction: LinkCorrection) -> None:
    """Clusters, and for an identifier the repeat flags of the cases holding it, follow at once."""
    settings = request.app.state.settings
    now = utc_now()
    recluster(
        session, _affected_cases(session, correction), now=now, max_image_distance=settings.image_match_max_distance
    )
    if correction.identifier is not None:
        policy = UrgencyPolicy(recall_window=settings.recall_window, deadline_window=settings.deadline_window)
        decide_holders_again(session, correction.identifier, now=now, policy=policy)


def _affected_cases(session, correction: LinkCorrection) -> list[int]:
    if correction.identifier is not None:
        holders = session.exec(
            Identifier.__table__.select()
            .with_only_columns(Identifier.__table__.c.case_id)
            .where(Identifier.__table__.c.normalized == correction.identifier)
        )
        return sorted(set(holders.scalars()))
    return [correction.case_id, correction.other_case_id]


@router.post(
    "/v1/link-corrections",
    summary="Correct the links between cases",
    description=(
        "Mark an identifier as joining no cases, a link as false, two cases as linked, or a case as a duplicate "
        "of another, with a reason. Links and clusters follow at once, everywhere. Marking an identifier needs "
        "a key that sees every force, since it changes every force's links. Audited; undo by revoking."
    ),
    status_code=201,
    response_model=CorrectionOut,
    responses={
        404: {"description": "A case named in the correction is not one this key may see."},
        409: {"description": "The same correction is already in force."},
    },
)
def post_correction(
    given: CorrectionInput,
    request: Request,
    session: DatabaseSession,
    request_id: RequestId,
    caller: Caller = require_role(Role.analyst),
) -> CorrectionOut:
    case_id = other_case_id = None
    if given.kind == IDENTIFIER_NOT_LINKING:
        if caller.forces is not None:
            raise ProblemError(403, "Only a key that sees every force may stop an identifier linking cases.")
    else:
        case_id = visible_case(session, given.case, caller).id
        other_case_id = visible_case(session, given.other_case, caller).id
        if case_id == other_case_id:
            raise validation_problem([{"field": "other_case", "message": "A case can't be linked to itself."}])
    if find_active(session, kind=given.kind, case_id=case_id, other_case_id=other_case_id, identifier=given.identifier):
        message = (
            "This case is already marked as a duplicate: revoke that first."
            if given.kind == DUPLICATE
            else "The same correction is already in force."
        )
        raise ProblemError(409, message)
    correction = add_correction(
        session,
        kind=given.kind,
        case_id=case_id,
        other_case_id=other_case_id,
        identifier=given.identifier,
        reason=given.reason,
        actor=caller.actor,
        now=utc_now(),
    )
    _links_changed(request, session, correction)
    record_audit_event(
        session,
        actor=caller.actor,
        action="links.correct",
        case_id=case_id,
        reason=given.reason,
        request_id=request_id,
        detail={"correction": correction.id, "kind": given.kind, "other_case": other_case_id},
    )
    session.commit()
    return correction_out(correction, case_references(session, {case_id, other_case_id}, caller))


@router.post(
    "/v1/link-corrections/{correction_id}/revoke",
    summary="Undo a correction of the links",
    description="The correction stays on record with who revoked it, when and why; links and clusters are as "
    "if it had not been made. Audited.",
    response_model=CorrectionOut,
    responses={409: {"description": "Already revoked."}},
)
def revoke(
    correction_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    given: Revocation,
    request: Request,
    session: DatabaseSession,
    request_id: RequestId,
    caller: Caller = require_role(Role.analyst),
) -> CorrectionOut:
    correction = session.get(LinkCorrection, correction_id)
    references = case_references(session, {correction.case_id, correction.other_case_id}, caller) if correction else {}
    if correction is None or (
        correction.identifier is None and {correction.case_id, correction.other_case_id} - references.keys()
    ):
        raise ProblemError(404, "There is no such correction available to you.")
    if correction.identifier is not None and caller.forces is not None:
        raise ProblemError(403, "Only a key that sees every force may change whether an identifier links cases.")
    if correction.revoked_at is not None:
        raise ProblemError(409, "This correction has already been revoked.")
    revoke_correction(session, correction, actor=caller.actor, reason=given.reason, now=utc_now())
    _links_changed(request, session, correction)
    record_audit_event(
        session,
        actor=caller.actor,
        action="links.correction_revoked",
        case_id=correction.case_id,
        reason=given.reason,
        request_id=request_id,
        detail={"correction": correction.id, "kind": correction.kind},
    )
    session.commit()
    return correction_out(correction, references)


@router.get(
    "/v1/link-corrections",
    summary="List corrections of the links",
    description="Newest first; those about cases of forces this key may not see are left out. Audited.",
    response_model=CorrectionPage,
)
def get_corrections(
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
    active: Annotated[bool, Query(description="Only those in force.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    caller: Caller = require_role(Role.analyst),
) -> CorrectionPage:
    corrections = list_corrections(session, active_only=active, limit=limit, before_id=None)
    references = case_references(
        session, {c.case_id for c in corrections} | {c.other_case_id for c in corrections}, caller
    )
    shown = [c for c in corrections if c.identifier is not None or {c.case_id, c.other_case_id} <= references.keys()]
    record_audit_event(
        session,
        actor=caller.actor,
        action="links.corrections",
        reason=reason,
        request_id=request_id,
        detail={"returned": len(shown)},
    )
    session.commit()
    return CorrectionPage(corrections=[correction_out(c, references) for c in shown])

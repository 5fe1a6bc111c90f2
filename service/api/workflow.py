"""Working a case: status, assignment and notes, safe against two analysts acting at once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from service.api.bodies import StrictJsonRoute
from service.api.cases import CaseReference, visible_case
from service.api.deps import Caller, DatabaseSession, RequestId, Role, require_role
from service.api.problems import ProblemError, problem_responses, validation_problem
from service.api.schemas import CaseForAnalyst, case_etag, case_for_analyst
from service.domain.cases import Strict
from service.domain.workflow import CaseStatus, IllegalMove, check_move
from service.storage.audit import record_audit_event
from service.storage.identifiers import identifiers_of
from service.storage.models import utc_now
from service.storage.workflow import StaleVersion, add_note, change_status, notes_of

router = APIRouter(tags=["workflow"], route_class=StrictJsonRoute)

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=100, description="The ETag from your last read of the case."),
]


class StatusChange(Strict):
    status: CaseStatus
    assigned_to: str | None = Field(
        default=None, max_length=120, description="Needed to assign.", examples=["DC Example, Cyber Crime Unit"]
    )
    reason: str | None = Field(default=None, max_length=500, description="Kept in the audit log.")


class NoteIn(Strict):
    body: str = Field(min_length=1, max_length=10_000)


class NoteOut(BaseModel):
    id: int
    author: str
    body: str
    created_at: datetime


class NoteList(BaseModel):
    notes: list[NoteOut]


def _expected_version(if_match: str | None, current: int) -> int:
    if if_match is None:
        raise ProblemError(
            428,
            "Send If-Match with the ETag from your last read of the case, so that no one else's change is overwritten.",
            kind="if-match-required",
        )
    tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if "*" in tags:
        return current
    for tag in tags:
        if tag.startswith('"v') and tag.endswith('"') and tag[2:-1].isdigit():
            return int(tag[2:-1])
    raise ProblemError(412, "If-Match does not name a version of this case.", kind="stale-version")


def _stale() -> ProblemError:
    return ProblemError(
        412, "Someone changed this case since you read it. Read it again, then decide.", kind="stale-version"
    )


@router.post(
    "/v1/cases/{reference}/status",
    summary="Move a case on (triage, assign, close, reopen)",
    description="Needs `If-Match` with the case's ETag; a change since then answers 412, an impossible move "
    "409 naming the moves that are possible.",
    response_model=CaseForAnalyst,
    responses=problem_responses(409, 412, 428),
)
def post_status(
    reference: CaseReference,
    change: StatusChange,
    response: Response,
    session: DatabaseSession,
    request_id: RequestId,
    if_match: IfMatch = None,
    caller: Caller = require_role(Role.analyst),
) -> CaseForAnalyst:
    case = visible_case(session, reference, caller)
    expected = _expected_version(if_match, case.version)
    if expected != case.version:  # a failed precondition answers before anything else is judged
        raise _stale()
    try:
        check_move(CaseStatus(case.status), change.status, change.assigned_to)
    except IllegalMove as refusal:
        raise ProblemError(
            409, str(refusal), kind="illegal-status-change", errors=[{"field": "status", "message": str(refusal)}]
        ) from None
    except ValueError as missing:
        raise validation_problem([{"field": "assigned_to", "message": str(missing)}]) from None
    previous = case.status
    assigned_to = change.assigned_to if change.status is CaseStatus.assigned else None
    try:
        change_status(
            session, case, status=change.status.value, assigned_to=assigned_to, expected_version=expected, now=utc_now()
        )
    except StaleVersion:
        session.rollback()
        raise _stale() from None
    record_audit_event(
        session,
        actor=caller.actor,
        action="case.status",
        case_id=case.id,
        reason=change.reason,
        request_id=request_id,
        detail={"from": previous, "to": change.status.value, "assigned_to": assigned_to},
    )
    session.commit()
    response.headers["ETag"] = case_etag(case.version)
    return case_for_analyst(case, identifiers_of(session, case.id))


@router.post(
    "/v1/cases/{reference}/notes",
    summary="Add a note to a case",
    description="Notes are never edited or removed; add another to correct one.",
    status_code=201,
    response_model=NoteOut,
)
def post_note(
    reference: CaseReference,
    note: NoteIn,
    session: DatabaseSession,
    request_id: RequestId,
    caller: Caller = require_role(Role.analyst),
) -> NoteOut:
    case = visible_case(session, reference, caller)
    stored = add_note(session, case, author=caller.actor, body=note.body, now=utc_now())
    record_audit_event(
        session,
        actor=caller.actor,
        action="case.note",
        case_id=case.id,
        request_id=request_id,
        detail={"note": stored.id},
    )
    session.commit()
    return NoteOut(id=stored.id, author=stored.author, body=stored.body, created_at=stored.created_at)


@router.get(
    "/v1/cases/{reference}/notes",
    summary="Read a case's notes",
    response_model=NoteList,
)
def get_notes(
    reference: CaseReference,
    session: DatabaseSession,
    request_id: RequestId,
    caller: Caller = require_role(Role.analyst),
) -> NoteList:
    case = visible_case(session, reference, caller)
    notes = notes_of(session, case.id)
    record_audit_event(session, actor=caller.actor, action="case.notes_read", case_id=case.id, request_id=request_id)
    session.commit()
    return NoteList(notes=[NoteOut(id=n.id, author=n.author, body=n.body, created_at=n.created_at) for n in notes])

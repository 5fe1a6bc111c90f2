"""Adding offender identifiers to a case, and finding the cases that share one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from service.api.bodies import JSON, media_type_of, parse_json, read_bounded, unsupported_media_type
from service.api.cases import CaseReference, contributor_case
from service.api.deps import AccessReason, Caller, CurrentCaller, DatabaseSession, RequestId, Role, require_role
from service.api.idempotency import IdempotencyKey, respond_once
from service.api.problems import field_errors, problem_responses, validation_problem
from service.api.query import refuse_unknown_query_parameters
from service.api.ratelimit import limit_additions
from service.api.schemas import Priority, Status, StoredIdentifier
from service.clustering import refresh_cluster
from service.domain.cases import MAX_LIST, IdentifierInput
from service.domain.identifiers import (
    MAX_IDENTIFIER_LENGTH,
    IdentifierError,
    IdentifierType,
    interpret_search,
    normalize_identifier,
)
from service.domain.urgency import UrgencyPolicy
from service.linking import add_identifiers
from service.storage.audit import record_audit_event
from service.storage.idempotency import request_fingerprint
from service.storage.identifier_search import cases_holding
from service.storage.models import utc_now

router = APIRouter(tags=["identifiers"])

_IDENTIFIER_LIST = TypeAdapter(list[IdentifierInput])


class IdentifiersAdded(BaseModel):
    """Only what was sent: whether an identifier is known from other cases, and the priority that
    would follow, are for analysts (an offender could otherwise test their own MTCN)."""

    identifiers: list[StoredIdentifier]


class SharingCase(BaseModel):
    reference: str
    priority: Priority
    status: Status
    police_force: str | None
    created_at: datetime
    identifier: StoredIdentifier


async def identifier_inputs(request: Request) -> list[IdentifierInput]:
    if media_type_of(request) != JSON:
        raise unsupported_media_type((JSON,), given=media_type_of(request))
    data: Any = parse_json(await read_bounded(request, request.app.state.settings.max_body_bytes))
    is_list = isinstance(data, list)
    if is_list and len(data) > MAX_LIST:
        raise validation_problem([{"field": "body", "message": f"Send at most {MAX_LIST} identifiers at once."}])
    if is_list and not data:
        raise validation_problem([{"field": "body", "message": "The list is empty: send at least one identifier."}])
    try:
        if is_list:
            return _IDENTIFIER_LIST.validate_python(data)
        return [IdentifierInput.model_validate(data)]
    except ValidationError as error:
        raise validation_problem(field_errors(list(error.errors()), drop_prefix=())) from None


@router.post(
    "/v1/cases/{reference}/identifiers",
    summary="Add identifiers to a case",
    description=(
        "One identifier object or a list of them, by the case's reporter token or the secret submitter key "
        "that submitted the case (never a publishable key). An identifier the case already has is returned, "
        "not duplicated. The answer holds the identifiers only: whether any is known from other cases is "
        "for analysts."
    ),
    status_code=201,
    response_model=IdentifiersAdded,
    responses=problem_responses(429),
    dependencies=[Depends(limit_additions)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/IdentifierInput"},
                            {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/IdentifierInput"},
                                "minItems": 1,
                                "maxItems": MAX_LIST,
                            },
                        ]
                    },
                    "examples": {
                        "one": {
                            "value": {
                                "type": "profile_url",
                                "value": "https://www.instagram.com/some.profile/?igsh=abc",
                            }
                        },
                        "several": {
                            "value": [
                                {"type": "mtcn", "value": "123 456 7890"},
                                {"type": "username", "value": "@some_name", "platform": "snapchat"},
                            ]
                        },
                    },
                }
            },
        }
    },
)
def post_identifiers(
    reference: CaseReference,
    request: Request,
    session: DatabaseSession,
    caller: CurrentCaller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey = None,
    inputs: list[IdentifierInput] = Depends(identifier_inputs),
) -> JSONResponse:
    case = contributor_case(session, reference, caller)
    settings = request.app.state.settings
    policy = UrgencyPolicy(recall_window=settings.recall_window, deadline_window=settings.deadline_window)

    def work():
        now = utc_now()
        stored = add_identifiers(session, case, inputs, now=now, policy=policy)
        refresh_cluster(session, case.id, settings, alerts=request.app.state.alerts is not None, now=now)
        record_audit_event(
            session,
            actor=caller.actor,
            action="identifiers.add",
            case_id=case.id,
            request_id=request_id,
            detail={"count": len(stored)},
        )
        answer = IdentifiersAdded(identifiers=[StoredIdentifier.of(row) for row in stored])
        return 201, answer, {}

    payload = [item.model_dump(mode="json") for item in inputs]
    fingerprint = request_fingerprint("POST", f"/v1/cases/{case.reference}/identifiers", payload)
    return respond_once(session, caller, idempotency_key, fingerprint, work)


class SearchedIdentifier(BaseModel):
    type: str | None = Field(description="The type searched for; null where any type's normalized form matched.")
    normalized: str


class IdentifierMatches(BaseModel):
    normalized: str = Field(description="The normalized form searched for (the first, where there are several).")
    searched: list[SearchedIdentifier] = Field(
        description="Every normalized form searched for: what the raw text is as each type it is valid for."
    )
    handle: str | None = Field(
        description="With `q`: the account handle also searched for in profile links, usernames and Skype IDs."
    )
    cases: list[SharingCase]


@router.get(
    "/v1/identifiers",
    dependencies=[Depends(refuse_unknown_query_parameters)],
    summary="Find the cases that hold an identifier",
    description=(
        "Give one of: `normalized` (the exact canonical form); `type` and `value` (as a victim or analyst types "
        "it, e.g. `type=mtcn&value=123-456-7890`, with `platform` for a username), normalised exactly as intake "
        "does; or `q`, raw text tried as every type it is a valid value of, and as an account handle. A key "
        "limited to some forces sees only their cases. Every search is audited."
    ),
    response_model=IdentifierMatches,
)
def find_by_identifier(
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
    normalized: Annotated[
        str | None,
        Query(min_length=1, max_length=2048, description="A normalized identifier.", examples=["1234567890"]),
    ] = None,
    type: Annotated[IdentifierType | None, Query(description="The type of `value`.")] = None,
    value: Annotated[
        str | None, Query(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, examples=["123-456-7890"])
    ] = None,
    platform: Annotated[str | None, Query(max_length=60, description="For a username: where it is.")] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, description="Raw text: any identifier, as typed."),
    ] = None,
    caller: Caller = require_role(Role.analyst),
) -> IdentifierMatches:
    modes = [name for name, given in (("normalized", normalized), ("q", q), ("value", value)) if given is not None]
    if len(modes) != 1 or (type is None) != (value is None) or (platform is not None and value is None):
        raise validation_problem(
            [{"field": "query", "message": "Give exactly one of: normalized; type and value; or q."}]
        )
    handle = None
    typed: list[tuple[str, str]] = []
    any_type: list[str] = []
    if normalized is not None:
        any_type = [normalized]
    elif value is not None:
        try:
            found = normalize_identifier(type, value, platform)
        except IdentifierError as error:
            raise validation_problem([{"field": "value", "message": str(error)}]) from None
        typed = [(found.type.value, found.normalized)]
    else:
        interpreted = interpret_search(q)
        typed = [(item.type.value, item.normalized) for item in interpreted.identifiers]
        handle = interpreted.handle
    matches = [
        (case, row)
        for case, row in cases_holding(session, typed, any_type=any_type, handle=handle)
        if caller.may_see_force(case.police_force)
    ]
    searched = [SearchedIdentifier(type=kind, normalized=form) for kind, form in typed] + [
        SearchedIdentifier(type=None, normalized=form) for form in any_type
    ]
    record_audit_event(
        session,
        actor=caller.actor,
        action="identifiers.search",
        reason=reason,
        request_id=request_id,
        detail={
            "searched": [item.model_dump() for item in searched],
            "handle": handle,
            "raw": q if q is not None else value,
            "cases": len(matches),
            "references": sorted({case.reference for case, _ in matches}),  # which cases the lookup revealed
        },
    )
    session.commit()
    return IdentifierMatches(
        normalized=searched[0].normalized if searched else (handle or q or ""),
        searched=searched,
        handle=handle,
        cases=[
            SharingCase(
                reference=case.reference,
                priority=case.priority,
                status=case.status,
                police_force=case.police_force,
                created_at=case.created_at,
                identifier=StoredIdentifier.of(row),
            )
            for case, row in matches
        ],
    )

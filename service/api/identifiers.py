"""Adding offender identifiers to a case, and finding the cases that share one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError

from service.api.bodies import JSON, media_type_of, parse_json, read_bounded, unsupported_media_type
from service.api.cases import CaseReference, contributor_case
from service.api.deps import AccessReason, Caller, CurrentCaller, DatabaseSession, RequestId, Role, require_role
from service.api.idempotency import IdempotencyKey, respond_once
from service.api.problems import field_errors, validation_problem
from service.api.schemas import Priority, Status, StoredIdentifier
from service.domain.cases import MAX_LIST, IdentifierInput
from service.domain.urgency import UrgencyPolicy
from service.storage.audit import record_access
from service.storage.cases import add_identifiers, cases_sharing
from service.storage.idempotency import request_fingerprint
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


class IdentifierMatches(BaseModel):
    normalized: str
    cases: list[SharingCase]


async def identifier_inputs(request: Request) -> list[IdentifierInput]:
    if media_type_of(request) != JSON:
        raise unsupported_media_type((JSON,))
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
        "One identifier object or a list of them, by the case's reporter token or the key that "
        "submitted the case. An identifier the case already has is returned, not duplicated."
    ),
    status_code=201,
    response_model=IdentifiersAdded,
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
        stored = add_identifiers(session, case, inputs, now=utc_now(), policy=policy)
        record_access(
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


@router.get(
    "/v1/identifiers",
    summary="Find the cases that share an identifier",
    response_model=IdentifierMatches,
)
def find_by_identifier(
    normalized: Annotated[
        str, Query(min_length=1, max_length=2048, description="A normalized identifier.", examples=["1234567890"])
    ],
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
    caller: Caller = require_role(Role.analyst),
) -> IdentifierMatches:
    matches = [
        (case, row) for case, row in cases_sharing(session, normalized) if caller.may_see_force(case.police_force)
    ]
    record_access(
        session,
        actor=caller.actor,
        action="identifiers.search",
        reason=reason,
        request_id=request_id,
        detail={"normalized": normalized, "cases": len(matches)},
    )
    session.commit()
    return IdentifierMatches(
        normalized=normalized,
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

"""Creating a case and reading it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from service.api.bodies import (
    FORM_MEDIA_TYPES,
    JSON,
    MULTIPART,
    URLENCODED,
    media_type_of,
    parse_json,
    parse_urlencoded,
    read_bounded,
    refuse_json_sent_as_form,
    unsupported_media_type,
)
from service.api.deps import (
    AccessReason,
    Caller,
    CurrentCaller,
    DatabaseSession,
    RequestId,
    Role,
    caller_in_role,
    get_caller,
    key_revoked,
)
from service.api.form_fields import case_from_form_fields
from service.api.idempotency import (
    check_visitor_key,
    idempotency_key_of,
    idempotency_key_parameter,
    idempotency_key_reused,
    replay_response,
)
from service.api.problems import ProblemError, field_errors, problem_responses, validation_problem
from service.api.ratelimit import limit_case_creation
from service.api.schemas import (
    CaseCreated,
    CaseForAnalyst,
    CaseForReporter,
    case_etag,
    case_for_analyst,
    case_for_reporter,
)
from service.api.uploads import MultipartWithFiles, receive_multipart
from service.domain.cases import CaseSubmission, SubmissionRules, parse_submission
from service.domain.reference import canonical_reference
from service.reporting import Answer, ReportedCase, Reporter, Reporting
from service.settings import Settings
from service.storage.audit import record_audit_event
from service.storage.cases import find_case
from service.storage.evidence import ReceivedFile
from service.storage.idempotency import IdempotencyKeyReused, IdempotencyRecordUnreadable, request_fingerprint
from service.storage.identifiers import identifiers_of
from service.storage.intake import KeyNoLongerLive
from service.storage.models import Case, utc_now

router = APIRouter(tags=["cases"])
# POST /v1/cases alone, so the app can match it before scanning every other route (service.app).
reporting_router = APIRouter(tags=["cases"])

CaseReference = Annotated[
    str,
    Path(max_length=40, description="The case reference, with or without dashes.", examples=["7KQM-X4TR-9PZC"]),
]


@dataclass(frozen=True)
class ReportBody:
    """A report as it arrived: the case submission, and any evidence files already streamed to storage."""

    submission: CaseSubmission
    evidence: MultipartWithFiles | None = None

    @property
    def files(self) -> list[ReceivedFile]:
        return self.evidence.files if self.evidence else []

    async def discard_evidence(self) -> None:
        """No case came of it, so no objects either."""
        if self.evidence and self.evidence.incoming:
            await run_in_threadpool(self.evidence.discard)


async def report_body(request: Request, *, anonymous: bool) -> ReportBody:
    """The report in the body, whichever of JSON, form or multipart form it came as; files in a
    multipart form (`evidence`) are streamed to the evidence store as they arrive, within what this
    caller may send (`anonymous`, a publishable key anyone can hold: less)."""
    settings: Settings = request.app.state.settings
    media_type = media_type_of(request)
    evidence = None
    if media_type == JSON:
        data = parse_json(await read_bounded(request, settings.max_body_bytes))
    elif media_type == URLENCODED:
        raw = await read_bounded(request, settings.max_body_bytes)
        refuse_json_sent_as_form(raw)
        data = case_from_form_fields(parse_urlencoded(raw, settings.max_form_fields))
    elif media_type == MULTIPART:
        allowance = request.app.state.evidence_intake.for_new_case(anonymous=anonymous)
        evidence = await receive_multipart(request, file_field="evidence", allowance=allowance)
        data = case_from_form_fields(evidence.fields)
    else:
        raise unsupported_media_type(FORM_MEDIA_TYPES, given=media_type)
    try:
        if not isinstance(data, dict):
            raise validation_problem([{"field": "body", "message": "The body should be a JSON object."}])
        try:
            return ReportBody(parse_submission(data, submission_rules(request)), evidence)
        except ValidationError as error:
            raise validation_problem(field_errors(list(error.errors()), drop_prefix=())) from None
    except BaseException:
        if evidence:
            await run_in_threadpool(evidence.discard)
        raise


async def case_reporter(request: Request) -> Caller:
    """Who is reporting, counted against the reporting limits, then checked for the submitter role:
    in one dependency, as FastAPI's solving of each one costs more than its work on the hottest route."""
    caller = await get_caller(request)
    limit_case_creation(request, caller)
    return caller_in_role(caller, (Role.submitter,))


def submission_rules(request: Request) -> SubmissionRules:
    """What a new report is checked against: this deployment's police forces, and today (UTC)."""
    return SubmissionRules(police_forces=request.app.state.content.police_forces, today=utc_now().date())


def case_created(reported: ReportedCase) -> dict:
    """The 201 answer (CaseCreated, as its JSON), built as JSON directly: the same as validating a
    CaseCreated and dumping it, without doing either on the hottest route."""
    return {
        "reference": reported.reference,
        "reporter_token": reported.reporter_token,
        "status": reported.status,
        "priority": reported.priority,
        "flags": [{"code": flag["code"], "reason": flag["reason"]} for flag in reported.flags],
        "next_steps": list(reported.next_steps),
        "identifiers": [
            {
                "type": identifier["type"],
                "value": identifier["value"],
                "normalized": identifier["normalized"],
                "platform": identifier["platform"],
                "handle": identifier["handle"],
                "created_at": json_moment(identifier["created_at"]),
            }
            for identifier in reported.identifiers
        ],
        "evidence": [
            {
                "id": row["id"],
                "filename": row["filename"],
                "content_type": row["content_type"],
                "size": row["size"],
                "sha256": row["sha256"],
                "received_at": json_moment(row["received_at"]),
            }
            for row in reported.evidence
        ],
        "created_at": json_moment(reported.created_at),
    }


class OrjsonResponse(JSONResponse):
    """JSONResponse's bytes (compact, UTF-8), written by orjson: several times faster than json.dumps."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def json_moment(moment: datetime) -> str:
    """A time as pydantic writes it in JSON (what the response model would have given)."""
    return to_jsonable_python(moment)


def _api_answer(reported: ReportedCase) -> tuple[dict, dict[str, str]]:
    return case_created(reported), {"Location": f"/v1/cases/{reported.reference}"}


async def report(request: Request, body: ReportBody, reporter: Reporter, **idempotency) -> Answer:
    """The report kept as a case, by the one use case every entry point calls; evidence files are
    removed again if no case came of them."""
    reporting: Reporting = request.app.state.reporting
    try:
        answer = await reporting.report_case(body.submission, body.files, reporter, shape=_api_answer, **idempotency)
    except BaseException:
        await body.discard_evidence()
        raise
    if answer.replayed:
        await body.discard_evidence()  # the first request's files are the case's; these are copies
    return answer


@reporting_router.post(
    "/v1/cases",
    summary="Report a case",
    description=(
        "Creates a case from JSON, a plain HTML form (`application/x-www-form-urlencoded`) or a "
        "multipart form. Forms use the JSON names flattened with dots (`reporter.relationship`), "
        "repeat a field for a list (`platforms`), and give identifiers as repeated fields named "
        "after their type (`mtcn`, `skype_id`, `profile_url`, ...). The reporter token in the answer "
        "is shown once. Files sent with a publishable key, which anyone can hold, have a smaller allowance "
        "(fewer files, smaller files, less in all) than with a secret key; past it, 413 or 422 naming the limit."
    ),
    status_code=201,
    response_model=CaseCreated,
    responses={
        201: {"headers": {"Location": {"schema": {"type": "string"}, "description": "The new case."}}},
        **problem_responses(429),
    },
    openapi_extra={
        "parameters": [idempotency_key_parameter()],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {"$ref": "#/components/schemas/CaseSubmission"},
                    "examples": {
                        "minimal": {
                            "summary": "The least a report needs",
                            "value": {
                                "reporter": {"relationship": "self"},
                                "account": "Someone I met online recorded our video call and now wants money.",
                            },
                        },
                        "full": {
                            "summary": "A report with payment and identifiers",
                            "value": {
                                "reporter": {
                                    "relationship": "parent_or_carer",
                                    "email": "carer@example.org",
                                    "preferred_contact": "email",
                                },
                                "victim": {"age_band": "13_15"},
                                "police_force": "north-yorkshire",
                                "platforms": ["instagram", "skype"],
                                "account": "My son was asked to go on a video call and is now being threatened.",
                                "threats": "To send the video to his school friends.",
                                "deadline_at": "2026-11-26T18:00:00Z",
                                "payments": [
                                    {
                                        "amount": "100.00",
                                        "currency": "GBP",
                                        "method": "western_union",
                                        "collected": "unknown",
                                        "reference": "1234567890",
                                    }
                                ],
                                "identifiers": [
                                    {"type": "mtcn", "value": "123-456-7890"},
                                    {"type": "skype_id", "value": "live:.cid.1a2b3c4d5e6f7a8b"},
                                ],
                            },
                        },
                    },
                },
                URLENCODED: {"schema": {"$ref": "#/components/schemas/CaseForm"}},
                MULTIPART: {"schema": {"$ref": "#/components/schemas/CaseFormWithFiles"}},
            },
        },
    },
)
async def post_case(request: Request) -> JSONResponse:
    # The caller and the Idempotency-Key are read here, in the order FastAPI would solve them as declared
    # parameters (documented in openapi_extra): its solving cost more than their work on this route.
    caller = await case_reporter(request)
    idempotency_key = idempotency_key_of(request)
    check_visitor_key(caller, idempotency_key)
    body = await report_body(request, anonymous=caller.publishable)
    submission = body.submission
    fingerprint = None
    if idempotency_key is not None:  # what a retry with the key must repeat
        payload = [submission.model_dump(mode="json"), [[f.filename, f.sha256, f.size] for f in body.files]]
        fingerprint = request_fingerprint("POST", "/v1/cases", payload if body.files else payload[0])
    reporter = Reporter(
        actor=caller.actor, key_id=caller.key_id, request_id=request.state.request_id, secret=caller.token
    )
    try:
        answer = await report(request, body, reporter, idempotency_key=idempotency_key, fingerprint=fingerprint)
    except KeyNoLongerLive:
        raise key_revoked() from None
    except (IdempotencyKeyReused, IdempotencyRecordUnreadable):
        raise idempotency_key_reused() from None
    if answer.replayed is None:
        return OrjsonResponse(answer.body, status_code=answer.status, headers=answer.headers)
    return replay_response(answer.status, {"body": answer.body, "headers": answer.headers}, answer.replayed)


@router.get(
    "/v1/cases/{reference}",
    summary="Read a case",
    description=(
        "An analyst sees everything; the case's own reporter token sees its status and what was "
        "submitted. Anyone else gets 404, whether or not the case exists. Every read is audited; "
        "say why in `X-Access-Reason`."
    ),
    response_model=CaseForAnalyst | CaseForReporter,
)
def get_case(
    reference: CaseReference,
    caller: CurrentCaller,
    response: Response,
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
) -> CaseForAnalyst | CaseForReporter:
    case = visible_case(session, reference, caller)
    identifiers = identifiers_of(session, case.id)
    record_audit_event(
        session, actor=caller.actor, action="case.read", case_id=case.id, reason=reason, request_id=request_id
    )
    session.commit()
    if caller.role is Role.analyst:
        response.headers["ETag"] = case_etag(case.version)
        return case_for_analyst(case, identifiers)
    return case_for_reporter(case, identifiers)


def visible_case(session, reference: str, caller: Caller) -> Case:
    """The case if this caller may see it; otherwise the same 404 whether it exists or not."""
    canonical = canonical_reference(reference)
    case = find_case(session, canonical) if canonical else None
    is_analyst_in_scope = caller.role is Role.analyst and caller.may_see_force(case.police_force) if case else False
    if case is None or not (is_analyst_in_scope or caller.reporter_case_id == case.id):
        raise case_not_found()
    return case


def case_not_found() -> ProblemError:
    return ProblemError(
        404, "No case with this reference is available to you. Check the reference for typing mistakes."
    )


def contributor_case(session, reference: str, caller: Caller) -> Case:
    """The case, for its reporter or the secret key that submitted it, who add to it. An analyst who
    may see the case is told it is not theirs to add to; anyone else (an analyst of another force
    too) learns nothing, not even that it exists."""
    canonical = canonical_reference(reference)
    case = find_case(session, canonical) if canonical else None
    if case is None or not caller.may_act_on(case):
        if case is not None and caller.role is Role.analyst and caller.may_see_force(case.police_force):
            raise ProblemError(403, "Only the reporter or the service that submitted the case can add to it.")
        raise case_not_found()
    return case

"""Evidence: uploaded through the API or straight to storage, read by analysts through audited links."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from service.api.bodies import MULTIPART, StrictJsonRoute, media_type_of, unsupported_media_type
from service.api.cases import CaseReference, case_not_found, contributor_case, visible_case
from service.api.deps import AccessReason, Caller, CurrentCaller, DatabaseSession, RequestId, Role
from service.api.idempotency import IdempotencyKey, respond_once
from service.api.problems import ProblemError, describe_pattern, problem_responses, validation_problem
from service.api.ratelimit import limit_additions
from service.api.schemas import EvidenceSummary
from service.api.signing import sign, verify
from service.api.uploads import receive_multipart
from service.domain.cases import Strict
from service.domain.evidence import ALLOWED_CONTENT_TYPES, attachment_disposition
from service.evidence_intake import Contributor, EvidenceIntake, UploadNotFound
from service.storage.audit import record_audit_event
from service.storage.database import session_scope
from service.storage.evidence import EvidenceRefused, evidence_of, find_evidence
from service.storage.idempotency import request_fingerprint
from service.storage.keys import key_is_active
from service.storage.models import Case, Evidence, EvidenceUpload, utc_now
from service.storage.objects import ObjectChanged

router = APIRouter(tags=["evidence"], route_class=StrictJsonRoute)
integrity_log = logging.getLogger("service.integrity")

_HEX_ID = describe_pattern(r"^[0-9a-f]{32}$", "This id is 32 characters, each 0-9 or a-f.")
EvidenceId = Annotated[str, Path(pattern=_HEX_ID, description="The evidence id.")]


class EvidenceList(BaseModel):
    evidence: list[EvidenceSummary]


class AnalystEvidence(EvidenceSummary):
    pdq_hash: str | None = Field(
        description="PDQ perceptual hash of an image (64 hex digits), taken at intake; null if not an image."
    )
    pdq_quality: int | None = Field(description="PDQ's quality, 0-100: below the setting (50) it never matches.")
    video_frames: int | None = Field(
        description="Distinct frames of a video hashed at intake (about one a second) to match it against images and "
        "other videos; null if not a video, or where video matching is off or the video could not be decoded."
    )
    video_hashed_in_part: bool | None = Field(
        description="True if the time limit stopped the hashing before the video ended: later frames are not matched."
    )

    @classmethod
    def of(cls, row: Evidence) -> AnalystEvidence:
        return cls(
            **EvidenceSummary.of(row).model_dump(),
            pdq_hash=row.pdq_hash,
            pdq_quality=row.pdq_quality,
            video_frames=row.video_frames,
            video_hashed_in_part=row.video_hashed_in_part,
        )


class AnalystEvidenceList(BaseModel):
    evidence: list[AnalystEvidence]


class ContentLink(BaseModel):
    url: str = Field(
        description="A link to this service that works without other credentials until it expires, and only while "
        "the key that asked for it is not revoked; every use is audited."
    )
    expires_at: datetime


class UploadRequest(Strict):
    filename: str = Field(min_length=1, max_length=255, examples=["screen-recording.mp4"])
    size: int = Field(gt=0, description="Exact size in bytes.", examples=[734003200])
    sha256: str = Field(
        pattern=describe_pattern(r"^[0-9a-fA-F]{64}$", "Give the SHA-256 as 64 hexadecimal characters (0-9, a-f)."),
        description="SHA-256 of the file, in hex.",
    )


class UploadTicket(BaseModel):
    id: str
    method: str = Field(examples=["PUT"])
    url: str
    headers: dict[str, str] = Field(description="Send these headers with the upload.")
    expires_at: datetime


NON_EMPTY_FILE = {"type": "string", "format": "binary", "minLength": 1}
EVIDENCE_CONTENT_RESPONSE = {
    "description": "The file's bytes, exactly as received, with the type judged from them at intake.",
    "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in sorted(ALLOWED_CONTENT_TYPES)},
}


# --- who may do what ---------------------------------------------------------------------------


def analyst_evidence(
    session, reference: str, evidence_id: str, caller: Caller, reason: str | None
) -> tuple[Case, Evidence]:
    """A case's evidence for an analyst who may see the case and, for an under-18 case, its images,
    which are opened only with a reason given (X-Access-Reason) for the audit log."""
    if caller.role is not Role.analyst:
        raise case_not_found()
    case = visible_case(session, reference, caller)
    refuse_child_evidence_without_permission(case, caller)
    require_a_reason_for_child_evidence(case, reason)
    row = find_evidence(session, case.id, evidence_id)
    if row is None:
        raise ProblemError(404, "There is no such evidence on this case.")
    return case, row


def refuse_child_evidence_without_permission(case: Case, caller: Caller) -> None:
    if case.victim_was_under_18 and not caller.can_view_child_evidence:
        raise ProblemError(403, "Evidence of cases where the victim is under 18 needs a key with that permission.")


def require_a_reason_for_child_evidence(case: Case, reason: str | None) -> None:
    """A child's evidence (its files, and the list of their names, which can describe the images) is
    opened only with a reason given in X-Access-Reason, kept in the audit row."""
    if case.victim_was_under_18 and not (reason and reason.strip()):
        raise validation_problem(
            [{"field": "X-Access-Reason", "message": "Say why you are opening a child's evidence: it is audited."}]
        )


# --- upload through the API --------------------------------------------------------------------


@router.post(
    "/v1/cases/{reference}/evidence",
    summary="Upload evidence files",
    description=(
        "`multipart/form-data` with one or more `file` fields. Each file streams to the evidence store as "
        "it arrives, with its SHA-256 and size taken on the way; its type is judged from its bytes. A "
        "refused, oversized or interrupted upload leaves nothing behind. For the case's reporter token or the "
        "secret submitter key that submitted the case; never a publishable key."
    ),
    status_code=201,
    response_model=EvidenceList,
    responses=problem_responses(413, 429),
    dependencies=[Depends(limit_additions)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "array", "items": NON_EMPTY_FILE}},
                        "additionalProperties": False,
                    }
                }
            },
        }
    },
)
async def post_evidence(
    reference: CaseReference,
    request: Request,
    session: DatabaseSession,
    caller: CurrentCaller,
    request_id: RequestId,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    intake: EvidenceIntake = request.app.state.evidence_intake
    case = await run_in_threadpool(contributor_case, session, reference, caller)
    if media_type_of(request) != MULTIPART:
        raise unsupported_media_type((MULTIPART,))
    allowance = await run_in_threadpool(intake.for_case, session, case.id)
    received = await receive_multipart(request, file_field="file", allowance=allowance)
    try:
        if received.fields:
            raise validation_problem(
                [{"field": name, "message": "Only 'file' fields are accepted here."} for name, _ in received.fields]
            )
        if not received.files:
            raise validation_problem([{"field": "file", "message": "Attach at least one file."}])

        def work():
            rows = intake.add_files(session, case.id, received.files, Contributor(caller.actor, request_id))
            return 201, EvidenceList(evidence=[EvidenceSummary.of(row) for row in rows]), {}

        fingerprint = request_fingerprint(
            "POST", f"/v1/cases/{case.reference}/evidence", [[f.filename, f.sha256, f.size] for f in received.files]
        )
        response = await run_in_threadpool(respond_once, session, caller, idempotency_key, fingerprint, work)
    except BaseException:
        await run_in_threadpool(received.discard)
        raise
    if response.headers.get("idempotent-replayed") == "true":
        await run_in_threadpool(received.discard)  # the first request's copies are the evidence
    return response


# --- direct upload to storage ------------------------------------------------------------------


@router.post(
    "/v1/cases/{reference}/evidence/uploads",
    summary="Ask to upload a large file straight to storage",
    description=(
        "Declare the file's name, exact size and SHA-256; the answer says where to send the bytes and until "
        "when. Then call `.../complete`: the service reads the object back and checks size, type and hash "
        "before it becomes evidence. Each open upload counts against the case's evidence quota at its declared "
        "size until it is completed or expires; past the quota the answer is 413."
    ),
    status_code=201,
    response_model=UploadTicket,
    responses=problem_responses(413, 429),
    dependencies=[Depends(limit_additions)],
)
def post_upload_request(
    reference: CaseReference,
    declared: UploadRequest,
    request: Request,
    session: DatabaseSession,
    caller: CurrentCaller,
    request_id: RequestId,
) -> UploadTicket:
    settings = request.app.state.settings
    intake: EvidenceIntake = request.app.state.evidence_intake
    case = contributor_case(session, reference, caller)
    upload = intake.open_upload(
        session,
        case.id,
        Contributor(caller.actor, request_id),
        filename=declared.filename,
        size=declared.size,
        sha256=declared.sha256,
    )
    lifetime = settings.evidence_upload_seconds
    presigned = request.app.state.objects.presigned_put(upload.object_key, declared.size, lifetime)
    if presigned is None:  # the local store: the service itself takes the bytes
        token = sign(request.app.state.link_secret, "upload", upload.id, lifetime)
        url = str(request.url_for("put_direct_upload", upload_id=upload.id).include_query_params(token=token))
        return UploadTicket(id=upload.id, method="PUT", url=url, headers={}, expires_at=upload.expires_at)
    return UploadTicket(
        id=upload.id,
        method=presigned.method,
        url=presigned.url,
        headers=presigned.headers,
        expires_at=upload.expires_at,
    )


@router.put(
    "/v1/evidence-uploads/{upload_id}",
    summary="Receive a direct upload (local evidence store)",
    description="Where the local store points direct uploads; the signed token in the URL is the credential. "
    "Once the upload is completed or refused, a PUT still under way is refused (409).",
    status_code=204,
    responses=problem_responses(409),
)
async def put_direct_upload(
    upload_id: Annotated[str, Path(pattern=_HEX_ID)],
    token: Annotated[str, Query(max_length=300)],
    request: Request,
) -> JSONResponse:
    upload = None
    if verify(request.app.state.link_secret, "upload", token) == upload_id:
        with session_scope(request.app.state.engine) as session:
            upload = await run_in_threadpool(session.get, EvidenceUpload, upload_id)
    if upload is None:  # a forged or expired token, or an upload that is gone: the same answer
        raise ProblemError(403, "This upload link is not valid or has expired. Ask for a new one.")
    store = request.app.state.objects
    target = await run_in_threadpool(store.start_upload, upload.object_key)
    written = 0
    try:
        async for chunk in request.stream():
            written += len(chunk)
            if written > upload.declared_size:
                raise EvidenceRefused(413, "body", "More bytes were sent than were declared.")
            await run_in_threadpool(target.write, chunk)
        if not await run_in_threadpool(_upload_still_open, request.app.state.engine, upload_id):
            # Completed or refused while these bytes arrived: what was verified stays what is kept.
            raise ProblemError(409, "This upload was already completed or refused. Ask for a new one to send more.")
        await run_in_threadpool(target.complete)
    except BaseException:
        await run_in_threadpool(target.abort)
        raise
    return Response(status_code=204)  # no body at all: a 204 with one breaks the connection


def _upload_still_open(engine, upload_id: str) -> bool:
    with session_scope(engine) as session:
        return session.get(EvidenceUpload, upload_id) is not None


@router.post(
    "/v1/cases/{reference}/evidence/uploads/{upload_id}/complete",
    summary="Finish a direct upload",
    description="The service copies the upload to a place only it writes and reads that copy back; if its "
    "size, type or SHA-256 differ from what was declared, both are deleted and the answer is 422 (415 for a "
    "refused type, 413 past the case's quota). After this, nothing sent to the upload URL can change the "
    "evidence. Safe to retry: once it has succeeded, the same caller calling again gets the same 201 answer "
    "(the evidence's `id` is the upload's) with `Idempotent-Replayed: true`, and two calls at once keep one "
    "evidence file.",
    status_code=201,
    response_model=EvidenceSummary,
    responses=problem_responses(409, 413, 429),
    dependencies=[Depends(limit_additions)],
)
def complete_upload(
    reference: CaseReference,
    upload_id: Annotated[str, Path(pattern=_HEX_ID)],
    request: Request,
    session: DatabaseSession,
    caller: CurrentCaller,
    request_id: RequestId,
) -> JSONResponse:
    intake: EvidenceIntake = request.app.state.evidence_intake
    case = contributor_case(session, reference, caller)
    try:
        completed = intake.complete_upload(session, case.id, upload_id, Contributor(caller.actor, request_id))
    except UploadNotFound:
        raise ProblemError(404, "There is no upload with this id for this case.") from None
    body = EvidenceSummary.of(completed.evidence).model_dump(mode="json")
    return JSONResponse(body, status_code=201, headers={"Idempotent-Replayed": "true"} if completed.again else None)


# --- analysts ----------------------------------------------------------------------------------


@router.get(
    "/v1/cases/{reference}/evidence",
    summary="List a case's evidence",
    description="For an analyst who may see the case (and, where the victim was under 18, has the "
    "child-evidence permission and says why in `X-Access-Reason`: filenames can describe the images), "
    "or the case's reporter token.",
    response_model=AnalystEvidenceList,
)
def list_evidence(
    reference: CaseReference,
    session: DatabaseSession,
    caller: CurrentCaller,
    request_id: RequestId,
    reason: AccessReason,
) -> AnalystEvidenceList:
    case = visible_case(session, reference, caller)
    if caller.role is Role.analyst:
        refuse_child_evidence_without_permission(case, caller)  # filenames can describe the images
        require_a_reason_for_child_evidence(case, reason)
    rows = evidence_of(session, case.id)
    record_audit_event(
        session, actor=caller.actor, action="evidence.list", case_id=case.id, reason=reason, request_id=request_id
    )
    session.commit()
    return AnalystEvidenceList(evidence=[AnalystEvidence.of(row) for row in rows])


@router.get(
    "/v1/cases/{reference}/evidence/{evidence_id}/content",
    summary="Read an evidence file",
    description="Streams the bytes exactly as received, re-hashing them on the way; a mismatch with the "
    "intake SHA-256 is logged and audited loudly. Under-18 cases need a key with that permission.",
    response_class=StreamingResponse,
    responses={200: EVIDENCE_CONTENT_RESPONSE, **problem_responses(409)},
)
def get_evidence_content(
    reference: CaseReference,
    evidence_id: EvidenceId,
    request: Request,
    session: DatabaseSession,
    caller: CurrentCaller,
    request_id: RequestId,
    reason: AccessReason,
) -> StreamingResponse:
    case, row = analyst_evidence(session, reference, evidence_id, caller, reason)
    record_audit_event(
        session,
        actor=caller.actor,
        action="evidence.read",
        case_id=case.id,
        reason=reason,
        request_id=request_id,
        detail={"evidence": row.id},
    )
    session.commit()
    return _stream(request, row, case.id, caller.actor)


@router.post(
    "/v1/cases/{reference}/evidence/{evidence_id}/link",
    summary="Get a short-lived link to an evidence file",
    status_code=201,
    response_model=ContentLink,
)
def post_evidence_link(
    reference: CaseReference,
    evidence_id: EvidenceId,
    request: Request,
    session: DatabaseSession,
    caller: CurrentCaller,
    request_id: RequestId,
    reason: AccessReason,
) -> ContentLink:
    settings = request.app.state.settings
    case, row = analyst_evidence(session, reference, evidence_id, caller, reason)
    lifetime = settings.evidence_link_seconds
    # Always through this service, whatever the store: a store's own presigned URL could be neither
    # audited when used nor stopped when the key that asked for it is revoked.
    token = sign(request.app.state.link_secret, "content", f"{row.id}.{caller.key_id}", lifetime)
    url = str(request.url_for("get_linked_content", token=token))
    record_audit_event(
        session,
        actor=caller.actor,
        action="evidence.link",
        case_id=case.id,
        reason=reason,
        request_id=request_id,
        detail={"evidence": row.id, "seconds": lifetime},
    )
    session.commit()
    return ContentLink(url=url, expires_at=utc_now() + timedelta(seconds=lifetime))


@router.get(
    "/v1/evidence-links/{token}",
    summary="Follow a content link",
    description="The link is its own credential until it expires, and only while the key that asked for it is "
    "not revoked; every use is audited as that key's.",
    response_class=StreamingResponse,
    responses={200: EVIDENCE_CONTENT_RESPONSE, **problem_responses(409)},
)
def get_linked_content(
    token: Annotated[str, Path(max_length=300)], request: Request, session: DatabaseSession, request_id: RequestId
) -> StreamingResponse:
    subject = verify(request.app.state.link_secret, "content", token)
    row = session.get(Evidence, subject.split(".")[0]) if subject else None
    if row is None:
        raise ProblemError(403, "This link is not valid or has expired.")
    issuer = subject.split(".", 1)[1]
    if not key_is_active(session, issuer):
        raise ProblemError(403, "The key this link was made with has been revoked: the link no longer works.")
    actor = f"link:{issuer}"
    record_audit_event(
        session,
        actor=actor,
        action="evidence.read",
        case_id=row.case_id,
        request_id=request_id,
        detail={"evidence": row.id},
    )
    session.commit()
    return _stream(request, row, row.case_id, actor)


def _stream(request: Request, row: Evidence, case_id: int, actor: str) -> StreamingResponse:
    """The evidence's bytes, opened as the version verified at intake before anything is sent: a
    replaced object is refused, never served under the verified type and hash."""
    store = request.app.state.objects
    engine = request.app.state.engine

    def integrity_failure(why: str) -> None:
        # Loud, and kept: an examiner must be able to see that this copy no longer matches.
        integrity_log.error('{"event": "evidence_integrity_failure", "evidence_id": "%s", "why": "%s"}', row.id, why)
        with session_scope(engine) as audit_session:
            record_audit_event(
                audit_session,
                actor=actor,
                action="evidence.integrity_failure",
                case_id=case_id,
                detail={"evidence": row.id, "why": why},
            )
            audit_session.commit()

    try:
        opened = store.open(row.object_key, row.object_etag)
    except ObjectChanged:
        integrity_failure("replaced since verification")
        raise ProblemError(
            409,
            "The stored copy of this evidence is not the one verified at intake, so it is not served. "
            "This has been recorded; the evidence store needs examining.",
            kind="evidence-integrity",
        ) from None

    def chunks() -> Iterator[bytes]:
        hasher = hashlib.sha256()
        for chunk in opened.chunks:
            hasher.update(chunk)
            yield chunk
        if hasher.hexdigest() != row.sha256:
            integrity_failure("hash differs")

    disposition = attachment_disposition(row.filename)
    headers = {
        "Content-Disposition": disposition,
        "Content-Length": str(row.size),
        "X-Evidence-SHA256": row.sha256,
        "Cache-Control": "no-store",
    }
    return StreamingResponse(chunks(), media_type=row.content_type, headers=headers)

"""Analysts searching for an image across cases by its perceptual hash, without anyone viewing it."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import select

from service.api.bodies import (
    JSON,
    MULTIPART,
    FilePart,
    FileSink,
    media_type_of,
    parse_json,
    parse_multipart,
    read_bounded,
    too_large,
    unsupported_media_type,
)
from service.api.deps import AccessReason, Caller, DatabaseSession, RequestId, Role, require_role
from service.api.problems import field_errors, validation_problem
from service.api.schemas import Priority, Status
from service.domain.perceptual import HEX_PATTERN, ImageMatchPolicy, PdqHash
from service.storage.audit import record_audit_event
from service.storage.image_hashes import ImageFingerprint, find_similar, fingerprint_image
from service.storage.models import Case

router = APIRouter(tags=["images"])

_WHOLE_NUMBER = re.compile(r"^[0-9]{1,3}$")


class MatchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pdq_hash: Annotated[str, Field(pattern=HEX_PATTERN, description="A PDQ hash: 64 hexadecimal digits.")]
    # Strict: JSON's false is not a distance of 0 bits.
    max_distance: int | None = Field(
        default=None,
        ge=0,
        le=256,
        strict=True,
        description="At most the service's match distance, which is the default.",
    )


class QueryImage(BaseModel):
    pdq_hash: str
    quality: int | None = Field(description="PDQ's quality of the uploaded image (0-100); null for a given hash.")


class ImageMatchOut(BaseModel):
    reference: str
    police_force: str | None
    priority: Priority
    status: Status
    evidence_id: str
    distance: int = Field(description="Bits of 256 in which the hashes differ: 0 is the same image.")
    quality: int


class ImageMatches(BaseModel):
    query: QueryImage
    max_distance: int
    matches: list[ImageMatchOut] = Field(description="Nearest first.")
    not_shown: int = Field(description="Matches in cases of forces this key may not see.")


class _ImageInMemory(FileSink):
    """An analyst's query image: held in memory to be hashed, never stored anywhere."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    async def write(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.limit:
            raise too_large(self.limit)
        self.data += chunk

    async def finish(self) -> None:
        return None

    async def abort(self) -> None:
        self.data = bytearray()


async def _query_from_upload(request: Request) -> tuple[ImageFingerprint, int | None]:
    settings = request.app.state.settings
    images: list[_ImageInMemory] = []

    async def on_file(part: FilePart) -> FileSink:
        if part.field_name != "file" or images:
            raise validation_problem([{"field": part.field_name, "message": "Send one image, as 'file'."}])
        images.append(_ImageInMemory(settings.image_hash_max_bytes))
        return images[0]

    fields = await parse_multipart(request, max_field_bytes=1024, max_fields=2, on_file=on_file)
    wanted = None
    for name, value in fields:
        if name != "max_distance" or not _WHOLE_NUMBER.match(value):
            message = "Only 'file' and 'max_distance' (a whole number of bits) are accepted."
            raise validation_problem([{"field": name, "message": message}])
        wanted = int(value)
    if not images:
        raise validation_problem([{"field": "file", "message": "Attach the image to search for."}])
    fingerprint = await run_in_threadpool(fingerprint_image, bytes(images[0].data))
    images[0].data = bytearray()
    if fingerprint is None:
        raise validation_problem([{"field": "file", "message": "This file could not be read as an image."}])
    return fingerprint, wanted


async def _query_from_json(request: Request) -> MatchQuery:
    data = parse_json(await read_bounded(request, request.app.state.settings.max_body_bytes))
    try:
        return MatchQuery.model_validate(data)
    except ValidationError as error:
        raise validation_problem(field_errors(list(error.errors()), drop_prefix=())) from None


@router.post(
    "/v1/evidence/matches",
    summary="Find cases holding an image, by its perceptual hash",
    description=(
        'Send a PDQ hash as JSON (`{"pdq_hash": "…"}`), or the image itself as `multipart/form-data` '
        "(field `file`): it is hashed in memory and never stored. Answers the images of other cases within "
        "the match distance (Hamming, of 256 bits), nearest first, from an index that never compares every "
        "hash. Only cases of forces the key may see are listed; the rest are counted. Every search is audited."
    ),
    response_model=ImageMatches,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": MatchQuery.model_json_schema()},
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary", "minLength": 1},
                            "max_distance": {"type": "integer", "minimum": 0, "maximum": 256},
                        },
                        "additionalProperties": False,
                    }
                },
            },
        }
    },
)
async def post_image_matches(
    request: Request,
    session: DatabaseSession,
    request_id: RequestId,
    reason: AccessReason,
    caller: Caller = require_role(Role.analyst),
) -> ImageMatches:
    settings = request.app.state.settings
    media_type = media_type_of(request)
    if media_type == JSON:
        query = await _query_from_json(request)
        target, quality, wanted, source = PdqHash.from_hex(query.pdq_hash), None, query.max_distance, "hash"
    elif media_type == MULTIPART:
        fingerprint, wanted = await _query_from_upload(request)
        target, quality, source = PdqHash.from_hex(fingerprint.pdq_hash), fingerprint.quality, "image"
    else:
        raise unsupported_media_type((JSON, MULTIPART))
    limit = settings.image_match_max_distance
    if wanted is not None and wanted > limit:
        raise validation_problem(
            [{"field": "max_distance", "message": f"The largest distance this service matches at is {limit}."}]
        )
    max_distance = limit if wanted is None else wanted
    policy = ImageMatchPolicy(max_distance=max_distance, min_quality=settings.image_match_min_quality)
    return await run_in_threadpool(
        _search, session, caller, target, policy, quality, source, reason=reason, request_id=request_id
    )


def _search(
    session, caller: Caller, target: PdqHash, policy: ImageMatchPolicy, quality, source, *, reason, request_id
) -> ImageMatches:
    found = find_similar(session, target, policy)
    cases = {case.id: case for case in session.exec(select(Case).where(Case.id.in_({m.case_id for m in found})))}
    shown = [match for match in found if caller.may_see_force(cases[match.case_id].police_force)]
    record_audit_event(
        session,
        actor=caller.actor,
        action="evidence.matches",
        reason=reason,
        request_id=request_id,
        detail={
            "pdq_hash": target.hex,
            "source": source,
            "max_distance": policy.max_distance,
            "matches": len(shown),
            "not_shown": len(found) - len(shown),
        },
    )
    session.commit()
    return ImageMatches(
        query=QueryImage(pdq_hash=target.hex, quality=quality),
        max_distance=policy.max_distance,
        matches=[
            ImageMatchOut(
                reference=cases[match.case_id].reference,
                police_force=cases[match.case_id].police_force,
                priority=cases[match.case_id].priority,
                status=cases[match.case_id].status,
                evidence_id=match.evidence_id,
                distance=match.distance,
                quality=match.quality,
            )
            for match in shown
        ],
        not_shown=len(found) - len(shown),
    )

"""Public advice, helplines and the list of police forces: no authentication, cacheable, filtered by audience."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.api.problems import ProblemError, problem_responses
from service.api.ratelimit import limit_guidance
from service.domain.guidance import Audience, GuidanceSection, SupportService, for_audience
from service.domain.police_forces import PoliceForce
from service.storage.content import Content

router = APIRouter(tags=["guidance"])

AudienceFilter = Annotated[
    Audience | None,
    Query(description="Only what is written for this audience.", examples=["under-18"]),
]
_CACHED = {
    200: {"headers": {"ETag": {"schema": {"type": "string"}}, "Cache-Control": {"schema": {"type": "string"}}}},
    304: {"description": "Not modified: the copy named in If-None-Match is current."},
}


@router.get(
    "/v1/guidance",
    summary="List the advice sections",
    response_model=list[GuidanceSection],
    responses={**_CACHED, **problem_responses(429)},
)
async def list_guidance(request: Request, audience: AudienceFilter = None) -> Response:
    limit_guidance(request)
    return _cacheable(
        request,
        ("guidance", audience),
        lambda content: [section.model_dump(mode="json") for section in for_audience(content.sections, audience)],
    )


@router.get(
    "/v1/guidance/{slug}",
    summary="One advice section",
    response_model=GuidanceSection,
    responses={**_CACHED, **problem_responses(429)},
)
async def get_guidance(request: Request, slug: str) -> Response:
    limit_guidance(request)
    section = request.app.state.content.section(slug)
    if section is None:
        raise ProblemError(404, f"There is no advice section called '{slug[:80]}'.")
    return _cacheable(request, ("section", slug), lambda _: section.model_dump(mode="json"))


@router.get(
    "/v1/support-services",
    summary="List helplines and support services",
    response_model=list[SupportService],
    responses={**_CACHED, **problem_responses(429)},
)
async def list_support_services(request: Request, audience: AudienceFilter = None) -> Response:
    limit_guidance(request)
    return _cacheable(
        request,
        ("support-services", audience),
        lambda content: [
            service.model_dump(mode="json") for service in for_audience(content.support_services, audience)
        ],
    )


@router.get(
    "/v1/police-forces",
    summary="List the police forces a case can be routed to",
    description="The slugs that `police_force` accepts (and analyst keys may be limited to), with their names: "
    "the UK's territorial forces, British Transport Police, and any a deployment adds.",
    response_model=list[PoliceForce],
    responses={**_CACHED, **problem_responses(429)},
)
async def list_police_forces(request: Request) -> Response:
    limit_guidance(request)
    return _cacheable(
        request,
        ("police-forces",),
        lambda content: [force.model_dump(mode="json") for force in content.police_forces.forces],
    )


def _cacheable(request: Request, cache_key: tuple, build: Callable[[Content], object]) -> Response:
    # Content is fixed for the life of the app: each body and its ETag are made once.
    cache: dict[tuple, tuple[bytes, str]] = request.app.state.guidance_cache
    if cache_key not in cache:
        body = json.dumps(build(request.app.state.content), ensure_ascii=False, separators=(",", ":")).encode()
        cache[cache_key] = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    body, etag = cache[cache_key]
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={request.app.state.settings.guidance_max_age_seconds}",
        "Vary": "Accept-Encoding",
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")]
    return "*" in candidates or etag in candidates

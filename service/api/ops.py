"""Liveness, readiness and metrics, for whoever runs the service."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from service.api.deps import Role, require_role
from service.metrics import exposition
from service.storage.database import is_reachable

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", summary="Is the process up", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Can the service take reports now",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is unreachable."}},
)
async def readyz(request: Request) -> JSONResponse:
    database_ok = await run_in_threadpool(is_reachable, request.app.state.engine)
    objects_ok = await run_in_threadpool(request.app.state.objects.is_reachable)
    checks = {
        "database": "ok" if database_ok else "unreachable",
        "object_store": "ok" if objects_ok else "unreachable",
    }
    ready = all(value == "ok" for value in checks.values())
    body = Health(status="ready" if ready else "not ready", checks=checks).model_dump()
    return JSONResponse(body, status_code=200 if ready else 503, headers={} if ready else {"Retry-After": "5"})


@router.get(
    "/metrics",
    summary="Prometheus metrics (admin key; or INTAKE_METRICS_BIND's own listener, without one)",
    description="Report volumes and analyst activity are sensitive: only an admin key reads them here. "
    "Every worker's counts, whichever worker answers.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    dependencies=[require_role(Role.admin)],
)
def metrics(request: Request) -> Response:
    body, media_type = exposition(request.app.state.metrics.registry)
    return Response(body, media_type=media_type)

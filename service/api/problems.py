"""RFC 9457 problem details: every error the API gives, in one shape, built in one place."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from service.api.paths import documented_path
from service.storage.database import DatabaseBusy, DatabaseUnreachable
from service.storage.evidence import EvidenceRefused
from service.storage.objects import ObjectStoreUnavailable

outage_log = logging.getLogger("service.outages")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://intake.example/problems/"

_TITLES = {
    400: "Bad request",
    401: "Authentication needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Too large",
    415: "Unsupported media type",
    428: "Precondition required",
    422: "Some details need fixing",
    429: "Too many requests",
    431: "Request header fields too large",
    500: "Something went wrong on our side",
    503: "Temporarily unavailable",
}


def _default_kind(status: int) -> str:
    return _TITLES.get(status, "error").lower().replace(" ", "-")


class FieldProblem(BaseModel):
    field: str = Field(examples=["reporter.relationship"])
    message: str = Field(examples=["This is required."])


class Problem(BaseModel):
    type: str = Field(examples=[PROBLEM_TYPE_BASE + "validation"])
    title: str = Field(examples=["Some details need fixing"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["1 field needs fixing: reporter.relationship."])
    errors: list[FieldProblem] | None = None


class ProblemError(Exception):
    """Raise anywhere below a router to answer with a problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _default_kind(status)
        self.errors = errors
        self.headers = headers


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (kind or _default_kind(status)),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def validation_problem(errors: list[dict[str, str]]) -> ProblemError:
    names = ", ".join(dict.fromkeys(error["field"] for error in errors))
    count = len({error["field"] for error in errors})
    noun = "field needs" if count == 1 else "fields need"
    return ProblemError(422, f"{count} {noun} fixing: {names}.", kind="validation", errors=errors)


def field_errors(
    pydantic_errors: list[dict[str, Any]], drop_prefix: tuple[str, ...] = ("body",)
) -> list[dict[str, str]]:
    """Pydantic's errors, with dotted field paths and messages a person understands."""
    return [
        {"field": _field_path(error["loc"], drop_prefix), "message": _plain_message(error)} for error in pydantic_errors
    ]


def _field_path(loc: tuple, drop_prefix: tuple[str, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in drop_prefix:
        parts = parts[1:]
    # Pydantic adds the name of the type it tried inside unions (`str`, `function-after[...]`).
    parts = [part for part in parts if not (isinstance(part, str) and ("[" in part or part in {"str", "int", "list"}))]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _plain_message(error: dict[str, Any]) -> str:  # noqa: C901 - a flat list: one message per kind of error
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "This is required."
    if kind == "extra_forbidden":
        return "This is not a field we know. Check the spelling against the API documentation."
    if kind == "enum":
        return f"Choose one of: {ctx.get('expected', '').replace(chr(39), '')}."
    if kind == "value_error":
        return str(ctx.get("error", error.get("msg", ""))).strip()
    if kind in ("string_too_long", "too_long"):
        limit = ctx.get("max_length")
        return f"This is too long: at most {limit} {'characters' if kind == 'string_too_long' else 'items'}."
    if kind in ("string_too_short", "too_short"):
        return "This can't be empty." if ctx.get("min_length") == 1 else str(error.get("msg"))
    if kind in ("datetime_from_date_parsing", "datetime_parsing", "datetime_type"):
        return "Give a date and time like 2026-11-20T18:30:00Z."
    if kind in ("date_from_datetime_parsing", "date_parsing", "date_type", "date_from_datetime_inexact"):
        return "Give a date like 2010-04-23."
    if kind in ("bool_parsing", "bool_type"):
        return "Answer true or false."
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "Give a whole number."
    if kind in _BOUND_MESSAGES:
        return _BOUND_MESSAGES[kind].format(**ctx)
    if kind == "string_pattern_mismatch":
        return PATTERN_MESSAGES.get(ctx.get("pattern", ""), "This is not in the form expected here.")
    if kind in ("list_type", "model_type", "dict_type", "model_attributes_type"):
        return "This should be a list." if kind == "list_type" else "This should be an object with named fields."
    if kind == "string_type":
        return "This should be text."
    if kind == "json_invalid":
        return f"The body is not valid JSON: {ctx.get('error', 'check the syntax')}."
    return str(error.get("msg", "This value is not valid."))


# Each bound says what it is: "at least 1" for a page size, "at most 120" for an age.
_BOUND_MESSAGES = {
    "greater_than_equal": "This should be {ge} or more.",
    "greater_than": "This should be more than {gt}.",
    "less_than_equal": "This should be {le} or less.",
    "less_than": "This should be less than {lt}.",
}
# A pattern's message is kept beside the pattern, in the words of the thing it checks; one without
# a message here gets a general one rather than another field's example.
PATTERN_MESSAGES: dict[str, str] = {}


def describe_pattern(pattern: str, message: str) -> str:
    """Register the plain-words message for a pattern a field declares; returns the pattern."""
    PATTERN_MESSAGES[pattern] = message
    return pattern


def install_problem_handlers(app: FastAPI) -> None:  # noqa: C901 - each handler is counted in; each is short
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, error: ProblemError) -> JSONResponse:
        return problem_response(error.status, error.detail, kind=error.kind, errors=error.errors, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, error: RequestValidationError) -> JSONResponse:
        problem = validation_problem(
            field_errors(list(error.errors()), drop_prefix=("body", "query", "path", "header"))
        )
        return problem_response(422, problem.detail, kind="validation", errors=problem.errors)

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, error: ValidationError) -> JSONResponse:
        problem = validation_problem(field_errors(list(error.errors())))
        return problem_response(422, problem.detail, kind="validation", errors=problem.errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else _TITLES.get(error.status_code, "Error")
        headers = getattr(error, "headers", None)
        if error.status_code == 404 and detail == "Not Found":
            detail = "There is nothing at this address."
        if error.status_code == 405:
            detail = "This address does not accept that method."
            headers = {**(headers or {})}
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
        return problem_response(error.status_code, detail, headers=headers)

    @app.exception_handler(EvidenceRefused)
    async def _evidence_refused(_: Request, error: EvidenceRefused) -> JSONResponse:
        headers = {"Retry-After": "5"} if error.status == 503 else None
        return problem_response(
            error.status,
            error.message,
            kind="evidence-refused",
            errors=[{"field": error.field, "message": error.message}],
            headers=headers,
        )

    @app.exception_handler(ObjectStoreUnavailable)
    async def _store_down(request: Request, __: ObjectStoreUnavailable) -> JSONResponse:
        _log_outage("evidence_store_unavailable", request)
        return problem_response(
            503,
            "The evidence store is unreachable for a moment. Nothing was kept; please try again shortly.",
            kind="evidence-store-unavailable",
            headers={"Retry-After": "10"},
        )

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(_: Request, __: ClientDisconnect) -> JSONResponse:
        # Nobody is listening; the answer only keeps the logs and metrics honest (not a 500).
        return problem_response(400, "The request body was cut off before it was complete.", kind="incomplete-body")

    @app.exception_handler(DatabaseBusy)
    async def _database_busy(request: Request, _: DatabaseBusy) -> JSONResponse:
        _log_outage("database_busy", request)
        return problem_response(
            503,
            "Other changes to the same cases got in the way, more than once. Please try again; nothing was saved.",
            kind="database-busy",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(DatabaseUnreachable)
    async def _database_down(request: Request, __: Exception) -> JSONResponse:
        _log_outage("database_unavailable", request)
        return problem_response(
            503,
            "The case database is unreachable for a moment. Please try again shortly; nothing was saved.",
            kind="database-unavailable",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, __: Exception) -> JSONResponse:
        # The traceback is logged by the server without request data; the caller learns nothing.
        return problem_response(500, "Something went wrong on our side. Please try again.", kind="internal")


def _log_outage(event: str, request: Request) -> None:
    # The event and the request id only: the exception's text can carry SQL, URLs or object keys.
    request_id = getattr(request.state, "request_id", None)
    outage_log.warning(json.dumps({"event": event, "request_id": request_id}))


def allowed_methods(request: Request) -> str:
    documented = documented_path(request.app, request.url.path)
    return ", ".join(sorted(documented[1])) if documented else ""


def problem_title(status: int) -> str:
    return _TITLES.get(status, "Error")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems particular to an operation (the app adds the common ones)."""
    return {status: {"description": problem_title(status)} for status in statuses}

"""The `Idempotency-Key` header, shared by every creating POST."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlmodel import Session

from service.api.deps import Caller
from service.api.problems import ProblemError, describe_pattern
from service.storage.idempotency import IdempotencyKeyReused, IdempotencyRecordUnreadable, run_once

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=describe_pattern(r"^[\x21-\x7e]+$", "Use printable ASCII characters without spaces, like a UUID."),
        description="Any unique string (a UUID is ideal). A retry with the same key and body returns "
        "the first response instead of creating a second record. With a publishable key it must be random "
        "and at least 32 characters long, since every visitor of the website shares that key.",
        examples=["4f1e7c1a-5d7b-4a8e-9a57-1f7e0a3c2b9d"],
    ),
]
_IDEMPOTENCY_KEY = TypeAdapter(IdempotencyKey)


def idempotency_key_of(request: Request) -> str | None:
    """The header as a route declaring an `IdempotencyKey` parameter gets it, refused with the same 422:
    for the hottest route, which reads it itself (FastAPI's solving of a parameter costs more than this)."""
    given = request.headers.get("idempotency-key")
    if given is None:
        return None
    try:
        return _IDEMPOTENCY_KEY.validate_python(given)
    except ValidationError as error:
        location = ("header", "Idempotency-Key")
        problems = [{**item, "loc": (*location, *item["loc"])} for item in error.errors(include_url=False)]
        raise RequestValidationError(problems) from None


def idempotency_key_parameter() -> dict:
    """The header as OpenAPI documents a declared `IdempotencyKey` parameter, for a route reading it itself."""
    schema = {**_IDEMPOTENCY_KEY.json_schema(), "title": "Idempotency-Key"}
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": schema,
        "description": schema["description"],
    }


# Every visitor of a force website shares its publishable key, so the Idempotency-Key is what keeps
# one visitor's answer (with its reporter token) from another: it must be as unguessable as a UUID.
VISITOR_KEY_MIN_LENGTH = 32
_VISITOR_KEY_MIN_DISTINCT = 8


def _unguessable(idempotency_key: str) -> bool:
    return len(idempotency_key) >= VISITOR_KEY_MIN_LENGTH and len(set(idempotency_key)) >= _VISITOR_KEY_MIN_DISTINCT


def check_visitor_key(caller: Caller, idempotency_key: str | None) -> None:
    """A publishable key's Idempotency-Key must be unguessable: it alone keeps visitors' answers apart."""
    if caller.publishable and idempotency_key is not None and not _unguessable(idempotency_key):
        message = (
            f"With a publishable key, use a new random key of at least {VISITOR_KEY_MIN_LENGTH} characters for "
            "each report, such as crypto.randomUUID(): every visitor shares the key."
        )
        raise ProblemError(422, message, kind="validation", errors=[{"field": "Idempotency-Key", "message": message}])


def respond_once(
    session: Session,
    caller: Caller,
    idempotency_key: str | None,
    fingerprint: str,
    work: Callable[[], tuple[int, BaseModel, dict[str, str]]],
) -> JSONResponse:
    """Run `work` (status, body, headers) once per key, or just once when no key is given, and end the
    request's transaction here: committed with the answer, or rolled back if anything failed."""
    headers: dict[str, str] = {}

    def encoded_work() -> tuple[int, dict]:
        status, body, extra_headers = work()
        headers.update(extra_headers)
        return status, {"body": body.model_dump(mode="json"), "headers": extra_headers}

    check_visitor_key(caller, idempotency_key)
    try:
        if idempotency_key is None:
            status, stored = encoded_work()
            session.commit()
            return JSONResponse(stored["body"], status_code=status, headers=headers)
        outcome = run_once(
            session,
            scope=caller.actor,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            caller_secret=caller.token,
            work=encoded_work,
        )
        session.commit()
    except (IdempotencyKeyReused, IdempotencyRecordUnreadable):
        session.rollback()
        raise idempotency_key_reused() from None
    except BaseException:
        session.rollback()
        raise
    return replay_response(outcome.status_code, outcome.body, outcome.replayed)


def idempotency_key_reused() -> ProblemError:
    return ProblemError(
        422,
        "This Idempotency-Key was already used for a different request. Use a new key for a new request.",
        kind="idempotency-key-reused",
        errors=[{"field": "Idempotency-Key", "message": "Already used with a different body."}],
    )


def replay_response(status_code: int, stored: dict, replayed: bool) -> JSONResponse:
    """An answer kept with an Idempotency-Key: `stored` is {"body": ..., "headers": ...}."""
    headers = {**stored["headers"], "Idempotent-Replayed": "true" if replayed else "false"}
    return JSONResponse(stored["body"], status_code=status_code, headers=headers)

"""Request-scoped dependencies: the database session, the caller, and the request's context."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from service.api.paths import documented_path
from service.api.problems import ProblemError
from service.storage.cases import find_case_id_by_reporter_token
from service.storage.database import session_scope
from service.storage.keys import API_KEY_PREFIX, REPORTER_TOKEN_PREFIX, find_active_key


class Role(StrEnum):
    submitter = "submitter"
    analyst = "analyst"
    admin = "admin"


@dataclass(frozen=True)
class Caller:
    """Who is calling: an API key with a role, or the reporter token of one case."""

    token: str  # the presented secret: used only to seal idempotent responses, never logged
    key_id: str | None = None
    role: Role | None = None
    reporter_case_id: int | None = None
    can_view_child_evidence: bool = False
    forces: tuple[str, ...] | None = None  # None: every force
    publishable: bool = False  # a browser key, bound to a force website's origins

    def may_see_force(self, police_force: str | None) -> bool:
        return self.forces is None or police_force in self.forces

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}" if self.key_id else f"reporter:{self.reporter_case_id}"

    def may_act_on(self, case) -> bool:
        """The reporter of this case, or the key that submitted it."""
        if self.reporter_case_id is not None:
            return self.reporter_case_id == case.id
        return self.key_id is not None and self.key_id == case.submitted_by_key_id


def get_session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.engine) as session:
        yield session


DatabaseSession = Annotated[Session, Depends(get_session)]


def get_request_id(request: Request) -> str:
    return request.state.request_id


RequestId = Annotated[str, Depends(get_request_id)]


def access_reason(
    x_access_reason: Annotated[
        str | None,
        Header(max_length=500, description="Why the case is being read; kept in the audit log."),
    ] = None,
) -> str | None:
    return x_access_reason


AccessReason = Annotated[str | None, Depends(access_reason)]

_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="intake"'}


def get_caller(request: Request, session: DatabaseSession) -> Caller:
    try:
        return _identify(request, session)
    finally:
        # End the read at once: the pooled connection must not wait with the request while its body
        # streams in or it queues for a worker thread, or a burst of requests starves the pool.
        session.rollback()


def _identify(request: Request, session: Session) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ProblemError(
            401, "Send your API key or reporter token as 'Authorization: Bearer <token>'.", headers=_UNAUTHENTICATED
        )
    origin = request.headers.get("origin")
    if token.startswith(API_KEY_PREFIX + "_"):
        key = find_active_key(session, token)
        if key is not None:
            request.state.key_id = key.id
            if key.origins is not None:
                _check_publishable_use(request, origin, key.origins)
            elif origin is not None and origin != own_origin(request):
                raise ProblemError(
                    403,
                    "A secret API key must never be used in a web page, where anyone can read it. "
                    "Use a publishable key made for your website's origin.",
                    kind="secret-key-in-browser",
                )
            return Caller(
                token=token,
                key_id=key.id,
                role=Role(key.role),
                can_view_child_evidence=key.can_view_child_evidence,
                forces=key.forces,
                publishable=key.origins is not None,
            )
    elif token.startswith(REPORTER_TOKEN_PREFIX + "_") and len(token) < 100:
        case_id = find_case_id_by_reporter_token(session, token)
        if case_id is not None:
            if origin is not None and origin != own_origin(request) and not request.app.state.cors.allows(origin):
                raise ProblemError(403, "This website may not send reports here.", kind="origin-not-allowed")
            return Caller(token=token, reporter_case_id=case_id)
    raise ProblemError(401, "This token is not valid, or has been revoked.", headers=_UNAUTHENTICATED)


# What a publishable key, written into a force website's pages for anyone to read, may do.
PUBLISHABLE_OPERATIONS = frozenset(
    {
        ("POST", "/v1/cases"),
        ("POST", "/v1/cases/{reference}/identifiers"),
        ("POST", "/v1/cases/{reference}/evidence"),
        ("POST", "/v1/cases/{reference}/evidence/uploads"),
        ("POST", "/v1/cases/{reference}/evidence/uploads/{upload_id}/complete"),
    }
)


def _check_publishable_use(request: Request, origin: str | None, origins: tuple[str, ...]) -> None:
    if origin is not None and origin not in origins:
        raise ProblemError(403, "This key may be used only from its own website.", kind="origin-not-allowed")
    documented = documented_path(request.app, request.url.path)
    if documented is None or (request.method, documented[0]) not in PUBLISHABLE_OPERATIONS:
        raise ProblemError(
            403,
            "A publishable key can only report cases and add identifiers and evidence to the cases it reported.",
            kind="publishable-key-scope",
        )


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def require_role(*roles: Role):
    def check(caller: CurrentCaller) -> Caller:
        if caller.role not in roles:
            allowed = " or ".join(role.value for role in roles)
            raise ProblemError(403, f"This needs an API key with the {allowed} role.")
        return caller

    return Depends(check)

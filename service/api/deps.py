"""Request-scoped dependencies: the database session, the caller, and the request's context."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from service.api.paths import documented_path
from service.api.problems import ProblemError
from service.storage.database import session_scope
from service.storage.keys import API_KEY_PREFIX, REPORTER_TOKEN_PREFIX, case_id_of_reporter_token


class Role(StrEnum):
    submitter = "submitter"
    analyst = "analyst"
    admin = "admin"


@dataclass(frozen=True)
class Caller:
    """Who is calling: an API key with a role, or the reporter token of one case."""

    # What idempotent answers are sealed with, never logged: the presented secret, or for a publishable
    # key (public by design) a secret the service derives from it, so the key alone opens nothing.
    token: str
    key_id: str | None = None
    role: Role | None = None
    reporter_case_id: int | None = None
    can_view_child_evidence: bool = False
    can_share_without_consent: bool = False  # a STIX export may include cases without consent_to_share
    forces: tuple[str, ...] | None = None  # None: every force
    publishable: bool = False  # a browser key, bound to a force website's origins

    def may_see_force(self, police_force: str | None) -> bool:
        return self.forces is None or police_force in self.forces

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}" if self.key_id else f"reporter:{self.reporter_case_id}"

    def may_act_on(self, case) -> bool:
        """The reporter of this case, or the secret key that submitted it. Never a publishable key:
        it is in a web page's source and a reference is quoted everywhere, so the two together
        prove nothing about who is asking."""
        if self.reporter_case_id is not None:
            return self.reporter_case_id == case.id
        return not self.publishable and self.key_id is not None and self.key_id == case.submitted_by_key_id


def get_session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.engine) as session:
        yield session


DatabaseSession = Annotated[Session, Depends(get_session)]


# Dependencies on the hot path are `async def`: a plain `def` one would cost a worker-thread hop each.
async def get_request_id(request: Request) -> str:
    return request.state.request_id


RequestId = Annotated[str, Depends(get_request_id)]


async def access_reason(
    x_access_reason: Annotated[
        str | None,
        Header(max_length=500, description="Why the case is being read, in UTF-8; kept in the audit log."),
    ] = None,
) -> str | None:
    if x_access_reason is None:
        return None
    # HTTP headers arrive as bytes, which the server hands over read as Latin-1: take the bytes back
    # and read them as the UTF-8 that clients send ("Überprüfung" is not stored as "Ã\x9cberprÃ¼fung").
    raw = x_access_reason.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return x_access_reason  # not UTF-8: kept as the Latin-1 it was


AccessReason = Annotated[str | None, Depends(access_reason)]

_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="intake"'}


async def get_caller(request: Request) -> Caller:
    """Who is calling, from the bearer token: API keys from this process's cache of live keys (see
    LiveKeys), reporter tokens from the database; on the event loop either way."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ProblemError(
            401, "Send your API key or reporter token as 'Authorization: Bearer <token>'.", headers=_UNAUTHENTICATED
        )
    origin = request.headers.get("origin")
    if token.startswith(API_KEY_PREFIX + "_"):
        key = await request.app.state.live_keys.find(token)
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
            publishable = key.origins is not None
            return Caller(
                token=_publishable_sealing_secret(request, token) if publishable else token,
                key_id=key.id,
                role=Role(key.role),
                can_view_child_evidence=key.can_view_child_evidence,
                can_share_without_consent=key.can_share_without_consent,
                forces=key.forces,
                publishable=publishable,
            )
    elif token.startswith(REPORTER_TOKEN_PREFIX + "_") and len(token) < 100:
        case_id = await case_id_of_reporter_token(request.app.state.async_database, token)
        if case_id is not None:
            if (
                origin is not None
                and origin != own_origin(request)
                and not await request.app.state.cors.allows_soon(origin)
            ):
                raise ProblemError(403, "This website may not send reports here.", kind="origin-not-allowed")
            return Caller(token=token, reporter_case_id=case_id)
    raise key_revoked()


def key_revoked() -> ProblemError:
    return ProblemError(401, "This token is not valid, or has been revoked.", headers=_UNAUTHENTICATED)


def _publishable_sealing_secret(request: Request, token: str) -> str:
    message = b"publishable-idempotency\x00" + token.encode()
    return hmac.new(request.app.state.link_secret, message, "sha256").hexdigest()


# What a publishable key, written into a force website's pages for anyone to read, may do: report a
# case. Adding to it takes the reporter token the answer gave that visitor.
PUBLISHABLE_OPERATIONS = frozenset({("POST", "/v1/cases")})


def _check_publishable_use(request: Request, origin: str | None, origins: tuple[str, ...]) -> None:
    if origin is not None and origin not in origins:
        raise ProblemError(403, "This key may be used only from its own website.", kind="origin-not-allowed")
    documented = documented_path(request.app, request.url.path)
    if documented is None or (request.method, documented[0]) not in PUBLISHABLE_OPERATIONS:
        raise ProblemError(
            403,
            "A publishable key can only report cases. To add identifiers or evidence to a case, use the "
            "reporter token its report was answered with.",
            kind="publishable-key-scope",
        )


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def require_role(*roles: Role):
    async def check(caller: CurrentCaller) -> Caller:
        return caller_in_role(caller, roles)

    return Depends(check)


def caller_in_role(caller: Caller, roles: tuple[Role, ...]) -> Caller:
    if caller.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise ProblemError(403, f"This needs an API key with the {allowed} role.")
    return caller

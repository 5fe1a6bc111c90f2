"""The webhook outbox: alerts are stored with the change that caused them, then delivered, retried
with backoff until they arrive or the attempts run out."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.models import WebhookDelivery

URGENT_EVENT = "case.urgent"


def queue_alert(session: Session, *, event: str, payload: dict, now: datetime) -> None:
    """Add to the caller's transaction: the alert exists exactly when the change does."""
    session.execute(
        sa.insert(WebhookDelivery.__table__),
        {"event": event, "payload": payload, "created_at": now, "attempts": 0, "next_attempt_at": now},
    )


def signed_headers(secret: str, body: bytes, delivery_id: int, event: str, timestamp: int) -> dict[str, str]:
    """`X-Intake-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`: receivers check the
    signature and refuse old timestamps, so a captured alert can't be replayed later."""
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Intake-Event": event,
        "X-Intake-Delivery": str(delivery_id),
        "X-Intake-Signature": f"t={timestamp},v1={signature}",
    }


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 15
    first_backoff: timedelta = timedelta(seconds=5)
    longest_backoff: timedelta = timedelta(hours=1)

    def backoff(self, attempts: int) -> timedelta:
        return min(self.first_backoff * (2 ** (attempts - 1)), self.longest_backoff)


def deliver_due(
    session: Session,
    send: Callable[[bytes, dict[str, str]], None],
    *,
    secret: str,
    now: datetime,
    policy: DeliveryPolicy,
    batch: int = 20,
) -> int:
    """Try each due alert once; `send` raises on any failure. Returns how many were delivered."""
    query = (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.gave_up_at.is_(None),
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # several processes may deliver side by side
    delivered = 0
    for item in session.exec(query).all():
        body = json.dumps(
            {"event": item.event, "delivery": item.id, **item.payload}, sort_keys=True, separators=(",", ":")
        ).encode()
        item.attempts += 1
        try:
            send(body, signed_headers(secret, body, item.id, item.event, int(now.timestamp())))
        except Exception as error:  # noqa: BLE001 - any failure is retried; the reason is kept short
            item.last_error = f"{type(error).__name__}: {str(error)[:150]}"
            if item.attempts >= policy.max_attempts:
                item.gave_up_at = now
            else:
                item.next_attempt_at = now + policy.backoff(item.attempts)
        else:
            item.delivered_at = now
            item.last_error = None
            delivered += 1
        session.add(item)
    session.commit()
    return delivered

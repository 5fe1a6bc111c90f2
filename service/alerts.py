"""Delivering webhook alerts in the background of the running service."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from anyio import to_thread

from service.settings import Settings
from service.storage.alerts import DeliveryPolicy, deliver_due
from service.storage.database import session_scope
from service.storage.models import utc_now

log = logging.getLogger("service.alerts")


class AlertDeliverer:
    """Polls the outbox, and is nudged right after an urgent case is stored, so alerts go at once."""

    def __init__(self, settings: Settings, engine) -> None:
        self.settings = settings
        self.engine = engine
        self.wake = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.policy = DeliveryPolicy(
            max_attempts=settings.webhook_max_attempts, first_backoff=settings.webhook_first_backoff
        )
        self.client = httpx.Client(timeout=10, follow_redirects=False)

    def nudge(self) -> None:
        """Safe from any thread."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.wake.set)

    def deliver_once(self) -> int:
        with session_scope(self.engine) as session:
            return deliver_due(
                session, self._send, secret=self.settings.webhook_secret or "", now=utc_now(), policy=self.policy
            )

    def _send(self, body: bytes, headers: dict[str, str]) -> None:
        response = self.client.post(self.settings.webhook_url or "", content=body, headers=headers)
        response.raise_for_status()

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        while True:
            try:
                await to_thread.run_sync(self.deliver_once)
            except Exception:  # noqa: BLE001 - the loop must outlive a database hiccup
                log.exception("webhook delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.settings.webhook_poll_seconds)
            self.wake.clear()

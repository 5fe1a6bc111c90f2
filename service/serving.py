"""How `intake serve` guards its connections against slow and oversized clients (slowloris, header floods).

Uvicorn's h11 protocol bounds the request line and headers (`h11_max_incomplete_event_size`) and the
idle time between requests (`timeout_keep_alive`), and `limit_concurrency` answers 503 past a number
of connections and requests. Neither it nor httptools has a deadline for the headers themselves or
for a body that stops arriving: a client trickling a header every few seconds, or stopping
mid-body, would hold its connection forever. `GuardedH11Protocol` adds those two deadlines.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.settings import Settings


@cache
def _deadlines() -> tuple[float, float]:
    """Read once per worker process: each builds its settings from the same environment."""
    settings = Settings()
    return settings.http_header_seconds, settings.http_body_idle_seconds


def uvicorn_limits(settings: Settings) -> dict[str, Any]:
    """The options `uvicorn.run` takes for these limits."""
    return {
        "http": GuardedH11Protocol,
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "limit_concurrency": settings.http_max_concurrency,
    }


class GuardedH11Protocol(H11Protocol):
    """Closes a connection whose request headers are not complete `http_header_seconds` after it
    opened (or after the last answer on it), or whose body has not moved for `http_body_idle_seconds`."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(_deadlines()[0])

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.SEND_BODY:
            self._arm(_deadlines()[1])  # the body moved: its idle clock starts again
        elif self.conn.their_state is not h11.IDLE and self._deadline is not None:
            self._deadline.cancel()  # the whole request is in: the app's time is not the client's
            self._deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(_deadlines()[0])  # the next request's headers, on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(seconds, self._expired, seconds)

    def _expired(self, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY and self.flow.read_paused:
            self._arm(seconds)  # we stopped reading (the app is busy with what came): not the client's pause
        elif state in (h11.IDLE, h11.SEND_BODY):
            self.transport.close()  # an app still reading the body is told the client went away

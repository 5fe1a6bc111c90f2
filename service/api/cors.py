"""CORS, closed unless a publishable key opens it: a browser may call the API only from the origin
of a force website that has a live publishable key. Everything else gets no CORS headers at all,
so browsers keep other sites' scripts out."""

from __future__ import annotations

import time

import anyio.to_thread
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware import scope_header
from service.storage.database import session_scope
from service.storage.keys import publishable_origins

_ALLOWED_METHODS = b"GET, POST, PUT"
_ALLOWED_HEADERS = b"Authorization, Content-Type, Idempotency-Key, If-Match, X-Request-Id"
_EXPOSED_HEADERS = b"Location, Retry-After, ETag, X-Request-Id, Idempotent-Replayed"


class AllowedOrigins:
    """The origins of live publishable keys, read again at most every `ttl_seconds`."""

    def __init__(self, engine: Engine, ttl_seconds: float) -> None:
        self.engine = engine
        self.ttl_seconds = ttl_seconds
        self._origins: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._read_at >= self.ttl_seconds

    def allows(self, origin: str) -> bool:
        if self.stale:
            with session_scope(self.engine) as session:
                self._origins = publishable_origins(session)
            self._read_at = time.monotonic()
        return origin in self._origins

    async def allows_soon(self, origin: str) -> bool:
        """`allows`, reading the database (when due) off the event loop."""
        if self.stale:
            return await anyio.to_thread.run_sync(self.allows, origin)
        return origin in self._origins


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: AllowedOrigins, max_age_seconds: int = 600) -> None:
        self.app = app
        self.origins = origins
        self.max_age = str(max_age_seconds).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = scope_header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = await self.origins.allows_soon(origin)
        cors = [(b"vary", b"Origin")]
        if allowed:
            cors += [
                (b"access-control-allow-origin", origin.encode()),
                (b"access-control-expose-headers", _EXPOSED_HEADERS),
            ]
        if allowed and scope["method"] == "OPTIONS" and scope_header(scope, b"access-control-request-method"):
            preflight = cors + [
                (b"access-control-allow-methods", _ALLOWED_METHODS),
                (b"access-control-allow-headers", _ALLOWED_HEADERS),
                (b"access-control-max-age", self.max_age),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": preflight})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)

"""One pass over every request: an id, security headers, a metric, and a log line with no
personal data in it (route template, not path; never the query, the body or the token)."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from urllib.parse import parse_qsl

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.paths import documented_path
from service.api.problems import problem_response, validation_problem
from service.domain.cases import NUL_MESSAGE
from service.storage.audit import CLIENT_REQUEST_ID

access_log = logging.getLogger("service.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# What of a client's own X-Request-Id is kept: visible ASCII only (it goes into JSON, logs and the audit
# log), at most 64 characters (a UUID or a W3C trace id fits); anything else is dropped whole.
_CLIENT_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,64}$")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "intake_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.duration = Histogram(
            "intake_http_request_duration_seconds",
            "Time to answer",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._children: dict[tuple[str, str, int], tuple] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # `labels()` hashes and locks on every call; the (method, route, status) set is small, so keep them.
        children = self._children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.duration.labels(method, route))
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_headers: int = 100) -> None:
        self.app = app
        self.metrics = metrics
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # The request id is always the server's own: the audit log files rows under it, and a client
        # choosing it could make its requests look like someone else's. The client's id is kept beside it.
        # It correlates log lines and guards nothing, so it needs no system entropy per request.
        request_id = f"{random.getrandbits(64):016x}"
        client_request_id = client_request_id_from(scope_header(scope, b"x-request-id"))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_request_id"] = client_request_id
        serving = CLIENT_REQUEST_ID.set(client_request_id)
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                present = {name for name, _ in headers}
                for name, value in scope["state"].get("rate_limit_headers", {}).items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                headers.extend((name, value) for name, value in SECURITY_HEADERS if name not in present)
                if not any(name == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            refusal = _too_many_headers(scope, self.max_headers) or _nul_in_query(scope)
            await (refusal or self.app)(scope, receive, send_with_headers)
        finally:
            CLIENT_REQUEST_ID.reset(serving)
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe(scope["method"], route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    json.dumps(
                        {
                            "event": "request",
                            "request_id": request_id,
                            "client_request_id": client_request_id,
                            "method": scope["method"],
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 1),
                            "key_id": scope.get("state", {}).get("key_id"),
                        }
                    )
                )


def client_request_id_from(offered: str | None) -> str | None:
    """The client's X-Request-Id as kept: trimmed, or None if it is not short visible ASCII."""
    offered = offered.strip() if offered else None
    return offered if offered and _CLIENT_REQUEST_ID.match(offered) else None


def _too_many_headers(scope: Scope, limit: int) -> ASGIApp | None:
    """A flood of header fields is refused before anything reads them (their bytes are bounded by the server)."""
    if len(scope.get("headers", ())) <= limit:
        return None
    return problem_response(431, f"The request has too many header fields: the limit is {limit}.")


def _nul_in_query(scope: Scope) -> ASGIApp | None:
    """A NUL character in the query string, refused here before any route or database sees it
    (no text column can keep one). Checked on the raw bytes: cheap on the path every request takes."""
    raw = scope.get("query_string", b"")
    if b"%00" not in raw:
        return None
    names = [name for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if "\x00" in name + value]
    problem = validation_problem([{"field": (names or ["query"])[0].replace("\x00", ""), "message": NUL_MESSAGE}])
    return problem_response(422, problem.detail, kind="validation", errors=problem.errors)


def scope_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "unmatched")
    # No route ran (a 405, or a request refused before routing): name the documented path it was for.
    documented = documented_path(scope["app"], scope["path"]) if "app" in scope else None
    return documented[0] if documented else "unmatched"

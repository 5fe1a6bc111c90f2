"""Who the client is and which address it asked for, when a reverse proxy stands in between.

Only a proxy the operator named may say so (`X-Forwarded-For`, `-Proto`, `-Host`): anyone else could
claim any address and dodge the per-address limits. A configured public URL outranks every header,
so links and the form's same-origin check never follow a Host header somebody made up.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Addresses and networks from INTAKE_TRUSTED_PROXIES, e.g. `127.0.0.1, 10.0.0.0/8`; `*` trusts any peer
    (only where nothing but the proxy can reach the service)."""

    def __init__(self, text: str | None) -> None:
        entries = [entry.strip() for entry in (text or "").split(",") if entry.strip()]
        self.everyone = "*" in entries
        self.networks: list[Network] = [ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*"]

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def __contains__(self, address: str) -> bool:
        if self.everyone:
            return True
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self.networks)


def public_origin(url: str) -> tuple[str, str]:
    """`https://reports.example.org/` → ('https', 'reports.example.org'); anything else is a ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"a public URL is a scheme and host such as https://reports.example.org, not {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"a public URL is a scheme and host such as https://reports.example.org, not {url!r}")
    return parts.scheme, parts.netloc


class ForwardedMiddleware:
    def __init__(self, app: ASGIApp, trusted: TrustedProxies, public_url: str | None) -> None:
        self.app = app
        self.trusted = trusted
        self.public = public_origin(public_url) if public_url else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (self.trusted or self.public):
            scope = self._rewritten(scope)
        await self.app(scope, receive, send)

    def _rewritten(self, scope: Scope) -> Scope:
        scope = dict(scope)
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        client = scope.get("client")
        if client and self.trusted and client[0] in self.trusted:
            forwarded = {name: value.decode("latin-1") for name, value in headers if name.startswith(b"x-forwarded-")}
            client_address = self._client_from(forwarded.get(b"x-forwarded-for"))
            if client_address:
                scope["client"] = (client_address, 0)
            # The proxy nearest to us writes the last value.
            proto = _last(forwarded.get(b"x-forwarded-proto")).lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
            host = _last(forwarded.get(b"x-forwarded-host"))
            if host:
                headers = _with_host(headers, host)
        if self.public:
            scope["scheme"], host = self.public
            headers = _with_host(headers, host)
        scope["headers"] = headers
        return scope

    def _client_from(self, header: str | None) -> str | None:
        """The nearest address that is not one of our proxies: anything further left the client could write."""
        hops = [hop.strip() for hop in (header or "").split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in self.trusted:
                return hop
        return hops[0] if hops else None


def _last(value: str | None) -> str:
    return (value or "").rsplit(",", 1)[-1].strip()


def _with_host(headers: list[tuple[bytes, bytes]], host: str) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in headers if name != b"host"] + [(b"host", host.encode("latin-1"))]

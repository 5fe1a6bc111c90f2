"""Rate limits per API key and per client address, counted where every worker and replica sees them.

Counting is the `limits` library's sliding window: a request finding its window full gets 429 with
the seconds until it frees up. The counters live at INTAKE_RATE_LIMIT_STORAGE_URL: `memory://` keeps
them in this process (one process only: N workers would allow N times every limit), `redis://...`
shares them between every process of a deployment. Answers on limited routes carry the IETF
`RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers), one item per limit.

Behind a proxy, name it in INTAKE_TRUSTED_PROXIES so the address is the visitor's, not the proxy's.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

from fastapi import Request
from limits import RateLimitItem, parse
from limits.errors import ConfigurationError
from limits.storage import Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from service.api.deps import Caller, CurrentCaller
from service.api.problems import ProblemError

log = logging.getLogger("service.ratelimit")

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
# A shared store that does not answer at once must not hold up a report: the limit is skipped instead.
_STORE_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """'30/minute' → a rate; 'off' → no limit."""
        if text.strip().lower() == "off":
            return None
        match = _RATE.match(text)
        if not match or int(match.group(1)) < 1:
            raise ValueError(f"A rate looks like '30/minute' (second, minute, hour or day) or 'off', not {text!r}.")
        return cls(int(match.group(1)), _PERIODS[match.group(2)])

    def in_words(self) -> str:
        period = {seconds: name for name, seconds in _PERIODS.items()}[self.seconds]
        return f"{self.count} a {period}"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    reset_seconds: int


class Limit:
    """One named limit (`reports-per-address`), counted per key (an API key id or an address)."""

    def __init__(self, name: str, rate: Rate, limiter: SlidingWindowCounterRateLimiter) -> None:
        self.name = name
        self.rate = rate
        self.limiter = limiter
        self.item: RateLimitItem = parse(f"{rate.count}/{rate.seconds} seconds")

    def hit(self, key: str) -> Verdict | None:
        """Count one request; None when the store could not be asked (the request goes through)."""
        try:
            allowed = self.limiter.hit(self.item, self.name, key)
            stats = self.limiter.get_window_stats(self.item, self.name, key)
        except Exception:  # noqa: BLE001 - a limiter outage must not turn reports away
            _warn_store_unavailable()
            return None
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, max(0, stats.remaining), min(reset, self.rate.seconds))


_last_outage_warning = 0.0


def _warn_store_unavailable() -> None:
    global _last_outage_warning
    now = time.monotonic()
    if now - _last_outage_warning > 60:
        _last_outage_warning = now
        log.warning('{"event": "rate_limit_store_unavailable", "effect": "limits skipped until it answers"}')


def limit_storage(url: str) -> Storage:
    """The counters' store from its URL; a Redis store gives up quickly rather than stall the event loop."""
    options = {}
    if url.startswith(("redis://", "rediss://", "redis+unix://")):
        options = {"socket_timeout": _STORE_TIMEOUT_SECONDS, "socket_connect_timeout": _STORE_TIMEOUT_SECONDS}
    try:
        return storage_from_string(url, **options)
    except ConfigurationError as error:
        raise ValueError(f"INTAKE_RATE_LIMIT_STORAGE_URL={url!r} is not a store the limiter knows: {error}") from None


@dataclass
class RateLimits:
    case_creation_per_key: Limit | None
    case_creation_per_address: Limit | None
    publishable_case_creation_per_key: Limit | None
    guidance_per_address: Limit | None
    report_status_per_address: Limit | None = None
    additions_per_key: Limit | None = None
    additions_per_case: Limit | None = None
    status_additions_per_address: Limit | None = None

    @classmethod
    def from_settings(cls, settings) -> RateLimits:
        limiter = SlidingWindowCounterRateLimiter(limit_storage(settings.rate_limit_storage_url))

        def buckets(name: str, text: str) -> Limit | None:
            rate = Rate.parse(text)
            return Limit(name, rate, limiter) if rate else None

        return cls(
            case_creation_per_key=buckets("reports-per-key", settings.rate_case_creation_per_key),
            case_creation_per_address=buckets("reports-per-address", settings.rate_case_creation_per_address),
            publishable_case_creation_per_key=buckets(
                "reports-per-publishable-key", settings.rate_publishable_case_creation_per_key
            ),
            guidance_per_address=buckets("guidance-per-address", settings.rate_guidance_per_address),
            report_status_per_address=buckets("status-tries-per-address", settings.rate_report_status_per_address),
            additions_per_key=buckets("additions-per-key", settings.rate_additions_per_key),
            additions_per_case=buckets("additions-per-case", settings.rate_additions_per_case),
            status_additions_per_address=buckets(
                "status-additions-per-address", settings.rate_status_additions_per_address
            ),
        )


def _enforce(limit: Limit | None, key: str, what: str, request: Request | None = None) -> None:
    """Count this request against `limit`; 429 when it is used up. With `request`, the answer says how much is left."""
    if limit is None:
        return
    verdict = limit.hit(key)
    if verdict is None:
        return
    if request is not None:
        _remember_for_headers(request, limit, verdict)
    if not verdict.allowed:
        raise ProblemError(
            429,
            f"Too many {what} in a short time (the limit is {limit.rate.in_words()}). "
            f"Please wait {verdict.reset_seconds} seconds and try again.",
            kind="rate-limited",
            headers={"Retry-After": str(verdict.reset_seconds), **rate_limit_headers([(limit, verdict)])},
        )


def _remember_for_headers(request: Request, limit: Limit, verdict: Verdict) -> None:
    """The request's middleware writes these onto whatever answer the route gives."""
    counted = getattr(request.state, "rate_limits_counted", None)
    if counted is None:
        counted = request.state.rate_limits_counted = []
    counted.append((limit, verdict))
    request.state.rate_limit_headers = rate_limit_headers(counted)


def rate_limit_headers(counted: list[tuple[Limit, Verdict]]) -> dict[str, str]:
    """`RateLimit-Policy: "reports-per-key";q=600;w=60` and `RateLimit: "reports-per-key";r=599;t=60`."""
    return {
        "RateLimit-Policy": ", ".join(
            f'"{limit.name}";q={limit.rate.count};w={limit.rate.seconds}' for limit, _ in counted
        ),
        "RateLimit": ", ".join(
            f'"{limit.name}";r={verdict.remaining};t={verdict.reset_seconds}' for limit, verdict in counted
        ),
    }


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def limit_case_creation(request: Request, caller: Caller) -> None:
    """A secret key is a force's or partner's server, sending for many people: limited per key only.
    Keyless (form) and publishable (browser) callers are people: limited per address, and per key."""
    limits: RateLimits = request.app.state.rate_limits
    if caller.key_id is None or caller.publishable:
        limit_reports_from_address(request)
    if caller.key_id is not None:
        per_key = limits.publishable_case_creation_per_key if caller.publishable else limits.case_creation_per_key
        _enforce(per_key, caller.key_id, "reports with this key", request)


def limit_reports_from_address(request: Request) -> None:
    """Reports from people (the form has no key; a publishable key is in everyone's browser): the address limit."""
    limits: RateLimits = request.app.state.rate_limits
    _enforce(limits.case_creation_per_address, client_address(request), "reports from this address", request)


def limit_guidance(request: Request) -> None:
    # Called from the handlers, not as a dependency: public reads are the hottest path there is.
    _enforce(request.app.state.rate_limits.guidance_per_address, client_address(request), "requests", request)


def limit_report_status_tries(request: Request) -> None:
    """Tries of a reference and private code: counted whether they are right or wrong, so that guessing
    learns nothing from which tries were counted."""
    limits: RateLimits = request.app.state.rate_limits
    _enforce(limits.report_status_per_address, client_address(request), "tries from this address", request)


async def limit_additions(request: Request, caller: CurrentCaller) -> None:
    """Adding to a case (evidence, direct uploads, identifiers): a reporter is limited per case, a secret
    key per key. Publishable keys never get this far: they may only report."""
    limits: RateLimits = request.app.state.rate_limits
    if caller.reporter_case_id is not None:
        limit_reporter_additions(request, caller.reporter_case_id)
    elif caller.key_id is not None:
        _enforce(limits.additions_per_key, caller.key_id, "additions with this key", request)


def limit_reporter_additions(request: Request, case_id: int) -> None:
    """One case's reporter, whether through the API with the reporter token or on the status page."""
    limits: RateLimits = request.app.state.rate_limits
    _enforce(limits.additions_per_case, str(case_id), "additions to this case", request)


def limit_status_additions(request: Request) -> None:
    """Posts to the status page's forms, counted per address before their body is read."""
    limits: RateLimits = request.app.state.rate_limits
    _enforce(limits.status_additions_per_address, client_address(request), "additions from this address", request)

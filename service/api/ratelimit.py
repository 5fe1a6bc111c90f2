"""Rate limits: token buckets per API key and per client address, in this process's memory.

A bucket holds `count` tokens and refills at `count` per period; a request finding it empty gets 429
with the seconds until the next token. Each worker process keeps its own buckets, so N workers allow
up to N times a limit: enough to stop abuse, not meant for metering. Behind a proxy, run uvicorn with
`--proxy-headers --forwarded-allow-ips=<proxy>` so the client address is the visitor's, not the proxy's.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from service.api.deps import CurrentCaller
from service.api.problems import ProblemError

_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """'30/minute' → a rate; 'off' → no limit."""
        if text.strip().lower() == "off":
            return None
        match = _RATE.match(text)
        if not match or int(match.group(1)) < 1:
            raise ValueError(f"A rate looks like '30/minute' (second, minute, hour or day) or 'off', not {text!r}.")
        return cls(int(match.group(1)), _PERIODS[match.group(2)])


class TokenBuckets:
    """One bucket per key (an API key id or an address); only ever touched from the event loop."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000) -> None:
        self.rate = rate
        self.clock = clock
        self.max_buckets = max_buckets
        self._refill_per_second = rate.count / rate.seconds
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, when counted)

    def take(self, key: str) -> float:
        """Take a token: 0 if there was one, else the seconds until there will be."""
        now = self.clock()
        tokens, counted_at = self._buckets.get(key, (float(self.rate.count), now))
        tokens = min(float(self.rate.count), tokens + (now - counted_at) * self._refill_per_second)
        if tokens >= 1:
            self._remember(key, (tokens - 1, now))
            return 0.0
        self._remember(key, (tokens, now))
        return (1 - tokens) / self._refill_per_second

    def _remember(self, key: str, bucket: tuple[float, float]) -> None:
        if key not in self._buckets and len(self._buckets) >= self.max_buckets:
            self._forget_full_buckets()
        self._buckets[key] = bucket

    def _forget_full_buckets(self) -> None:
        # A bucket that has had time to refill is the same as no bucket; dropping those bounds memory.
        now = self.clock()
        refill_time = self.rate.seconds
        for key, (_, counted_at) in list(self._buckets.items()):
            if now - counted_at >= refill_time:
                del self._buckets[key]
        if len(self._buckets) >= self.max_buckets:
            self._buckets.clear()  # under a flood of addresses, forgetting is safer than growing


@dataclass
class RateLimits:
    case_creation_per_key: TokenBuckets | None
    case_creation_per_address: TokenBuckets | None
    publishable_case_creation_per_key: TokenBuckets | None
    guidance_per_address: TokenBuckets | None
    report_status_per_address: TokenBuckets | None = None

    @classmethod
    def from_settings(cls, settings) -> RateLimits:
        def buckets(text: str) -> TokenBuckets | None:
            rate = Rate.parse(text)
            return TokenBuckets(rate) if rate else None

        return cls(
            case_creation_per_key=buckets(settings.rate_case_creation_per_key),
            case_creation_per_address=buckets(settings.rate_case_creation_per_address),
            publishable_case_creation_per_key=buckets(settings.rate_publishable_case_creation_per_key),
            guidance_per_address=buckets(settings.rate_guidance_per_address),
            report_status_per_address=buckets(settings.rate_report_status_per_address),
        )


def _enforce(buckets: TokenBuckets | None, key: str, what: str) -> None:
    if buckets is None:
        return
    wait = buckets.take(key)
    if wait > 0:
        raise ProblemError(
            429,
            f"Too many {what} in a short time. Please wait {math.ceil(wait)} seconds and try again.",
            kind="rate-limited",
            headers={"Retry-After": str(math.ceil(wait))},
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def limit_case_creation(request: Request, caller: CurrentCaller) -> None:
    limit_reports_from_address(request)
    if caller.key_id is not None:
        limits: RateLimits = request.app.state.rate_limits
        per_key = limits.publishable_case_creation_per_key if caller.publishable else limits.case_creation_per_key
        _enforce(per_key, caller.key_id, "reports with this key")


def limit_reports_from_address(request: Request) -> None:
    """Every report, the form's included (it has no key): the address limit."""
    limits: RateLimits = request.app.state.rate_limits
    _enforce(limits.case_creation_per_address, client_address(request), "reports from this address")


def limit_guidance(request: Request) -> None:
    # Called from the handlers, not as a dependency: public reads are the hottest path there is.
    _enforce(request.app.state.rate_limits.guidance_per_address, client_address(request), "requests")


def limit_report_status_tries(request: Request) -> None:
    """Tries of a reference and private code: counted whether they are right or wrong, so that guessing
    learns nothing from which tries were counted."""
    limits: RateLimits = request.app.state.rate_limits
    _enforce(limits.report_status_per_address, client_address(request), "tries from this address")

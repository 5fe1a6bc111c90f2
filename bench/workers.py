"""Cases per second for POST /v1/cases with `intake serve --workers 2` ÷ `--workers 1`, same run, same
PostgreSQL (fsync on), plus the service's CPU per request and the machine's CPU use from /proc.

    .venv/bin/python bench/workers.py [--seconds 10] [--connections 32]

On a machine of C cores the ratio can approach min(C, 2) only if the intake route is CPU-bound in
Python; the machine's busy share shows whether other load took the cores.
"""

from __future__ import annotations

import itertools
import os
import secrets

from _harness import (
    ROOT,
    Numbering,
    Result,
    Target,
    analyze,
    load,
    load_options,
    print_table,
    require_wrk,
    submitter_authorization,
    wrk_settings,
)
from create_cases import CASE_TEMPLATE, JSON_HEADERS, NUMBERS_PER_ROUND

from devsupport.postgres import PostgresServer
from devsupport.processes import group_cpu_seconds, machine_busy_jiffies
from devsupport.servers import UNLIMITED_ENVIRONMENT, start_service

# Every load (warm-ups included) reports identifiers no earlier load used: one database serves both rows,
# and a number used twice would send the second load down the slower repeat-case path.
_RUN_BASE = secrets.randbelow(9_000_000_000)
_LOADS = itertools.count(1)


def fresh_numbers() -> Numbering:
    return Numbering(first=_RUN_BASE + next(_LOADS) * NUMBERS_PER_ROUND)


def measure(workers: int, environment: dict[str, str], auth: dict[str, str], args) -> tuple[Result, float, float]:
    """Load on a fresh `intake serve --workers N`; its result, CPU ms per case, and the machine's busy share."""
    process, base = start_service(
        {**environment, "INTAKE_DATA_DIR": str(ROOT / ".tmp" / f"bench-{workers}")}, workers=workers
    )
    post_case = {"method": "POST", "body_template": CASE_TEMPLATE, "headers": {**JSON_HEADERS, **auth}}
    try:
        load(
            f"warm-up, {workers} worker(s)",
            base + "/v1/cases",
            **post_case,
            connections=args.connections,
            seconds=2,
            expected_status=201,
            numbering=fresh_numbers(),
        )
        analyze(environment["INTAKE_DATABASE_URL"])
        cpu_before, (busy_before, total_before) = group_cpu_seconds(process.pid), machine_busy_jiffies()
        result = load(
            f"POST /v1/cases, {workers} worker(s)",
            base + "/v1/cases",
            **post_case,
            **wrk_settings(args),
            expected_status=201,
            numbering=fresh_numbers(),
        )
        cpu = group_cpu_seconds(process.pid) - cpu_before
        busy_after, total_after = machine_busy_jiffies()
    finally:
        process.terminate()
        process.wait(timeout=60)
    per_case_ms = 1000 * cpu / max(result.requests, 1)
    return result, per_case_ms, (busy_after - busy_before) / max(total_after - total_before, 1)


def main(argv: list[str] | None = None) -> list[Target]:
    args = load_options(argv)
    require_wrk()
    with PostgresServer(fsync=True) as postgres:
        environment = {
            "INTAKE_DATABASE_URL": postgres.create_database("bench"),
            "INTAKE_LOG_LEVEL": "WARNING",
            **UNLIMITED_ENVIRONMENT,
        }
        auth = submitter_authorization(environment)
        one, one_cpu, one_busy = measure(1, environment, auth, args)
        two, two_cpu, two_busy = measure(2, environment, auth, args)

    ratio = two.per_second / one.per_second
    print(f"wrk, {args.connections} connections, {args.seconds}s each; {os.cpu_count()} cores on this machine")
    print_table([one, two])
    print(f"service CPU per case: {one_cpu:.1f} ms with 1 worker, {two_cpu:.1f} ms with 2 (from /proc)")
    print(f"machine busy during the load (all processes, /proc/stat): {one_busy:.0%} then {two_busy:.0%}")
    print(f"ratio cases/s, 2 workers to 1: {ratio:.2f} (target >= 1.5)")
    return [Target("workers", "cases/s, 2 workers ÷ 1", ratio, 1.5)]


if __name__ == "__main__":
    main()

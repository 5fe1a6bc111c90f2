"""Cases per second for POST /v1/cases with `intake serve --workers 2` ÷ `--workers 1`, same run, same
PostgreSQL (fsync on), plus the service's CPU per request and the machine's CPU use from /proc.

    .venv/bin/python bench/workers.py [--seconds 10] [--connections 32]

On a machine of C cores the ratio can approach min(C, 2) only if the intake route is CPU-bound in
Python; the machine's busy share shows whether other load took the cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _harness import ROOT, Result, Target, load, load_options, print_table, require_wrk
from create_cases import CASE_TEMPLATE, JSON_HEADERS

from devsupport.postgres import PostgresServer
from devsupport.servers import UNLIMITED_ENVIRONMENT, start_service

_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(group: int) -> float:
    """User+system CPU of every live process in a process group (a server and its workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def machine_busy_share() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def measure(workers: int, environment: dict[str, str], auth: dict[str, str], args) -> tuple[Result, float, float]:
    """Load on a fresh `intake serve --workers N`; its result, CPU ms per case, and the machine's busy share."""
    process, base = start_service(
        {**environment, "INTAKE_DATA_DIR": str(ROOT / ".tmp" / f"bench-{workers}")}, workers=workers
    )
    try:
        load(
            f"warm-up, {workers} worker(s)",
            base + "/v1/cases",
            method="POST",
            body_template=CASE_TEMPLATE,
            headers={**JSON_HEADERS, **auth},
            connections=args.connections,
            seconds=2,
            expected_status=201,
        )
        cpu_before, (busy_before, total_before) = group_cpu_seconds(process.pid), machine_busy_share()
        result = load(
            f"POST /v1/cases, {workers} worker(s)",
            base + "/v1/cases",
            method="POST",
            body_template=CASE_TEMPLATE,
            headers={**JSON_HEADERS, **auth},
            connections=args.connections,
            seconds=args.seconds,
            expected_status=201,
        )
        cpu = group_cpu_seconds(process.pid) - cpu_before
        busy_after, total_after = machine_busy_share()
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
        subprocess.run(
            [sys.executable, "-m", "service.cli", "db", "upgrade"],
            cwd=ROOT,
            env=environment,
            check=True,
            capture_output=True,
        )
        made = subprocess.run(
            [sys.executable, "-m", "service.cli", "keys", "create", "--role", "submitter", "--name", "bench"],
            cwd=ROOT,
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        )
        auth = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
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

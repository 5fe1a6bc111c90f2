"""Rows/s for GET /v1/cases/export?format=ndjson (PostgreSQL, streamed through the API) next to
`psql COPY (...) TO STDOUT` of the same rows in the same run; the ratio; and the service's peak
memory growth at 50k and at 200k cases, which should be the same: the export streams.

    .venv/bin/python bench/export.py [--sizes 50000 200000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from _harness import ROOT, Target, print_rows

from devsupport.postgres import PostgresServer
from devsupport.servers import start_uvicorn
from service.cli import upgrade_database
from service.storage.database import create_database_engine, session_scope
from service.storage.keys import create_api_key

MiB = 1024 * 1024

# Synthetic cases made by the database itself: fast, and nothing real-looking.
SEED = """
INSERT INTO "case" (reference, reporter_token_sha256, status, version, priority, police_force, flags, next_steps,
                    submission, created_at, updated_at)
SELECT 'B' || lpad(i::text, 11, '0') || 'X', md5(i::text), 'received', 1, 'normal',
       (ARRAY['north-yorkshire', 'west-yorkshire', 'cleveland'])[1 + i % 3], '[]'::jsonb, '[]'::jsonb,
       jsonb_build_object('reporter', jsonb_build_object('relationship', 'self'),
                          'account', 'Synthetic benchmark account number ' || i,
                          'platforms', jsonb_build_array('instagram', 'skype')),
       now() - (i || ' seconds')::interval, now()
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS i;
INSERT INTO identifier (case_id, type, value, normalized, created_at)
SELECT c.id, 'mtcn', lpad((c.id % 9999999999)::text, 10, '0'), lpad((c.id % 9999999999)::text, 10, '0'), now()
FROM "case" c WHERE c.reference LIKE 'B%' AND NOT EXISTS (SELECT 1 FROM identifier i WHERE i.case_id = c.id);
"""
COPY = (
    "COPY (SELECT c.*, (SELECT string_agg(i.type || ':' || i.normalized, ';') FROM identifier i "
    'WHERE i.case_id = c.id) AS identifiers FROM "case" c ORDER BY c.created_at, c.id) TO STDOUT'
)


def memory(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024


def main(argv: list[str] | None = None) -> list[Target]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    args = parser.parse_args(argv)

    with PostgresServer() as postgres:
        url = postgres.create_database("export_bench")
        upgrade_database(url)
        engine = create_database_engine(url)
        with session_scope(engine) as session:
            analyst = create_api_key(session, "analyst", "bench")[1]
        environment = {"INTAKE_DATABASE_URL": url, "INTAKE_LOG_LEVEL": "WARNING"}
        server, base = start_uvicorn("service.app:create_app", environment, factory=True)
        psql = ["psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", "export_bench", "-q"]
        seeded = 0
        rows = [("cases", "API rows/s", "COPY rows/s", "ratio", "service memory growth")]
        ratios, growths = [], []
        try:
            for size in sorted(args.sizes):
                with engine.begin() as connection:
                    for statement in SEED.strip().split(";\n"):
                        connection.execute(sa.text(statement), {"start": seeded + 1, "stop": size})
                seeded = size
                started = time.perf_counter()
                subprocess.run([*psql, "-c", COPY], stdout=subprocess.DEVNULL, check=True)
                copy_seconds = time.perf_counter() - started

                _, rss_before = memory(server.pid)
                started = time.perf_counter()
                lines = 0
                with httpx.stream(
                    "GET",
                    base + "/v1/cases/export",
                    params={"format": "ndjson"},
                    timeout=600,
                    headers={"Authorization": f"Bearer {analyst}"},
                ) as response:
                    for chunk in response.iter_bytes():
                        lines += chunk.count(b"\n")
                api_seconds = time.perf_counter() - started
                peak, _ = memory(server.pid)
                if lines != size:
                    raise SystemExit(f"export gave {lines} rows, expected {size}")
                ratios.append(copy_seconds / api_seconds)
                growths.append((peak - rss_before) / MiB)
                rows.append(
                    (
                        f"{size:,}",
                        f"{size / api_seconds:,.0f}",
                        f"{size / copy_seconds:,.0f}",
                        f"{copy_seconds / api_seconds:.2f}",
                        f"{(peak - rss_before) / MiB:.1f} MiB",
                    )
                )
        finally:
            server.terminate()
            server.wait()
            engine.dispose()

    print("NDJSON export through the API vs psql COPY TO STDOUT of the same rows, one uvicorn worker")
    print_rows(rows)
    print("targets: ratio >= 0.25; memory growth flat as rows grow")
    largest = max(args.sizes)
    return [
        Target("export", f"API rows/s ÷ COPY rows/s at {largest:,}", ratios[-1], 0.25),
        # Flat: the largest export may grow memory by no more than 8 MiB over the smallest's growth.
        Target("export", "memory growth, largest - smallest", growths[-1] - growths[0], 8, False, " MiB"),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

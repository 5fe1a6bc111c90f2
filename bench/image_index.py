"""One PDQ lookup among many stored hashes on PostgreSQL, through the multi-index (16-bit chunk) index,
beside a full scan of the same table in the same run: p50/p99 per lookup, and that both find the same.

    .venv/bin/python bench/image_index.py [--hashes 1000000] [--lookups 200]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import time

import sqlalchemy as sa
from _harness import Target, print_rows

from devsupport.postgres import PostgresServer
from devsupport.processes import postgres_cpu_seconds
from service.cli import upgrade_database
from service.domain.perceptual import CHUNK_COUNT, ImageMatchPolicy, PdqHash
from service.storage.database import create_database_engine, session_scope
from service.storage.image_hashes import find_similar, find_similar_by_full_scan

CHUNKS = [f"chunk_{position:02d}" for position in range(CHUNK_COUNT)]


def load(engine, count: int, rng: random.Random) -> list[int]:
    """`count` random hashes straight into image_hash (its foreign keys dropped: this measures lookups)."""
    values = [rng.getrandbits(256) for _ in range(count)]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("ALTER TABLE image_hash DROP CONSTRAINT IF EXISTS image_hash_evidence_id_fkey")
        cursor.execute("ALTER TABLE image_hash DROP CONSTRAINT IF EXISTS image_hash_case_id_fkey")
        for chunk in CHUNKS:
            cursor.execute(f"DROP INDEX IF EXISTS ix_image_hash_{chunk}")
        columns = ", ".join(["evidence_id", "case_id", "pdq_hash", "quality", *CHUNKS])
        with cursor.copy(f"COPY image_hash ({columns}) FROM STDIN") as copy:  # noqa: S608 - constants
            for number, value in enumerate(values):
                parsed = PdqHash(value)
                copy.write_row([f"{number:032x}", 1 + number // 20, parsed.hex, 100, *parsed.chunks()])
        for chunk in CHUNKS:
            cursor.execute(f"CREATE INDEX ix_image_hash_{chunk} ON image_hash ({chunk})")
        cursor.execute("ANALYZE image_hash")
        raw.commit()
    finally:
        raw.close()
    return values


def near(value: int, distance: int, rng: random.Random) -> int:
    positions = rng.sample(range(256), distance)
    for position in positions:
        value ^= 1 << position
    return value


def timed_lookups(engine, queries: list[int], search) -> tuple[list[float], list[int]]:
    policy = ImageMatchPolicy(min_quality=0)
    took, found = [], []
    with session_scope(engine) as session:
        for query in queries:
            started = time.perf_counter()
            matches = search(session, PdqHash(query), policy)
            took.append((time.perf_counter() - started) * 1000)
            found.append(len(matches))
    return took, found


def main(argv: list[str] | None = None) -> list[Target]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--scans", type=int, default=3)
    options = parser.parse_args(argv)
    rng = random.Random(14)
    with PostgresServer() as postgres:
        url = postgres.create_database("image_index_bench")
        upgrade_database(url)
        engine = create_database_engine(url)
        started = time.perf_counter()
        stored = load(engine, options.hashes, rng)
        took = time.perf_counter() - started
        print(f"loaded {options.hashes:,} hashes with their {CHUNK_COUNT} chunk indexes in {took:.0f} s")
        planted = [near(rng.choice(stored), rng.randint(0, 31), rng) for _ in range(options.lookups // 2)]
        unrelated = [rng.getrandbits(256) for _ in range(options.lookups - len(planted))]
        queries = planted + unrelated
        database_before = postgres_cpu_seconds(postgres.data)
        cpu_before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        index_ms, index_found = timed_lookups(engine, queries, find_similar)
        client_cpu_ms = (resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu_before) / len(queries) * 1000
        database_cpu_ms = (postgres_cpu_seconds(postgres.data) - database_before) / len(queries) * 1000
        scan_queries = queries[: options.scans]
        scan_ms, scan_found = timed_lookups(engine, scan_queries, find_similar_by_full_scan)
        with engine.connect() as connection:
            plan = connection.execute(sa.text("EXPLAIN " + str(_explained(engine, queries[0])))).scalars().all()
        engine.dispose()
    p50, p99 = statistics.median(index_ms), statistics.quantiles(index_ms, n=100)[98]
    scan_median = statistics.median(scan_ms)
    same = index_found[: options.scans] == scan_found
    print_rows(
        [
            ("lookup", "p50 ms", "p99 ms", "lookups", "found"),
            ("chunk index", f"{p50:.1f}", f"{p99:.1f}", str(len(index_ms)), str(sum(1 for n in index_found if n))),
            ("full scan (baseline)", f"{scan_median:.0f}", "", str(len(scan_ms)), str(sum(1 for n in scan_found if n))),
        ]
    )
    print(
        f"CPU per indexed lookup: client {client_cpu_ms:.1f} ms, PostgreSQL {database_cpu_ms:.1f} ms; "
        f"same answers as the scan: {same}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(
        "plan:",
        " / ".join(line.strip().split("  (")[0][:60] for line in plan if "Scan" in line or "Or" in line[:20])[:300],
    )
    return [
        Target("image index", f"lookup p99 among {options.hashes:,} (PostgreSQL)", p99, 50, False, " ms"),
        Target("image index", "full scan ÷ indexed lookup (same run)", scan_median / p50, 10),
        Target(
            "image index",
            "planted near-copies found",
            sum(1 for n in index_found[: len(planted)] if n) / len(planted),
            1.0,
        ),
    ]


def _explained(engine, query: int):
    from service.storage.image_hashes import _CHUNK_COLUMNS, _HASHES, candidate_chunks

    conditions = [_CHUNK_COLUMNS[p].in_(values) for p, values in candidate_chunks(PdqHash(query), 31)]
    statement = sa.select(_HASHES.c.evidence_id).where(sa.or_(*conditions))
    return statement.compile(engine, compile_kwargs={"literal_binds": True})


if __name__ == "__main__":
    main()

"""Clusters at scale on PostgreSQL: what joining a cluster adds to a report at intake, beside the case
insert itself in the same run, and GET /v1/clusters' first page (most harm first).

The join is measured on the path intake takes: an asyncio connection (asyncpg through SQLAlchemy) in
the case's own transaction, the case kept by service.storage.intake.keep_case and its cluster joined
by service.clustering.refresh_cluster_on, alerts on, as service.reporting does for a repeat case.

    .venv/bin/python bench/clusters.py [--cases 100000] [--joins 200] [--pages 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time

import sqlalchemy as sa
from _harness import Target, print_rows

from devsupport.postgres import PostgresServer
from devsupport.processes import postgres_cpu_seconds
from service.cli import upgrade_database
from service.clustering import refresh_cluster_on
from service.domain.identifiers import IdentifierType, NormalizedIdentifier
from service.settings import Settings
from service.storage.clusters import list_clusters
from service.storage.database import (
    create_async_database_engine,
    create_database_engine,
    session_scope,
    write_transaction,
)
from service.storage.intake import CaseToKeep, keep_case
from service.storage.models import utc_now

NETWORK_SIZE = 5  # cases per seeded cluster, joined by one MTCN

SEED = """
INSERT INTO "case" (reference, reporter_token_sha256, status, version, priority, police_force, flags, next_steps,
                    submission, created_at, updated_at, victim_was_under_18)
SELECT 'C' || lpad(i::text, 11, '0') || 'X', md5(i::text), 'received', 1, 'normal',
       (ARRAY['north-yorkshire', 'west-yorkshire', 'cleveland'])[1 + i % 3], '[]'::jsonb, '[]'::jsonb,
       jsonb_build_object('reporter', jsonb_build_object('relationship', 'self'), 'account', 'Synthetic ' || i),
       now() - (i || ' minutes')::interval, now(), i % 11 = 0
FROM generate_series(1, CAST(:cases AS bigint)) AS i;
INSERT INTO identifier (case_id, type, value, normalized, created_at)
SELECT id, 'mtcn', lpad((id / :size)::text, 10, '0'), lpad((id / :size)::text, 10, '0'), now() FROM "case";
INSERT INTO cluster (id, size, created_at, updated_at)
SELECT DISTINCT id / :size + 1, 0, now(), now() FROM "case";
INSERT INTO cluster_member (case_id, cluster_id, police_force, child_victim, money, reported_at, duplicate)
SELECT id, id / :size + 1, police_force, victim_was_under_18,
       jsonb_build_object('GBP', (id % 500)::text), created_at, false FROM "case";
INSERT INTO cluster_force (cluster_id, police_force, cases, victims, child_victims, money, first_seen, last_seen)
SELECT cluster_id, police_force, count(*), count(*), count(*) FILTER (WHERE child_victim),
       jsonb_build_object('GBP', sum((money->>'GBP')::numeric)::text), min(reported_at), max(reported_at)
FROM cluster_member GROUP BY cluster_id, police_force;
UPDATE cluster SET size = counted.n, victims = counted.n, child_victims = counted.children, money = counted.money,
       first_seen = counted.first_seen, last_seen = counted.last_seen
FROM (SELECT cluster_id, sum(cases) AS n, sum(child_victims) AS children,
             jsonb_build_object('GBP', sum((money->>'GBP')::numeric)::text) AS money,
             min(first_seen) AS first_seen, max(last_seen) AS last_seen
      FROM cluster_force GROUP BY cluster_id) AS counted
WHERE cluster.id = counted.cluster_id;
SELECT setval(pg_get_serial_sequence('cluster', 'id'), (SELECT max(id) + 1 FROM cluster));
ANALYZE;
"""


# GET /v1/clusters' first page for a key that sees every force, and for keys limited to some.
PAGE_SCOPES = {
    "clusters first page": None,
    "  for a key of one force": ("cleveland",),
    "  for a key of two forces": ("cleveland", "west-yorkshire"),
}


class CpuMeter:
    """CPU per run from /proc, this process and every PostgreSQL process: unlike latency, it barely
    moves with the load others put on the machine."""

    def __init__(self, data_dir) -> None:
        self.data_dir = data_dir
        self.spent: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def measure(self, name: str):
        database = postgres_cpu_seconds(self.data_dir)  # reading /proc is CPU too: kept outside the client's
        client = time.process_time()
        yield
        client = time.process_time() - client
        spent = self.spent.setdefault(name, [0.0, 0.0, 0])
        spent[0] += client
        spent[1] += postgres_cpu_seconds(self.data_dir) - database
        spent[2] += 1

    def per_run(self, name: str) -> tuple[str, str]:
        client, database, runs = self.spent[name]
        return f"{client * 1000 / runs:.2f}", f"{database * 1000 / runs:.2f}"


def repeat_case(number: int, mtcn: str, now) -> CaseToKeep:
    """The rows intake keeps for a repeat case before it joins its cluster: the case, its identifier and
    its audit row (no flags: how many a case has is not what is measured)."""
    return CaseToKeep(
        case_row={
            "reference": f"J{number:011d}X",
            "reporter_token_sha256": os.urandom(32).hex(),
            "submitted_by_key_id": None,
            "status": "received",
            "priority": "high",
            "police_force": "cleveland",
            "flags": [],
            "next_steps": [],
            "submission": {"reporter": {"relationship": "self"}, "account": f"Synthetic {number}"},
            "created_at": now,
            "updated_at": now,
            "victim_was_under_18": False,
        },
        identifiers=[NormalizedIdentifier(IdentifierType.mtcn, mtcn, mtcn)],
        evidence_rows=[],
        audit_row={"at": now, "actor": "bench", "action": "case.create", "request_id": f"bench-{number}"},
        alert_payload=None,
        submitted_by_live_key=None,
    )


async def join_repeat_cases(url: str, options: argparse.Namespace, cpu: CpuMeter) -> tuple[list[float], list[float]]:
    """Each repeat case kept and joined to its network's cluster in one transaction, one after another,
    on a pooled asyncio connection; times the keeping (the baseline) and the joining."""
    engine = create_async_database_engine(url, pool_size=1, max_overflow=0)
    settings = Settings(database_url=url)
    insert_ms, join_ms = [], []
    networks = options.cases // NETWORK_SIZE
    try:
        for number in range(options.joins):
            network = (number * 7919) % networks
            async with engine.connect() as connection, write_transaction(connection):
                now = utc_now()
                started = time.perf_counter()
                case_id = await keep_case(connection, repeat_case(number, f"{network:010d}", now))
                inserted = time.perf_counter()
                # Timed inside the CPU meter: its reads of /proc (every PostgreSQL process's) are no part of it.
                with cpu.measure("join"):
                    joining = time.perf_counter()
                    joined = await refresh_cluster_on(connection, case_id, settings, alerts=True, now=now)
                    done = time.perf_counter()
            assert joined.joined
            insert_ms.append((inserted - started) * 1000)
            join_ms.append((done - joining) * 1000)
    finally:
        await engine.dispose()
    return insert_ms, join_ms


def main(argv: list[str] | None = None) -> list[Target]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--joins", type=int, default=200)
    parser.add_argument("--pages", type=int, default=50)
    options = parser.parse_args(argv)
    with PostgresServer() as postgres:
        url = postgres.create_database("clusters_bench")
        upgrade_database(url)
        engine = create_database_engine(url)
        with engine.begin() as connection:
            for statement in SEED.split(";\n"):
                if statement.strip():
                    connection.execute(sa.text(statement), {"cases": options.cases, "size": NETWORK_SIZE})
        cpu = CpuMeter(postgres.data)
        insert_ms, join_ms = asyncio.run(join_repeat_cases(url, options, cpu))
        page_ms: dict[str, list[float]] = {}
        for name, forces in PAGE_SCOPES.items():
            for _ in range(options.pages):
                with session_scope(engine) as session, cpu.measure(name):
                    started = time.perf_counter()
                    page = list_clusters(session, forces=forces, sort="harm", offset=0, limit=50)
                    page_ms.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            assert len(page) == 50 and page[0].child_victims >= page[-1].child_victims
        engine.dispose()
    join_p50, join_p99 = statistics.median(join_ms), statistics.quantiles(join_ms, n=100)[98]
    page_p99 = statistics.quantiles(page_ms["clusters first page"], n=100)[98]
    insert_p50 = statistics.median(insert_ms)
    rows = [
        ("at " + f"{options.cases:,} cases", "p50 ms", "p99 ms", "runs", "client CPU ms", "PostgreSQL CPU ms"),
        (
            "case + identifier + audit insert (baseline)",
            f"{insert_p50:.1f}",
            f"{statistics.quantiles(insert_ms, n=100)[98]:.1f}",
            str(len(insert_ms)),
            "",
            "",
        ),
        ("joining its cluster", f"{join_p50:.1f}", f"{join_p99:.1f}", str(len(join_ms)), *cpu.per_run("join")),
    ]
    for name, took in page_ms.items():
        quantiles = statistics.quantiles(took, n=100)
        rows.append(
            (name, f"{statistics.median(took):.1f}", f"{quantiles[98]:.1f}", str(len(took)), *cpu.per_run(name))
        )
    print_rows(rows)
    print(f"load average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    return [
        Target("clusters", f"join at intake, p50 at {options.cases:,} cases", join_p50, 5, False, " ms"),
        Target("clusters", "join ÷ case insert (same run)", join_p50 / insert_p50, 1.0, False),
        Target("clusters", "clusters first page p99", page_p99, 200, False, " ms"),
    ]


if __name__ == "__main__":
    main()

"""Clusters at scale on PostgreSQL: what joining a cluster adds to a report at intake, beside the case
insert itself in the same run, and GET /v1/clusters' first page (most harm first).

    .venv/bin/python bench/clusters.py [--cases 100000] [--joins 200] [--pages 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import sqlalchemy as sa
from _harness import Target, print_rows

from devsupport.postgres import PostgresServer
from service.cli import upgrade_database
from service.domain.cases import CaseSubmission
from service.domain.urgency import UrgencyPolicy
from service.storage.cases import create_case
from service.storage.clusters import join_clusters, list_clusters
from service.storage.database import create_database_engine, session_scope
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
UPDATE cluster SET size = counted.n FROM (SELECT cluster_id, count(*) AS n FROM cluster_member GROUP BY cluster_id)
       AS counted WHERE cluster.id = counted.cluster_id;
SELECT setval(pg_get_serial_sequence('cluster', 'id'), (SELECT max(id) + 1 FROM cluster));
ANALYZE;
"""


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
        insert_ms, join_ms = [], []
        networks = options.cases // NETWORK_SIZE
        for number in range(options.joins):
            network = (number * 7919) % networks
            submission = CaseSubmission.model_validate(
                {
                    "reporter": {"relationship": "self"},
                    "account": f"Synthetic bench report {uuid.uuid4().hex}",
                    "identifiers": [{"type": "mtcn", "value": f"{network:010d}"}],
                }
            )
            with session_scope(engine) as session:
                now = utc_now()
                started = time.perf_counter()
                created = create_case(session, submission, submitted_by_key_id=None, now=now, policy=UrgencyPolicy())
                inserted = time.perf_counter()
                joined = join_clusters(session, created.id, now=now, max_image_distance=31)
                done = time.perf_counter()
                session.commit()
                assert joined.joined
            insert_ms.append((inserted - started) * 1000)
            join_ms.append((done - inserted) * 1000)
        page_ms = []
        for _ in range(options.pages):
            with session_scope(engine) as session:
                started = time.perf_counter()
                page = list_clusters(session, forces=None, sort="harm", offset=0, limit=50)
                page_ms.append((time.perf_counter() - started) * 1000)
        assert len(page) == 50 and page[0].child_victims >= page[-1].child_victims
        engine.dispose()
    join_p50, join_p99 = statistics.median(join_ms), statistics.quantiles(join_ms, n=100)[98]
    page_p50, page_p99 = statistics.median(page_ms), statistics.quantiles(page_ms, n=100)[98]
    insert_p50 = statistics.median(insert_ms)
    print_rows(
        [
            ("at " + f"{options.cases:,} cases", "p50 ms", "p99 ms", "runs"),
            (
                "case insert (baseline)",
                f"{insert_p50:.1f}",
                f"{statistics.quantiles(insert_ms, n=100)[98]:.1f}",
                str(len(insert_ms)),
            ),
            ("joining its cluster", f"{join_p50:.1f}", f"{join_p99:.1f}", str(len(join_ms))),
            ("clusters first page", f"{page_p50:.1f}", f"{page_p99:.1f}", str(len(page_ms))),
        ]
    )
    return [
        Target("clusters", f"join at intake, p50 at {options.cases:,} cases", join_p50, 5, False, " ms"),
        Target("clusters", "join ÷ case insert (same run)", join_p50 / insert_p50, 1.0, False),
        Target("clusters", "clusters first page p99", page_p99, 200, False, " ms"),
    ]


if __name__ == "__main__":
    main()

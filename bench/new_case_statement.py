"""Where PostgreSQL's CPU goes when it keeps a new case: the statement that keeps one
(service.storage.intake._KEEP_NEW_CASE), run straight from N asyncpg connections, no app in between,
against a throwaway PostgreSQL with fsync on, in variants: without one of its parts, without an index,
without a foreign key. CPU per case from /proc, split into the backends that ran the statement and
everything else of the server (WAL writer, checkpointer, autovacuum, postmaster).

Each variant gets its own database, copied from one migrated to the newest schema and holding
`--seed-cases` cases (so indexes have depth and the planner statistics), checkpointed, warmed up and
analysed before it is measured; variants run interleaved, `--rounds` times, and the median is printed.
On a shared machine CPU per case moves ±15% between rounds: compare medians of several, and WAL bytes
per case (exact). `--perf PREFIX` records the backends (perf report -i FILE --children --sort sym);
`--explain N` prints EXPLAIN (ANALYZE, BUFFERS, WAL) of N cases: time per part and per foreign key.

    .venv/bin/python bench/new_case_statement.py [--seconds 4] [--connections 4 32] [--rounds 3]
        [--variants all|NAME ...] [--list] [--perf PREFIX] [--explain N] [--processes]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devsupport.postgres import PostgresServer  # noqa: E402
from devsupport.processes import process_cpu_seconds  # noqa: E402
from service.domain.cases import CaseSubmission  # noqa: E402
from service.reporting import Reporter, Reporting  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.storage import intake  # noqa: E402
from service.storage.database import AsyncDatabase  # noqa: E402

ACCOUNT = "Synthetic benchmark account: a video call was recorded and money demanded."
CASE_TEMPLATE = {  # as bench/create_cases.py sends
    "reporter": {"relationship": "self"},
    "victim": {"age_band": "18_24"},
    "account": ACCOUNT,
    "payments": [{"amount": "100", "currency": "GBP", "method": "western_union", "collected": "no"}],
    "identifiers": [
        {"type": "mtcn", "value": "{N}"},
        {"type": "profile_url", "value": "https://www.instagram.com/synthetic.{N}/?igsh=x"},
    ],
}


def _cte(name: str, statement: str) -> str:
    """The statement without one of its CTEs (a part writing rows nothing else reads)."""
    part = rf"\)(\{{\w+\}})?, {name} AS \(.*?\)(?=(?:\{{\w+\}})?(?:, \w+ AS \(|\nSELECT))"
    cut = re.sub(part, lambda found: ")" + (found[1] or ""), statement, count=1, flags=re.S)
    assert cut != statement, name
    return cut


def _without(*names: str):
    def transform(statement: str) -> str:
        for name in names:
            statement = _cte(name, statement)
        return statement  # the parameters only a cut part took are not sent (intake._shape)

    return transform


@dataclass
class Variant:
    name: str
    ddl: list[str] = field(default_factory=list)  # run on the variant's database before warming up
    transform: object = None  # statement -> statement


def _drop_index(index: str) -> Variant:
    return Variant(f"without index {index}", [f"DROP INDEX {index}"])


# The statement as 79940bc kept every new case (every part prepared, used or not), to compare with.
_BEFORE_SHAPES = Path(__file__).parent / "new_case_statement_79940bc.sql"


def _before_shapes() -> str:
    """79940bc's statement with today's parameters: it also wrote a cluster of one, whose member row took
    what the case paid as $26 (a parameter keep_new_case no longer sends: the bench's cases pay 100 GBP),
    and the client request id was $27."""
    paid = """'{{"GBP": "100"}}'::jsonb"""  # braces doubled: intake._shape formats the statement
    return _BEFORE_SHAPES.read_text().replace("$26::jsonb", paid).replace("$27", "$26")


VARIANTS = [
    Variant("as is"),
    Variant(
        "as of 79940bc",
        ddl=[  # its indexes too (migration 0019 made these two partial)
            "DROP INDEX ix_case_police_force_created_at",
            'CREATE INDEX ix_case_police_force_created_at ON "case" (police_force, created_at)',
            "DROP INDEX ix_identifier_handle",
            "CREATE INDEX ix_identifier_handle ON identifier (handle)",
        ],
        transform=lambda _statement: _before_shapes(),
    ),
    Variant("without audit", transform=_without("audit")),
    Variant("without identifiers", transform=_without("identifiers")),
    Variant("without flags", transform=_without("flags")),
    Variant("case only", transform=_without("audit", "identifiers", "flags")),
    Variant("no indexes but keys and the one read", ddl=["SELECT 'filled in at run time'"]),
    Variant("no foreign keys", ddl=["SELECT 'filled in at run time'"]),
]


def _case_to_keep(reporting: Reporting, number: int):
    body = json.loads(json.dumps(CASE_TEMPLATE).replace("{N}", f"{number:010d}"))
    submission = CaseSubmission.model_validate(body)
    reporter = Reporter(actor="key:bench", key_id="bench", request_id=f"r{number:030d}")
    from service.storage.models import utc_now

    return reporting._decide(submission, [], reporter, utc_now(), shared=[]).case


def _postmaster(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().split()[0])


def _children(postmaster: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == postmaster:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _cpu_by_process(postmaster: int) -> dict[int, float]:
    cpu = {postmaster: process_cpu_seconds(postmaster, with_reaped_children=True)}
    for pid in _children(postmaster):
        try:
            cpu[pid] = process_cpu_seconds(pid)
        except OSError:
            continue
    return cpu


@dataclass
class Measured:
    cases: int
    backend_ms: float  # per case, the connections' own backends
    other_ms: float  # per case, every other process of the server
    wal_bytes: float  # per case
    fpi: float  # full-page images per case
    others: dict[str, float]  # per case, by process title

    @property
    def total_ms(self) -> float:
        return self.backend_ms + self.other_ms


async def _run(
    server: PostgresServer, database: str, statement: str, cases_to_keep, connections: int, seconds, perf=None
):
    dsn = f"postgresql://postgres@127.0.0.1:{server.port}/{database}"
    pool = [await asyncpg.connect(dsn) for _ in range(connections)]
    backends = {await c.fetchval("SELECT pg_backend_pid()") for c in pool}
    original = intake._KEEP_NEW_CASE
    intake._KEEP_NEW_CASE = statement
    cases = 0

    async def keep_cases(connection, until):
        nonlocal cases
        while time.monotonic() < until:
            outcome = await intake.keep_new_case(connection, next(cases_to_keep), None)
            assert outcome.case_id is not None, outcome
            cases += 1

    try:
        # Each run starts one checkpoint behind, as a server is at some point of every checkpoint interval:
        # the warm-up pays for the first changes of the pages every case touches (full-page images).
        await pool[0].execute("CHECKPOINT")
        await asyncio.gather(*(keep_cases(c, time.monotonic() + 1.0) for c in pool))  # warm-up: prepared
        await pool[0].execute("ANALYZE")
        await pool[0].execute("SELECT pg_stat_reset_shared('wal')")
        postmaster = _postmaster(server.data)
        cases = 0
        wal_before = await pool[0].fetchval("SELECT pg_current_wal_insert_lsn()")
        cpu_before = _cpu_by_process(postmaster)
        profiler = None
        if perf:  # where the backends' CPU goes, by function: perf report -i FILE --sort sym
            pids = ",".join(str(pid) for pid in backends)
            command = ["perf", "record", "-q", "-F", "1999", "-g", "-p", pids, "-o", perf]
            profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.gather(*(keep_cases(c, time.monotonic() + seconds) for c in pool))
        cpu_after = _cpu_by_process(postmaster)
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait()
        wal_after = await pool[0].fetchval("SELECT pg_current_wal_insert_lsn()")
        wal = await pool[0].fetchval("SELECT pg_wal_lsn_diff($1, $2)", wal_after, wal_before)
        fpi = await pool[0].fetchval("SELECT wal_fpi FROM pg_stat_wal")
    finally:
        intake._KEEP_NEW_CASE = original
        for c in pool:
            await c.close()
    backend = sum(cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in backends if pid in cpu_after)
    others: dict[str, float] = {}
    for pid, after in cpu_after.items():
        if pid in backends:
            continue
        title = "postmaster+reaped" if pid == postmaster else re.sub(r"^postgres: ", "", _cmdline(pid))
        title = re.sub(r" \d+\.\d+\.\d+\.\d+\(\d+\).*", " (other backend)", title)
        others[title] = others.get(title, 0.0) + (after - cpu_before.get(pid, 0.0)) * 1000 / cases
    other = sum(others.values())
    return Measured(cases, backend * 1000 / cases, other, float(wal) / cases, fpi / cases, others)


def _setup(server: PostgresServer) -> str:
    """A database at the newest schema: the template of every variant's."""
    url = server.create_database("intake_template")
    environment = {**os.environ, "INTAKE_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "service.cli", "db", "upgrade"],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
    )
    return url


async def _seed(server: PostgresServer, first: object, count: int) -> None:
    """The bench's key, and `count` cases as the statement writes them (copies of `first`, kept by the
    statement itself, with their own references, tokens and identifiers), so that tables and indexes
    have a running service's depth and the planner its statistics: on near-empty tables the probe for
    shared identifiers is planned as a sequential scan, which no deployment does."""
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/intake_template")
    await connection.execute(
        "INSERT INTO api_key (id, name, role, secret_sha256, created_at) "
        "VALUES ('bench', 'bench', 'submitter', repeat('0', 64), now())"
    )
    assert (await intake.keep_new_case(connection, first, None)).case_id == 1
    await connection.execute(
        """
        INSERT INTO "case" (reference, reporter_token_sha256, submitted_by_key_id, status, priority, police_force,
                            flags, next_steps, submission, created_at, updated_at, victim_was_under_18)
        SELECT upper(substr(md5('r' || g), 1, 12)), md5('t' || g) || md5('u' || g), submitted_by_key_id, status,
               priority, police_force, flags, next_steps, submission, created_at - g * interval '1 minute',
               updated_at - g * interval '1 minute', victim_was_under_18
        FROM "case", generate_series(1, $1) AS g WHERE id = 1 ORDER BY g DESC;
        INSERT INTO case_flag (case_id, code)
        SELECT c.id, f.code FROM "case" c, case_flag f WHERE c.id > 1 AND f.case_id = 1;
        INSERT INTO identifier (case_id, type, value, normalized, platform, handle, created_at)
        SELECT c.id, i.type, i.value || c.id, i.normalized || '#seed' || c.id, i.platform, i.handle || c.id,
               c.created_at
        FROM "case" c, identifier i WHERE c.id > 1 AND i.case_id = 1 ORDER BY c.id;
        INSERT INTO audit_event (at, actor, action, case_id, request_id, client_request_id)
        SELECT c.created_at, a.actor, a.action, c.id, md5(c.id::text), a.client_request_id
        FROM "case" c, audit_event a WHERE c.id > 1 AND a.case_id = 1 ORDER BY c.id;
        """.replace("$1", str(count - 1))
    )
    await connection.execute("VACUUM ANALYZE")
    await connection.close()


async def _prepare(server: PostgresServer, name: str, variant: Variant) -> None:
    admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE intake_template STRATEGY FILE_COPY')
    await admin.close()
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/{name}")
    for ddl in await _ddl(connection, variant):
        await connection.execute(ddl)
    await connection.execute("VACUUM ANALYZE")  # a new database has no statistics: else autovacuum runs at once
    await connection.close()


_WRITTEN = ("case", "case_flag", "identifier", "audit_event", "cluster", "cluster_member", "webhook_delivery")


async def _ddl(connection, variant: Variant) -> list[str]:
    if variant.name == "no indexes but keys and the one read":
        rows = await connection.fetch(
            "SELECT i.indexrelid::regclass::text AS name FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relname = ANY($1) AND NOT i.indisprimary AND NOT i.indisunique "
            "AND i.indexrelid::regclass::text <> 'ix_identifier_normalized'",  # the statement reads it
            list(_WRITTEN),
        )
        return [f"DROP INDEX {row['name']}" for row in rows]
    if variant.name == "no foreign keys":
        rows = await connection.fetch(
            "SELECT conrelid::regclass::text AS t, conname FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid::regclass::text = ANY($1)",
            [f'"{name}"' if name == "case" else name for name in _WRITTEN],
        )
        return [f"ALTER TABLE {row['t']} DROP CONSTRAINT {row['conname']}" for row in rows]
    return variant.ddl


async def _explain(server: PostgresServer, cases_to_keep, count: int) -> None:
    """Where one statement's time goes, from EXPLAIN (ANALYZE, BUFFERS, WAL) of `count` new cases on one
    connection: each foreign key's checks (their trigger time) and each part's rows, buffers and WAL."""
    await _prepare(server, "explained", Variant("as is"))
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/explained")
    await connection.execute("ANALYZE")
    triggers: dict[str, list[float]] = {}
    parts: dict[str, list[float]] = {}
    totals: dict[str, list[float]] = {}
    for _ in range(count):
        found = []

        async def fetchrow(sql, *parameters, found=found):
            found.append(await connection.fetchval("EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) " + sql, *parameters))
            return {"key_live": True, "case_id": 1, "repeats_identifiers": False}

        class Explaining:  # the statement's own parameters, as keep_new_case sends them
            pass

        explaining = Explaining()
        explaining.fetchrow = fetchrow
        await intake.keep_new_case(explaining, next(cases_to_keep), None)
        plan = json.loads(found[0])[0]
        for trigger in plan.get("Triggers", []):
            triggers.setdefault(trigger["Trigger Name"], []).append(trigger["Time"] / max(trigger["Calls"], 1))
            triggers.setdefault(trigger["Trigger Name"] + " calls", []).append(trigger["Calls"])
        for key in ("Planning Time", "Execution Time"):
            totals.setdefault(key, []).append(plan[key])
        totals.setdefault("WAL Bytes", []).append(plan["Plan"].get("WAL Bytes", 0))
        for node in plan["Plan"].get("Plans", []):
            if node.get("Subplan Name", "").startswith("CTE"):
                name = node["Subplan Name"]
                parts.setdefault(name + " ms", []).append(node.get("Actual Total Time", 0.0))
                parts.setdefault(name + " WAL B", []).append(node.get("WAL Bytes", 0))
    names = dict(
        await connection.fetch(
            "SELECT t.tgname, c.conrelid::regclass::text || ' ' || c.conname FROM pg_trigger t "
            "JOIN pg_constraint c ON c.oid = t.tgconstraint"
        )
    )
    triggers = {re.sub(r"^(\w+)", lambda m: names.get(m[1], m[1]), name): v for name, v in triggers.items()}
    await connection.close()
    print(f"EXPLAIN (ANALYZE, BUFFERS, WAL) of {count} new cases on one connection, median per case")
    for name, values in {**totals, **parts, **triggers}.items():
        print(f"  {name:<50} {statistics.median(values):>9.3f}")


async def _index_variants(server: PostgresServer) -> list[Variant]:
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/intake_template")
    rows = await connection.fetch(
        "SELECT i.indexrelid::regclass::text AS name FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
        "WHERE t.relname = ANY($1) AND NOT i.indisprimary ORDER BY 1",
        list(_WRITTEN),
    )
    fks = await connection.fetch(
        "SELECT conrelid::regclass::text AS t, conname FROM pg_constraint WHERE contype = 'f' "
        "AND conrelid::regclass::text = ANY($1) ORDER BY 2",
        [f'"{name}"' if name == "case" else name for name in _WRITTEN],
    )
    await connection.close()
    return [_drop_index(row["name"]) for row in rows] + [
        Variant(f"without fk {row['conname']}", [f"ALTER TABLE {row['t']} DROP CONSTRAINT {row['conname']}"])
        for row in fks
    ]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, nargs="+", default=[4, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", type=int, default=40_000, help="decided beforehand: more than one run keeps")
    parser.add_argument("--variants", nargs="+", default=["as is", "without audit", "without identifiers"])
    parser.add_argument("--list", action="store_true", help="the variants there are")
    parser.add_argument("--seed-cases", type=int, default=50_000, help="cases in every table before the run")
    parser.add_argument("--perf", metavar="PREFIX", help="perf record the backends into PREFIX-<variant>-c<N>")
    parser.add_argument("--explain", type=int, metavar="CASES", help="EXPLAIN ANALYZE this many cases instead")
    parser.add_argument("--processes", action="store_true", help="also the other processes' CPU, by title")
    args = parser.parse_args(argv)

    with PostgresServer(fsync=True) as server:
        _setup(server)
        reporting = Reporting(AsyncDatabase(server.url("intake_template")), Settings())
        every = VARIANTS + await _index_variants(server)
        if args.explain:
            decided = [_case_to_keep(reporting, number) for number in range(1, args.explain + 2)]
            await _seed(server, decided.pop(), args.seed_cases)
            await _explain(server, iter(decided), args.explain)
            return
        if args.list:
            for variant in every:
                print(variant.name)
            return
        chosen = every if args.variants == ["all"] else [v for v in every if v.name in args.variants]
        missing = set(args.variants) - {v.name for v in chosen} - {"all"}
        if missing:
            raise SystemExit(f"no such variant: {sorted(missing)}; --list shows them")
        # Decided beforehand, so the client's CPU is not shared with the server's during the run; every
        # variant's database is new, so each keeps the same cases.
        decided = [_case_to_keep(reporting, number) for number in range(1, args.cases + 1)]
        await _seed(server, decided.pop(), args.seed_cases)
        results = await _measure(server, chosen, decided, args)
        _print(results, args)


async def _measure(server: PostgresServer, chosen: list[Variant], decided: list, args) -> dict:
    results: dict[tuple[str, int], list[Measured]] = {}
    for round_number in range(args.rounds):
        for variant in chosen:
            for connections in args.connections:
                name = f"v{round_number}_{abs(hash(variant.name)) % 10**8}_{connections}"
                await _prepare(server, name, variant)
                statement = (variant.transform or (lambda s: s))(intake._KEEP_NEW_CASE)
                perf = args.perf and f"{args.perf}-{re.sub(r'[^a-z0-9]+', '_', variant.name)}-c{connections}"
                measured = await _run(server, name, statement, iter(decided), connections, args.seconds, perf)
                results.setdefault((variant.name, connections), []).append(measured)
                print(
                    f"  round {round_number + 1} {variant.name:<45} c{connections:<3} {measured.cases:>6} cases "
                    f"backend {measured.backend_ms:.3f} other {measured.other_ms:.3f} ms/case",
                    file=sys.stderr,
                )
    return results


def _print(results: dict[tuple[str, int], list[Measured]], args: argparse.Namespace) -> None:
    print(
        f"PostgreSQL CPU ms per new case, {args.seconds:g}s x {args.rounds} interleaved rounds, median "
        f"(fsync on, load {' '.join(Path('/proc/loadavg').read_text().split()[:3])})"
    )
    print(f"{'variant':<45} {'conns':>5} {'total':>7} {'backend':>8} {'other':>7} {'WAL B':>7} {'FPI':>6}")
    for (name, connections), rows in results.items():
        print(
            f"{name:<45} {connections:>5} {statistics.median(r.total_ms for r in rows):>7.3f} "
            f"{statistics.median(r.backend_ms for r in rows):>8.3f} "
            f"{statistics.median(r.other_ms for r in rows):>7.3f} "
            f"{statistics.median(r.wal_bytes for r in rows):>7.0f} {statistics.median(r.fpi for r in rows):>6.2f}"
        )
        if args.processes:
            titles = sorted({title for row in rows for title in row.others})
            for title in titles:
                value = statistics.median(row.others.get(title, 0.0) for row in rows)
                if value >= 0.001:
                    print(f"    {title[:60]:<60} {value:.3f}")


if __name__ == "__main__":
    asyncio.run(main())

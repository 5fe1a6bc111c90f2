"""Cases per second for POST /v1/cases (PostgreSQL with fsync on, one uvicorn worker), as a ratio to
the least a durable intake can do, measured in the same run: bench/floor_app.py, one INSERT and COMMIT
over async psycopg. Also p50/p99 at 4 and 32 connections, with and without Idempotency-Key, a 10%
repeat-case mix, the HTML form and multipart bodies, and CPU per case of the app and of PostgreSQL.

Identifiers are new in every run (a random base, then a counter), and wrk's Lua random is seeded, so
running it twice on one database measures the same thing twice; repeat cases come only from the mix.

Rates and latencies move with whatever else the machine is doing; CPU milliseconds per case, read from
/proc for the app's process and for every PostgreSQL process, do not, and are the figures to compare.

    .venv/bin/python bench/create_cases.py [--seconds 10] [--connections 32] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import httpx
from _harness import (
    Numbering,
    Result,
    Target,
    analyze,
    load,
    load_parser,
    print_rows,
    require_wrk,
    submitter_authorization,
)

from devsupport.postgres import PostgresServer
from devsupport.processes import postgres_cpu_by_kind, process_cpu_seconds
from devsupport.servers import UNLIMITED_ENVIRONMENT, start_uvicorn

ACCOUNT = "Synthetic benchmark account: a video call was recorded and money demanded."
CASE_TEMPLATE = json.dumps(
    {
        "reporter": {"relationship": "self"},
        "victim": {"age_band": "18_24"},
        "account": ACCOUNT,
        "payments": [{"amount": "100", "currency": "GBP", "method": "western_union", "collected": "no"}],
        "identifiers": [
            {"type": "mtcn", "value": "{N}"},
            {"type": "profile_url", "value": "https://www.instagram.com/synthetic.{N}/?igsh=x"},
        ],
    }
)
FORM_FIELDS = [
    ("reporter.relationship", "self"),
    ("victim.age_band", "18_24"),
    ("account", ACCOUNT),
    ("payment.amount", "100"),
    ("payment.currency", "GBP"),
    ("payment.method", "western_union"),
    ("payment.collected", "no"),
    ("mtcn", "{N}"),
    ("profile_url", "https://www.instagram.com/synthetic.{N}/?igsh=x"),
]
FORM_TEMPLATE = urlencode(FORM_FIELDS).replace("%7BN%7D", "{N}")
BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"
MULTIPART_TEMPLATE = (
    "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in FORM_FIELDS
    )
    + f"--{BOUNDARY}--\r\n"
)
JSON_HEADERS = {"Content-Type": "application/json"}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
REPEAT_POOL = 50
NUMBERS_PER_ROUND = 10_000_000


@dataclass
class Measured:
    result: Result
    connections: int
    app_cpu_ms: float | None  # per request
    db_cpu_ms: float | None  # every PostgreSQL process
    db_split_ms: dict[str, float] | None = None  # backends (the statements), autovacuum, background


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = load_parser()  # --connections is the high concurrency; the low one is 4
    parser.add_argument("--seed", type=int, default=1, help="seeds wrk's Lua random (which requests repeat)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="every row this many times, interleaved; each ratio is taken against the floor of its own round, "
        "and the median of each figure is printed",
    )
    parser.add_argument("--quick", action="store_true", help="only JSON at the high concurrency, and the floor")
    parser.add_argument(
        "--repeat-pool",
        type=int,
        default=REPEAT_POOL,
        help="how many earlier cases the repeat mix's repeat cases share identifiers with",
    )
    parser.add_argument(
        "--only",
        choices=("repeats",),
        help="repeats: only the floor, JSON and the 10%% repeat mix at the high concurrency (the repeat path)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Target]:
    args = options(argv)
    require_wrk()
    run_base = secrets.randbelow(9_000_000_000)  # fresh identifiers in every run, even on one database
    rounds = iter(range(1, 1000))

    def numbering(repeat_fraction: float = 0.0, idempotent: bool = False) -> Numbering:
        round_number = next(rounds)
        return Numbering(
            first=run_base + round_number * NUMBERS_PER_ROUND,
            seed=args.seed,
            repeat_fraction=repeat_fraction,
            repeat_first=run_base,
            repeat_pool=args.repeat_pool,
            idempotency_prefix=f"bench-{run_base}-{round_number}-" if idempotent else "",
        )

    with PostgresServer(fsync=True) as postgres:
        environment = {
            "INTAKE_DATABASE_URL": postgres.create_database("bench"),
            "INTAKE_LOG_LEVEL": "WARNING",
            "INTAKE_DATABASE_POOL_SIZE": "20",
            **UNLIMITED_ENVIRONMENT,
        }
        auth = submitter_authorization(environment)

        floor_url = postgres.create_database("floor").replace("postgresql+psycopg", "postgresql")
        echo, echo_base = start_uvicorn("bench.echo_app:app", {})
        floor, floor_base = start_uvicorn("bench.floor_app:app", {"FLOOR_DATABASE_URL": floor_url})
        intake, intake_base = start_uvicorn("service.app:create_app", environment, factory=True)

        def measure(name, process, url, connections, *, headers, template, numbered=None, database=True):
            wait_until_idle(process.pid)
            app_before = process_cpu_seconds(process.pid)
            db_before = postgres_cpu_by_kind(postgres.data)
            result = load(
                name,
                url,
                method="POST",
                body_template=template,
                headers=headers,
                connections=connections,
                seconds=args.seconds,
                expected_status=201,
                numbering=numbered or numbering(),
            )
            app_ms = (process_cpu_seconds(process.pid) - app_before) * 1000 / max(result.requests, 1)
            db_after = postgres_cpu_by_kind(postgres.data)
            db_split = {kind: (db_after[kind] - db_before[kind]) * 1000 / max(result.requests, 1) for kind in db_after}
            if not database:
                return Measured(result, connections, app_ms, None)
            return Measured(result, connections, app_ms, sum(db_split.values()), db_split)

        high, low = args.connections, 4
        cases_url = intake_base + "/v1/cases"
        json_auth = {**JSON_HEADERS, **auth}

        try:
            warm_up(
                args,
                run_base,
                numbering,
                (floor_base + "/floor", cases_url),
                json_auth,
                lambda: (analyze(environment["INTAKE_DATABASE_URL"]), analyze(floor_url)),
            )
            processes = (echo, echo_base, floor, floor_base, intake, cases_url)
            servers = Servers(measure, numbering, run_base, auth, processes)
            every_round = [one_round(round_index, args, servers) for round_index in range(args.rounds)]
        finally:
            for process in (echo, floor, intake):
                process.terminate()
                process.wait()

    return report(every_round, args, high, low)


@dataclass(frozen=True)
class Servers:
    """What a round measures with: main's measuring, numbering and servers."""

    measure: Callable[..., Measured]
    numbering: Callable[..., Numbering]
    first_pool: int  # the earlier cases the warm-up made for the first round's repeats
    auth: dict
    processes: tuple


def one_round(round_index: int, args: argparse.Namespace, servers: Servers) -> dict[str, Measured]:
    """Every row once: the floor beside the rows measured against it."""
    measure, numbering, auth = servers.measure, servers.numbering, servers.auth
    echo, echo_base, floor, floor_base, intake, cases_url = servers.processes
    high, low = args.connections, 4
    json_auth = {**JSON_HEADERS, **auth}
    rows: dict[str, Measured] = {}
    levels = (high,) if args.quick or args.only else (low, high)
    rows["echo"] = measure(
        "bare FastAPI POST echo",
        echo,
        echo_base + "/echo",
        high,
        headers=JSON_HEADERS,
        template=CASE_TEMPLATE,
        database=False,
    )
    for connections in levels:
        rows[f"floor c{connections}"] = measure(
            "floor: one INSERT+COMMIT, async psycopg",
            floor,
            floor_base + "/floor",
            connections,
            headers=JSON_HEADERS,
            template=CASE_TEMPLATE,
        )
        rows[f"json c{connections}"] = measure(
            "POST /v1/cases JSON", intake, cases_url, connections, headers=json_auth, template=CASE_TEMPLATE
        )
        if args.quick or args.only:
            continue
        rows[f"idempotent c{connections}"] = measure(
            "POST /v1/cases JSON, Idempotency-Key",
            intake,
            cases_url,
            connections,
            headers=json_auth,
            template=CASE_TEMPLATE,
            numbered=numbering(idempotent=True),
        )
    if not args.quick:
        # Earlier cases of the round's own, so its repeats flag unflagged cases as the first round's do.
        pool_first = servers.first_pool
        if round_index > 0:
            pool_first = numbering().first
            report_cases(cases_url, json_auth, range(pool_first, pool_first + args.repeat_pool))
        rows[f"repeats c{high}"] = measure(
            "POST /v1/cases JSON, 10% repeat cases",
            intake,
            cases_url,
            high,
            headers=json_auth,
            template=CASE_TEMPLATE,
            numbered=replace(numbering(repeat_fraction=0.10), repeat_first=pool_first),
        )
    if not args.quick and not args.only:
        rows[f"form c{high}"] = measure(
            "POST /v1/cases urlencoded form",
            intake,
            cases_url,
            high,
            headers={**FORM_HEADERS, **auth},
            template=FORM_TEMPLATE,
        )
        rows[f"multipart c{high}"] = measure(
            "POST /v1/cases multipart, no files",
            intake,
            cases_url,
            high,
            headers={**MULTIPART_HEADERS, **auth},
            template=MULTIPART_TEMPLATE,
        )
    return rows


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _median_row(measured: list[Measured]) -> Measured:
    """Each figure's median over the rounds (requests and errors added up)."""
    first = measured[0]
    result = Result(
        first.result.name,
        _median([m.result.per_second for m in measured]),
        _median([m.result.p50_ms for m in measured]),
        _median([m.result.p99_ms for m in measured]),
        sum(m.result.requests for m in measured),
        sum(m.result.errors for m in measured),
    )
    db_cpu = None if first.db_cpu_ms is None else _median([m.db_cpu_ms for m in measured])
    split = None
    if first.db_split_ms is not None:
        split = {kind: _median([m.db_split_ms[kind] for m in measured]) for kind in first.db_split_ms}
    return Measured(result, first.connections, _median([m.app_cpu_ms for m in measured]), db_cpu, split)


def report_cases(cases_url: str, headers: dict, numbers: range) -> None:
    """One JSON case per number, one after another: the earlier cases a repeat mix repeats."""
    for number in numbers:
        body = CASE_TEMPLATE.replace("{N}", f"{number % 10**10:010d}")
        httpx.post(cases_url, content=body, headers=headers).raise_for_status()


def warm_up(args: argparse.Namespace, run_base: int, numbering, urls: tuple[str, str], auth: dict, analyzed) -> None:
    """The earlier cases the repeat mix repeats, then steady state, as a running service is: every pooled
    connection open, its statements prepared and its types read (asyncpg does that once per connection),
    their plans made for the tables as they are, the key cache warm.

    A repeat case is kept in a transaction on connections of their own (SQLAlchemy's pool), which new
    cases alone leave unopened: the warm-up repeats earlier cases of its own, half its requests, so each
    pooled connection has run each of the transaction's statements more than the five times after which
    PostgreSQL keeps a prepared statement's generic plan instead of planning it at every execution. Then
    `analyzed` brings the planner's statistics up to the rows written, which throws every prepared plan
    away, and a second, shorter pass makes them again."""
    floor_url, cases_url = urls
    warm_up_pool = run_base + args.repeat_pool
    report_cases(cases_url, auth, range(run_base, warm_up_pool + args.repeat_pool))
    for seconds in (2, 1):
        repeating = replace(numbering(), repeat_fraction=0.5, repeat_first=warm_up_pool)
        for url, headers, numbered in (
            (floor_url, JSON_HEADERS, numbering()),
            (cases_url, auth, numbering()),
            (cases_url, auth, repeating),
        ):
            load(
                "warm-up",
                url,
                method="POST",
                body_template=CASE_TEMPLATE,
                headers=headers,
                connections=args.connections,
                seconds=seconds,
                expected_status=201,
                numbering=numbered,
            )
        if seconds == 2:
            analyzed()


def wait_until_idle(pid: int, seconds: float = 10.0) -> None:
    """Until the server has finished what the previous load left in flight (wrk stops sending, not the
    server working): else that work is charged to the next row, in CPU and in rate."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = process_cpu_seconds(pid)
        time.sleep(0.2)
        if process_cpu_seconds(pid) - before < 0.01:
            return


def report(every_round: list[dict[str, Measured]], args: argparse.Namespace, high: int, low: int) -> list[Target]:
    # A ratio is taken within its round (against the floor measured beside it), then the median over the
    # rounds: the machine's speed drifts over a run, and a floor from minutes before flatters or wrongs it.
    def round_ratio(rows: dict[str, Measured], key: str, baseline: str | None = None) -> float:
        baseline = baseline or f"floor c{rows[key].connections}"
        return rows[key].result.per_second / rows[baseline].result.per_second

    rows = {key: _median_row([one[key] for one in every_round]) for key in every_round[0]}

    def ratio(key: str, baseline: str | None = None) -> float:
        return _median([round_ratio(one, key, baseline) for one in every_round])

    table = [
        (
            "what",
            "conns",
            "cases/s",
            "÷ floor",
            "p50 ms",
            "p99 ms",
            "app CPU ms",
            "PG CPU ms",
            "backends/av/bg",
            "n",
            "errors",
        )
    ]
    for key, measured in rows.items():
        result = measured.result
        table.append(
            (
                result.name,
                str(measured.connections),
                f"{result.per_second:.0f}",
                f"{ratio(key):.2f}" if not key.startswith("echo") else "-",
                f"{result.p50_ms:.1f}",
                f"{result.p99_ms:.1f}",
                f"{measured.app_cpu_ms:.2f}",
                f"{measured.db_cpu_ms:.2f}" if measured.db_cpu_ms is not None else "-",
                "/".join(f"{value:.2f}" for value in measured.db_split_ms.values()) if measured.db_split_ms else "-",
                str(result.requests),
                str(result.errors),
            )
        )
    print(
        f"wrk, {args.seconds}s each, {args.rounds} interleaved rounds (medians), one uvicorn worker per server,"
        " PostgreSQL fsync on; CPU per request from /proc"
    )
    print(
        "PG CPU ms = backends (the connections' statements) + av (autovacuum workers: far more often on a"
        " bench's young database than on a deployment's) + bg (WAL writer, checkpointer, ended processes)"
    )
    print_rows(table)
    json_high = rows[f"json c{high}"]
    targets = [
        Target("create_cases", f"JSON cases/s ÷ floor, c{high}", ratio(f"json c{high}"), 0.45),
        Target(
            "create_cases", "app CPU per case (JSON)", json_high.app_cpu_ms, 1.0, higher_is_better=False, unit=" ms"
        ),
        Target("create_cases", "PostgreSQL CPU per case", json_high.db_cpu_ms, 0.5, higher_is_better=False, unit=" ms"),
        Target(
            "create_cases", f"p99 of JSON, c{high}", json_high.result.p99_ms, 100, higher_is_better=False, unit=" ms"
        ),
    ]
    if args.only == "repeats":
        targets.append(Target("create_cases", f"10% repeat cases ÷ floor, c{high}", ratio(f"repeats c{high}"), 0.30))
    elif not args.quick:
        targets += [
            Target("create_cases", f"with Idempotency-Key ÷ floor, c{high}", ratio(f"idempotent c{high}"), 0.30),
            Target("create_cases", f"10% repeat cases ÷ floor, c{high}", ratio(f"repeats c{high}"), 0.30),
            Target(
                "create_cases",
                f"p99 of JSON, c{low}",
                rows[f"json c{low}"].result.p99_ms,
                10,
                higher_is_better=False,
                unit=" ms",
            ),
            Target("create_cases", "urlencoded form ÷ JSON", ratio(f"form c{high}", f"json c{high}"), 0.8),
            Target(
                "create_cases",
                "multipart, no files ÷ JSON",
                ratio(f"multipart c{high}", f"json c{high}"),
                0.8,
            ),
        ]
    print_rows([("bench", "measure", "measured", "target", ""), *(target.row() for target in targets)])
    return targets


if __name__ == "__main__":
    main()

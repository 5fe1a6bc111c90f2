"""Cases per second for POST /v1/cases (JSON, two identifiers, PostgreSQL with fsync on), next to
a bare FastAPI JSON echo measured in the same run on the same machine; the ratio and p99.

    .venv/bin/python bench/create_cases.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import json
import subprocess
import sys

from _harness import ROOT, Target, load, load_options, print_table, require_wrk

from devsupport.postgres import PostgresServer
from devsupport.servers import UNLIMITED_ENVIRONMENT, start_uvicorn

CASE_TEMPLATE = json.dumps(
    {
        "reporter": {"relationship": "self"},
        "victim": {"age_band": "18_24"},
        "account": "Synthetic benchmark account: a video call was recorded and money demanded.",
        "payments": [{"amount": "100", "currency": "GBP", "method": "western_union", "collected": "no"}],
        "identifiers": [
            {"type": "mtcn", "value": "{N}"},
            {"type": "profile_url", "value": "https://www.instagram.com/synthetic.{N}/?igsh=x"},
        ],
    }
)
JSON_HEADERS = {"Content-Type": "application/json"}


def main(argv: list[str] | None = None) -> list[Target]:
    args = load_options(argv)
    require_wrk()

    with PostgresServer(fsync=True) as postgres:
        environment = {
            "INTAKE_DATABASE_URL": postgres.create_database("bench"),
            "INTAKE_LOG_LEVEL": "WARNING",
            "INTAKE_DATABASE_POOL_SIZE": "20",
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

        floor_url = postgres.create_database("floor").replace("postgresql+psycopg", "postgresql")
        echo, echo_base = start_uvicorn("bench.echo_app:app", {})
        floor, floor_base = start_uvicorn("bench.floor_app:app", {"FLOOR_DATABASE_URL": floor_url})
        intake, intake_base = start_uvicorn("service.app:create_app", environment, factory=True)
        try:
            common = {
                "method": "POST",
                "body_template": CASE_TEMPLATE,
                "connections": args.connections,
                "seconds": args.seconds,
                "expected_status": 201,
            }
            baseline = load("bare FastAPI POST echo", echo_base + "/echo", headers=JSON_HEADERS, **common)
            single_insert = load(
                "one INSERT+COMMIT, async psycopg", floor_base + "/floor", headers=JSON_HEADERS, **common
            )
            cases = load(
                "POST /v1/cases (PostgreSQL)", intake_base + "/v1/cases", headers={**JSON_HEADERS, **auth}, **common
            )
        finally:
            for process in (echo, floor, intake):
                process.terminate()
                process.wait()

    print(f"wrk, {args.connections} connections, {args.seconds}s each, one uvicorn worker per server")
    print_table([baseline, single_insert, cases])
    print(f"ratio cases/s to echo/s: {cases.per_second / baseline.per_second:.2f} (target >= 0.30)")
    print(f"p99 of POST /v1/cases: {cases.p99_ms:.0f} ms (target <= 100 ms)")
    print(f"for scale, one durable INSERT alone to echo/s: {single_insert.per_second / baseline.per_second:.2f}")
    return [
        Target("create_cases", "cases/s ÷ echo/s", cases.per_second / baseline.per_second, 0.30),
        Target("create_cases", "p99 of POST /v1/cases", cases.p99_ms, 100, higher_is_better=False, unit=" ms"),
        Target("create_cases", "(one INSERT alone ÷ echo/s)", single_insert.per_second / baseline.per_second, 0.30),
    ]


if __name__ == "__main__":
    main()

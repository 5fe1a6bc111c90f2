"""Shared by the benchmarks: servers as separate processes, load from wrk (a C load generator, so
the client is never the bottleneck), and a table of the results."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# Each request gets a number spliced into its body for `{N}`: `first_number` plus a counter, so every
# identifier is new in this run (wrk's Lua random is seeded, so a run can be repeated exactly). With
# `repeat_fraction`, that share of requests instead reuses one of `repeat_pool` numbers from
# `repeat_first` (cases the bench made beforehand): a repeat case, the slower path that links cases.
_LUA = """
math.randomseed(%d)
local counter = 0
local first_number = %d
local repeat_fraction = %s
local repeat_first = %d
local repeat_pool = %d
local idempotency_prefix = %s
local template = %s
local headers = %s
local method = %s
local path = %s
request = function()
  counter = counter + 1
  local n = first_number + counter
  if repeat_fraction > 0 and math.random() < repeat_fraction then
    n = repeat_first + math.random(0, repeat_pool - 1)
  end
  local id = string.format("%%010d", n %% 10000000000)
  local body = nil
  if template ~= "" then body = string.gsub(template, "{N}", id) end
  if idempotency_prefix ~= "" then headers["Idempotency-Key"] = idempotency_prefix .. counter end
  return wrk.format(method, path, headers, body)
end
response = function(status, headers, body)
  if status ~= %d and status ~= 304 then
    io.stderr:write("unexpected status " .. status .. "\\n")
  end
end
"""


@dataclass(frozen=True)
class Numbering:
    """Where `{N}` comes from: fresh numbers from `first`, and a share of repeats from a known pool."""

    first: int = 0
    seed: int = 1
    repeat_fraction: float = 0.0
    repeat_first: int = 0
    repeat_pool: int = 1
    idempotency_prefix: str = ""


@dataclass
class Result:
    name: str
    per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def load_parser() -> argparse.ArgumentParser:
    """--seconds and --connections, for the benches that drive a server with wrk; a bench adds its own."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="how long each wrk load runs")
    parser.add_argument("--connections", type=int, default=32, help="wrk's concurrent connections")
    return parser


def load_options(argv: list[str] | None) -> argparse.Namespace:
    return load_parser().parse_args(argv)


def wrk_settings(options: argparse.Namespace) -> dict[str, int]:
    """The parsed wrk options as `load`'s keyword arguments."""
    return {"connections": options.connections, "seconds": options.seconds}


def analyze(database_url: str) -> None:
    """Bring the planner's statistics up to the rows the warm-up wrote, as autovacuum does within a minute
    on a running service. A database created for the bench looks empty to the planner until then, and
    statements prepared on pooled connections would keep scanning whole tables for the rest of the run."""
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        connection.execute("ANALYZE")


def submitter_authorization(environment: dict[str, str]) -> dict[str, str]:
    """Bring the benchmark's database to the newest schema and make a submitter key: its Authorization header."""
    intake_cli = [sys.executable, "-m", "service.cli"]
    subprocess.run([*intake_cli, "db", "upgrade"], cwd=ROOT, env=environment, check=True, capture_output=True)
    made = subprocess.run(
        [*intake_cli, "keys", "create", "--role", "submitter", "--name", "bench"],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}


def require_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: `make bench` installs it (apt-get install wrk)")
    return found


def load(
    name: str,
    url: str,
    *,
    method: str = "GET",
    body_template: str = "",
    headers: dict[str, str] | None = None,
    connections: int = 32,
    seconds: int = 10,
    expected_status: int = 200,
    numbering: Numbering | None = None,
) -> Result:
    """Drive `url` with wrk for `seconds` at `connections`; `{N}` in the body becomes a unique number."""
    numbering = numbering or Numbering()
    script = _LUA % (
        numbering.seed,
        numbering.first,
        repr(numbering.repeat_fraction),
        numbering.repeat_first,
        numbering.repeat_pool,
        _lua_string(numbering.idempotency_prefix),
        _lua_string(body_template),
        _lua_table(headers or {}),
        _lua_string(method),
        _lua_string(url.split("/", 3)[3] and "/" + url.split("/", 3)[3]),
        expected_status,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    base = "/".join(url.split("/", 3)[:3])
    try:
        completed = subprocess.run(
            [
                require_wrk(),
                "-t",
                "1",
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--latency",
                "-s",
                handle.name,
                base,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    output = completed.stdout
    errors = completed.stderr.count("unexpected status") + _socket_errors(output)
    return Result(
        name=name,
        per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=_latency_ms(output, "50%"),
        p99_ms=_latency_ms(output, "99%"),
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
        errors=errors,
    )


def _latency_ms(output: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _socket_errors(output: str) -> int:
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return (sum(map(int, found.groups())) if found else 0) + (int(non_2xx.group(1)) if non_2xx else 0)


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for our ASCII bodies


def _lua_table(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in mapping.items()) + "}"


def print_table(results: list[Result]) -> None:
    rows = [("what", "requests/s", "p50 ms", "p99 ms", "requests", "errors")]
    rows += [
        (r.name, f"{r.per_second:.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", str(r.requests), str(r.errors))
        for r in results
    ]
    print_rows(rows)


def print_rows(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


@dataclass
class Target:
    """One figure a bench is judged by, for the summary `make bench` prints."""

    bench: str
    measure: str
    measured: float
    target: float
    higher_is_better: bool = True
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.measured >= self.target if self.higher_is_better else self.measured <= self.target

    def row(self) -> tuple[str, ...]:
        sign = ">=" if self.higher_is_better else "<="
        return (
            self.bench,
            self.measure,
            f"{self.measured:.2f}{self.unit}",
            f"{sign} {self.target:g}{self.unit}",
            "met" if self.met else "NOT MET",
        )

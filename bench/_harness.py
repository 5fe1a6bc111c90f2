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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# Each request gets a unique counter spliced into its body, so identifiers differ per request.
_LUA = """
local counter = 0
local template = %s
local headers = %s
local method = %s
local path = %s
request = function()
  counter = counter + 1
  local id = string.format("%%010d", (counter * 7919 + math.random(0, 7918)) %% 10000000000)
  local body = nil
  if template ~= "" then body = string.gsub(template, "{N}", id) end
  return wrk.format(method, path, headers, body)
end
response = function(status, headers, body)
  if status ~= %d and status ~= 304 then
    io.stderr:write("unexpected status " .. status .. "\\n")
  end
end
"""


@dataclass
class Result:
    name: str
    per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def load_options(argv: list[str] | None) -> argparse.Namespace:
    """--seconds and --connections, for the benches that drive a server with wrk."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    return parser.parse_args(argv)


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
) -> Result:
    """Drive `url` with wrk for `seconds` at `connections`; `{N}` in the body becomes a unique number."""
    script = _LUA % (
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

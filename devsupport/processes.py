"""CPU time from /proc, for the benches and the cold-start measurement: unlike rates and latencies,
CPU time per request barely moves with machine load."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/<pid>/stat after the command name (which may hold spaces): state first."""
    return stat.read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    """User + system CPU of one process (and, if asked, of its children that have exited)."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    ticks = utime + stime + (cutime + cstime if with_reaped_children else 0)
    return ticks / _TICKS_PER_SECOND


def postgres_cpu_seconds(data_dir: Path) -> float:
    """Every process of one PostgreSQL server: the postmaster, its live children (backends, WAL writer,
    checkpointer...) and the children it has reaped."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = process_cpu_seconds(postmaster, with_reaped_children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(entry / "stat")[1])
            if parent == postmaster:
                total += process_cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # a backend that ended meanwhile: its time is in the postmaster's reaped children
    return total


def postgres_cpu_by_kind(data_dir: Path) -> dict[str, float]:
    """As postgres_cpu_seconds, split: "backends" (live client connections: the statements' own work),
    "autovacuum" (live autovacuum workers) and "background" (WAL writer, checkpointer, postmaster, and
    every child already reaped: autovacuum workers and connections that ended). Autovacuum runs far more
    often on a database a bench just made than on one holding a deployment's years of cases."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    kinds = {
        "backends": 0.0,
        "autovacuum": 0.0,
        "background": process_cpu_seconds(postmaster, with_reaped_children=True),
    }
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(entry / "stat")[1]) != postmaster:
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cpu = process_cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # ended meanwhile: its time is in the postmaster's reaped children
        # A client backend's title names its client: "postgres: user db 127.0.0.1(41234) idle" or "[local]".
        client = "(" in title or "[local]" in title
        kind = "autovacuum" if "autovacuum worker" in title else "backends" if client else "background"
        kinds[kind] += cpu
    return kinds


def group_cpu_seconds(group: int, *, with_reaped_children: bool = False) -> float:
    """User + system CPU of every live process in a process group (a server and its workers); with
    `with_reaped_children`, also what the group leader's finished children used (make's installs)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry / "stat")
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:  # pgrp
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            if with_reaped_children and int(entry.name) == group:
                ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICKS_PER_SECOND


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat: the share of the machine in use."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])

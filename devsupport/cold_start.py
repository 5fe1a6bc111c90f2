"""How long `make run` takes from a fresh clone until /healthz answers, and the CPU it spends (from /proc).

    .venv/bin/python -m devsupport.cold_start [--branch main] [--warm]

Cold (the default) is what a new machine does: empty pip and uv caches, so every package is downloaded
and pdqhash is compiled. `--warm` keeps this machine's caches. Wall time moves with the machine's load
(printed beside it); CPU seconds much less.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from devsupport.postgres import free_port
from devsupport.processes import group_cpu_seconds, load_average

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branch", default="HEAD", help="what to clone from this repository")
    parser.add_argument("--warm", action="store_true", help="keep this machine's pip and uv caches")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        clone = Path(scratch) / "clone"
        branch = [] if options.branch == "HEAD" else ["--branch", options.branch]
        subprocess.run(["git", "clone", "--quiet", *branch, str(ROOT), str(clone)], check=True)
        environment = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
        if not options.warm:
            environment |= {"PIP_NO_CACHE_DIR": "1", "UV_CACHE_DIR": str(Path(scratch) / "uv-cache")}
        port = free_port()
        log = Path(scratch) / "make.log"
        print(f"load average before: {load_average()}", flush=True)
        started = time.monotonic()
        with log.open("wb") as output:
            make = subprocess.Popen(
                ["make", "run", f"PORT={port}"],
                cwd=clone,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            while make.poll() is None:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise SystemExit(f"make run exited with {make.returncode}:\n{log.read_text()[-3000:]}")
            wall, cpu = time.monotonic() - started, group_cpu_seconds(make.pid, with_reaped_children=True)
        finally:
            os.killpg(make.pid, signal.SIGTERM)
            make.wait()
        size = subprocess.run(["du", "-sh", str(clone / ".venv")], capture_output=True, text=True).stdout.split()[0]
        caches = "warm caches" if options.warm else "empty pip and uv caches"
        print(f"make run until /healthz answered: {wall:.1f} s wall, {cpu:.1f} s CPU ({caches}); venv {size}")
        print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()

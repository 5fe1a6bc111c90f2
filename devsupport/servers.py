"""Running an ASGI app in its own uvicorn process, and streaming a file to it as multipart."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx

from devsupport.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent

# Tests, fuzzers and benches send far more from one address and key than any person would; the
# limits themselves have tests of their own.
UNLIMITED = {
    "rate_case_creation_per_key": "off",
    "rate_case_creation_per_address": "off",
    "rate_publishable_case_creation_per_key": "off",
    "rate_guidance_per_address": "off",
    "rate_report_status_per_address": "off",
    "rate_additions_per_key": "off",
    "rate_additions_per_case": "off",
    "rate_status_additions_per_address": "off",
}
UNLIMITED_ENVIRONMENT = {f"INTAKE_{name.upper()}": value for name, value in UNLIMITED.items()}

# One signing secret for every server this process starts, as every worker and replica of a deployment
# shares one (the service refuses to start without it); an environment that names its own wins.
LINK_SECRET = secrets.token_hex(32)


def start_uvicorn(app_target: str, environment: dict[str, str], factory: bool = False) -> tuple[subprocess.Popen, str]:
    """Start `app_target` on a free loopback port; returns the process and its base URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app_target, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"] + (["--factory"] if factory else [])
    return _start(command, port, environment, None)


def start_service(
    environment: dict[str, str], log_path: Path | None = None, workers: int = 1
) -> tuple[subprocess.Popen, str]:
    """`intake serve` as an operator runs it, on a free port; its log (stdout and stderr) goes to `log_path`."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "intake"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return _start(command + ["--workers", str(workers)], port, environment, log_path)


def _start(
    command: list[str], port: int, environment: dict[str, str], log_path: Path | None
) -> tuple[subprocess.Popen, str]:
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - the child process holds it open
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={"INTAKE_LINK_SECRET": LINK_SECRET, **os.environ, **environment},
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        # Its own process group: workers a server spawned go with it if it has to be killed.
        start_new_session=True,
    )
    if log:
        log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a shared, busy machine starts workers slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {process.returncode} before it answered")
        try:
            httpx.get(base + "/healthz", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    raise RuntimeError(f"{command} did not start")


def multipart_file(
    field: str, filename: str, content_type: str, chunks: Iterable[bytes], boundary: str
) -> Iterator[bytes]:
    """One file part of a multipart/form-data body, streamed chunk by chunk."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    yield from chunks
    yield f"\r\n--{boundary}--\r\n".encode()

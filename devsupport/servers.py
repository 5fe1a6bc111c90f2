"""Running an ASGI app in its own uvicorn process, and streaming a file to it as multipart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx

from devsupport.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent


def start_uvicorn(app_target: str, environment: dict[str, str], factory: bool = False) -> tuple[subprocess.Popen, str]:
    """Start `app_target` on a free loopback port; returns the process and its base URL once it answers."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app_target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if factory:
        command.append("--factory")
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **environment})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/docs", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{app_target} did not start")


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

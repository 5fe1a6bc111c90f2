"""Slowloris and header floods against `intake serve` in its own process: a trickling, stalled or
oversized client is cut off, and the server's memory stays flat while many try at once."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from devsupport.servers import UNLIMITED_ENVIRONMENT, start_service
from service.cli import upgrade_database
from tests.support.database import create_key

TIGHT = {
    "INTAKE_HTTP_HEADER_SECONDS": "1.5",
    "INTAKE_HTTP_BODY_IDLE_SECONDS": "1.5",
    "INTAKE_HTTP_MAX_HEADER_BYTES": "16384",
    "INTAKE_HTTP_MAX_HEADERS": "100",
}


@contextmanager
def serving(tmp_path: Path, **environment: str) -> Iterator[tuple[int, int, str]]:
    """The server's port, process id, and a submitter key."""
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    upgrade_database(url)
    submitter = create_key(url, "submitter", "slow client test")
    settings = {"INTAKE_DATABASE_URL": url, "INTAKE_DATA_DIR": str(tmp_path), **UNLIMITED_ENVIRONMENT}
    process, base = start_service({**settings, **TIGHT, **environment}, tmp_path / "server.log")
    try:
        yield int(base.rsplit(":", 1)[1]), process.pid, submitter
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[int, int, str]]:
    with serving(tmp_path_factory.mktemp("slow")) as running:
        yield running


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_within(connection: socket.socket, seconds: float, keep_sending: bytes | None = None) -> float | None:
    """Seconds until the server closed the connection (reading what it answered), or None."""
    started = time.monotonic()
    connection.settimeout(0.3)
    while time.monotonic() - started < seconds:
        try:
            if keep_sending:
                connection.sendall(keep_sending)
            if connection.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    return None


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_client_trickling_its_headers_is_cut_off(server):
    port, _, _ = server
    connection = connect(port)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: intake\r\n")
    assert closed_within(connection, 8, keep_sending=b"X-Slow: yes\r\n") is not None
    connection.close()


def test_a_client_that_stops_mid_body_is_cut_off(server):
    port, _, submitter = server
    connection = connect(port)
    head = (
        "POST /v1/cases HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {submitter}\r\nContent-Length: 1000\r\n\r\n"
    )
    connection.sendall(head.encode() + b'{"account": "Synthetic')  # and then nothing more
    assert closed_within(connection, 8) is not None
    connection.close()


def test_oversized_headers_are_refused_and_the_connection_closed(server):
    port, _, _ = server
    connection = connect(port)
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: intake\r\nX-Big: " + b"a" * 64 * 1024)
    connection.settimeout(5)
    answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert closed_within(connection, 5) is not None
    connection.close()


def test_too_many_header_fields_are_a_431(server):
    port, _, _ = server
    headers = {f"x-field-{number}": "1" for number in range(150)}
    answer = httpx.get(f"http://127.0.0.1:{port}/healthz", headers=headers)
    assert answer.status_code == 431
    assert answer.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200  # and the server is fine


def test_memory_stays_flat_under_a_header_flood(server):
    port, pid, _ = server
    before = resident_bytes(pid)
    floods = []
    for _ in range(12):
        connection = connect(port)
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: intake\r\nX-Flood: ")
        floods.append(connection)
    chunk = b"a" * 256 * 1024
    for _ in range(32):  # up to 8 MiB of header per connection, 96 MiB in all, if the server took it
        for connection in list(floods):
            try:
                connection.sendall(chunk)
            except OSError:
                floods.remove(connection)  # cut off, as it should be
    during = resident_bytes(pid)
    for connection in floods:
        connection.close()
    assert during - before < 20 * 1024 * 1024, f"grew by {(during - before) // 1024} KiB"
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_past_the_concurrency_limit_the_answer_is_503(tmp_path):
    with serving(tmp_path, INTAKE_HTTP_MAX_CONCURRENCY="2", INTAKE_HTTP_HEADER_SECONDS="30") as (port, _, _):
        holders = [connect(port) for _ in range(2)]
        for connection in holders:
            connection.sendall(b"GET /healthz HTTP/1.1\r\n")  # held open, headers unfinished
        time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 503
        for connection in holders:
            connection.close()
        time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200

"""Evidence through a real server process and a real S3 server: big files, faults, interruptions."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest

from devsupport.s3 import CREDENTIALS, S3Server
from devsupport.servers import UNLIMITED_ENVIRONMENT, multipart_file, start_uvicorn
from service.cli import upgrade_database
from tests.support.cases import MINIMAL_CASE
from tests.support.database import count_rows, create_key
from tests.support.http import bearer
from tests.support.synthetic import text_stream

MiB = 1024 * 1024
BOUNDARY = "synthetic-boundary-7d1f"


@dataclass
class LiveServer:
    base: str
    process: subprocess.Popen
    database_url: str
    submitter: str
    s3: S3Server
    bucket: str

    def peak_and_current_rss(self) -> tuple[int, int]:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024

    def s3_client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.s3.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def evidence_rows(self) -> int:
        return count_rows(self.database_url, "evidence")


@pytest.fixture
def live_server(tmp_path) -> Iterator[LiveServer]:
    s3 = S3Server().start()
    database_url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade_database(database_url)
    submitter = create_key(database_url, "submitter", "live test")
    bucket = "live-evidence"
    environment = {
        **CREDENTIALS,
        **UNLIMITED_ENVIRONMENT,
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_DATA_DIR": str(tmp_path),
        "INTAKE_EVIDENCE_STORE": "s3",
        "INTAKE_S3_ENDPOINT_URL": s3.endpoint,
        "INTAKE_S3_BUCKET": bucket,
        "INTAKE_S3_CREATE_BUCKET": "true",
        "INTAKE_S3_ACCESS_KEY_ID": "test",
        "INTAKE_S3_SECRET_ACCESS_KEY": "test",
        "INTAKE_LOG_LEVEL": "WARNING",
    }
    process, base = start_uvicorn("service.app:create_app", environment, factory=True)
    server = LiveServer(base, process, database_url, submitter, s3, bucket)
    yield server
    process.terminate()
    process.wait(timeout=10)
    s3.stop()


def new_case(server: LiveServer) -> dict:
    response = httpx.post(server.base + "/v1/cases", json=MINIMAL_CASE, headers=bearer(server.submitter))
    assert response.status_code == 201
    return response.json()


def multipart_stream(chunks: Iterator[bytes], hasher=None) -> Iterator[bytes]:
    def counted() -> Iterator[bytes]:
        for chunk in chunks:
            if hasher:
                hasher.update(chunk)
            yield chunk

    return multipart_file("file", "log.txt", "text/plain", counted(), BOUNDARY)


def post_stream(server: LiveServer, case: dict, body: Iterator[bytes]) -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/cases/{case['reference']}/evidence",
        content=body,
        timeout=300,
        headers={**bearer(case["reporter_token"]), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def test_a_file_of_hundreds_of_mib_streams_through_in_bounded_memory(live_server):
    case = new_case(live_server)
    size = 320 * MiB
    _, rss_before = live_server.peak_and_current_rss()
    hasher = hashlib.sha256()
    response = post_stream(live_server, case, multipart_stream(text_stream(size), hasher))
    assert response.status_code == 201, response.text
    (stored,) = response.json()["evidence"]
    assert stored["size"] == size
    assert stored["sha256"] == hasher.hexdigest()
    peak, _ = live_server.peak_and_current_rss()
    growth = peak - rss_before
    assert growth < 80 * MiB, f"server memory grew by {growth / MiB:.0f} MiB for a {size / MiB:.0f} MiB file"
    objects = live_server.s3_client().list_objects_v2(Bucket=live_server.bucket)["Contents"]
    assert [item["Size"] for item in objects] == [size]


def test_the_s3_server_stopping_mid_upload_answers_503_and_keeps_nothing(live_server):
    case = new_case(live_server)

    def body() -> Iterator[bytes]:
        for sent, chunk in enumerate(text_stream(200 * MiB)):
            if sent == 40:  # 40 MiB in: the store goes away
                live_server.s3.stop()
            yield chunk

    try:
        response = post_stream(live_server, case, multipart_stream(body()))
    except httpx.RemoteProtocolError:
        pytest.fail("the server should answer, not drop the connection")
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.headers["content-type"] == "application/problem+json"
    assert live_server.evidence_rows() == 0
    # Case creation without files still works while the store is down.
    assert (
        httpx.post(live_server.base + "/v1/cases", json=MINIMAL_CASE, headers=bearer(live_server.submitter)).status_code
        == 201
    )
    assert httpx.get(live_server.base + "/readyz").status_code == 503


def test_an_interrupted_upload_is_aborted_and_leaves_nothing(live_server):
    case = new_case(live_server)
    host, port = live_server.base.removeprefix("http://").split(":")
    declared = 100 * MiB
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="log.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    request_head = (
        f"POST /v1/cases/{case['reference']}/evidence HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {case['reporter_token']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(head) + declared}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(request_head + head)
        for sent, chunk in enumerate(text_stream(declared)):
            connection.sendall(chunk)
            if sent == 30:  # 30 MiB in (several multipart parts stored), the client vanishes
                break
    client = live_server.s3_client()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        uploads = client.list_multipart_uploads(Bucket=live_server.bucket).get("Uploads", [])
        objects = client.list_objects_v2(Bucket=live_server.bucket).get("Contents", [])
        if not uploads and not objects:
            break
        time.sleep(0.2)
    assert uploads == [] and objects == []
    assert live_server.evidence_rows() == 0


def test_concurrent_uploads_do_not_mix_their_bytes(live_server):
    cases = [new_case(live_server) for _ in range(4)]
    results: dict[int, httpx.Response] = {}

    def send(index: int) -> None:
        line = f"upload number {index}\n".encode()
        results[index] = post_stream(live_server, cases[index], multipart_stream(iter([line * 200_000])))

    threads = [threading.Thread(target=send, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, response in results.items():
        expected = hashlib.sha256(f"upload number {index}\n".encode() * 200_000).hexdigest()
        assert response.status_code == 201
        assert response.json()["evidence"][0]["sha256"] == expected

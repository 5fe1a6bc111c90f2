"""MiB/s for a large evidence upload through the API (multipart stream -> service -> S3), next to
boto3's upload_file of the same file straight to the same S3 server in the same run; the ratio;
and how much the service's peak memory grew while the file passed through.

    .venv/bin/python bench/upload.py [--mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
import httpx
from _harness import ROOT, Target

from devsupport.processes import group_cpu_seconds
from devsupport.s3 import CREDENTIALS, S3Server
from devsupport.servers import UNLIMITED_ENVIRONMENT, multipart_file, start_service
from service.cli import upgrade_database
from service.storage.database import create_database_engine, session_scope
from service.storage.keys import create_api_key

MiB = 1024 * 1024
BOUNDARY = "bench-boundary-4f1c"


def write_synthetic_file(path: Path, size: int) -> str:
    """Plain text, generated a MiB at a time; returns its SHA-256."""
    line = b"synthetic evidence line for the upload benchmark\n"
    block = (line * (MiB // len(line) + 1))[:MiB]
    hasher = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(size // MiB):
            handle.write(block)
            hasher.update(block)
    return hasher.hexdigest()


def multipart_body(path: Path):
    def chunks():
        with path.open("rb") as handle:
            while chunk := handle.read(MiB):
                yield chunk

    return multipart_file("file", path.name, "text/plain", chunks(), BOUNDARY)


def memory(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024


def main(argv: list[str] | None = None) -> list[Target]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    args = parser.parse_args(argv)
    size = args.mib * MiB

    with tempfile.TemporaryDirectory() as scratch, S3Server() as s3:
        scratch_path = Path(scratch)
        source = scratch_path / "evidence.txt"
        expected_sha256 = write_synthetic_file(source, size)
        database_url = f"sqlite:///{scratch_path / 'bench.db'}"
        upgrade_database(database_url)
        engine = create_database_engine(database_url)
        with session_scope(engine) as session:
            submitter = create_api_key(session, "submitter", "bench")[1]
        engine.dispose()
        environment = {
            **CREDENTIALS,
            **UNLIMITED_ENVIRONMENT,
            "INTAKE_DATABASE_URL": database_url,
            "INTAKE_DATA_DIR": scratch,
            "INTAKE_EVIDENCE_STORE": "s3",
            "INTAKE_S3_ENDPOINT_URL": s3.endpoint,
            "INTAKE_S3_BUCKET": "bench",
            "INTAKE_S3_CREATE_BUCKET": "true",
            "INTAKE_S3_ACCESS_KEY_ID": "test",
            "INTAKE_S3_SECRET_ACCESS_KEY": "test",
            "INTAKE_LOG_LEVEL": "WARNING",
        }
        client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        # `intake serve`, as an operator runs it: its HTTP protocol (h11 with deadlines) is part of the cost.
        server, base = start_service(environment)
        auth = {"Authorization": f"Bearer {submitter}"}
        direct_runs: list[float] = []
        api_runs: list[float] = []
        # CPU, not speed, is what the service controls: moto, the S3 server here, spends more than either.
        direct_cpu: list[float] = []
        api_cpu: list[float] = []
        growth = 0
        try:
            # Interleaved rounds: both paths see the same noise from this shared machine.
            for _ in range(args.rounds):
                started, cpu_before = time.perf_counter(), time.process_time()
                client.upload_file(str(source), "bench", "direct/evidence.txt")
                direct_runs.append(time.perf_counter() - started)
                direct_cpu.append(time.process_time() - cpu_before)
                client.delete_object(Bucket="bench", Key="direct/evidence.txt")

                case = httpx.post(
                    base + "/v1/cases",
                    headers=auth,
                    json={"reporter": {"relationship": "self"}, "account": "Synthetic benchmark case."},
                ).json()
                _, rss_before = memory(server.pid)
                started, cpu_before = time.perf_counter(), group_cpu_seconds(server.pid)
                response = httpx.post(
                    f"{base}/v1/cases/{case['reference']}/evidence",
                    content=multipart_body(source),
                    timeout=900,
                    headers={
                        "Authorization": f"Bearer {case['reporter_token']}",
                        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    },
                )
                api_runs.append(time.perf_counter() - started)
                api_cpu.append(group_cpu_seconds(server.pid) - cpu_before)
                peak, _ = memory(server.pid)
                growth = max(growth, peak - rss_before)
                if response.status_code != 201 or response.json()["evidence"][0]["sha256"] != expected_sha256:
                    raise SystemExit(f"upload through the API failed: {response.status_code} {response.text[:300]}")
                for item in client.list_objects_v2(Bucket="bench").get("Contents", []):
                    client.delete_object(Bucket="bench", Key=item["Key"])
        finally:
            server.terminate()
            server.wait()

    direct_seconds = statistics.median(direct_runs)
    api_seconds = statistics.median(api_runs)
    direct = args.mib / direct_seconds
    api = args.mib / api_seconds
    print(
        f"{args.mib} MiB of generated text, S3 = moto over HTTP on this machine, `intake serve` with one worker, "
        f"median of {args.rounds} interleaved rounds"
    )
    print(
        "per round MiB/s, direct: "
        + ", ".join(f"{args.mib / t:.1f}" for t in direct_runs)
        + "; API: "
        + ", ".join(f"{args.mib / t:.1f}" for t in api_runs)
    )
    print(f"boto3 upload_file straight to S3   {direct:8.1f} MiB/s")
    print(f"POST /v1/cases/{{ref}}/evidence     {api:8.1f} MiB/s (streamed, hashed, typed, then stored)")
    print(f"ratio API to direct: {api / direct:.2f} (target >= 0.70)")
    gib = args.mib / 1024
    service_cpu = statistics.median(api_cpu) / gib
    client_cpu = statistics.median(direct_cpu) / gib
    print(
        f"CPU seconds per GiB: service {service_cpu:.2f} (its process, /proc), boto3 upload_file {client_cpu:.2f} "
        f"(this process); ratio {service_cpu / client_cpu:.2f} (target <= 2.0)"
    )
    print(f"service peak memory growth: {growth / MiB:.1f} MiB, the largest of any round (target <= 64 MiB)")
    return [
        Target("upload", "API MiB/s ÷ boto3 upload_file MiB/s", api / direct, 0.70),
        Target(
            "upload", "service CPU/GiB ÷ boto3 client CPU/GiB", service_cpu / client_cpu, 2.0, higher_is_better=False
        ),
        Target("upload", "service peak memory growth", growth / MiB, 64, higher_is_better=False, unit=" MiB"),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    main()

"""Schemathesis against the committed OpenAPI document, on a live server over PostgreSQL.

Every operation, every check (no 5xx, responses match their schemas, statuses and content types are
documented, schema-violating requests refused, schema-valid ones accepted): the spec is what
partners generate clients from, so where the two disagree it is the spec or the service that is
fixed. Set FUZZ_SEED to replay a run; FUZZ_MAX_EXAMPLES to go deeper.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from devsupport.servers import UNLIMITED_ENVIRONMENT, start_service
from service.cli import upgrade_database
from tests.conftest import make_keys, project_root

pytestmark = [pytest.mark.postgres, pytest.mark.fuzz]

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_every_operation_keeps_to_the_committed_spec(postgres_server, tmp_path):
    database_url = postgres_server.create_database("intake_fuzz")
    upgrade_database(database_url)
    keys = make_keys(database_url)
    log_path = tmp_path / "server.log"
    environment = {
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_DATA_DIR": str(tmp_path / "data"),
        "INTAKE_LINK_SECRET": "fuzzing-link-secret",
        **UNLIMITED_ENVIRONMENT,
    }
    process, base = start_service(environment, log_path)
    seed = os.environ.get("FUZZ_SEED") or str(random.randrange(2**63))
    try:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(CONFIG),
                "run",
                str(project_root() / "openapi" / "openapi.json"),
                "--url",
                base,
                "--max-examples",
                os.environ.get("FUZZ_MAX_EXAMPLES", "40"),
                "--seed",
                seed,
                "--no-color",
            ],
            env={
                **os.environ,
                "FUZZ_SUBMITTER_KEY": keys.submitter,
                "FUZZ_ANALYST_KEY": keys.analyst,
                "FUZZ_ADMIN_KEY": keys.admin,
            },
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
    report = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, f"schemathesis (seed {seed}) found problems:\n{report}"
    assert "No issues found" in result.stdout, report
    server_log = log_path.read_text(errors="replace")
    assert "Traceback" not in server_log, server_log[-10_000:]

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

from tests.support.apps import PROJECT_ROOT, running_service

pytestmark = [pytest.mark.postgres, pytest.mark.fuzz]

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_every_operation_keeps_to_the_committed_spec(postgres_server, tmp_path):
    database_url = postgres_server.create_database("intake_fuzz")
    seed = os.environ.get("FUZZ_SEED") or str(random.randrange(2**63))
    with running_service(database_url, tmp_path) as (base, keys):
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(CONFIG),
                "run",
                str(PROJECT_ROOT / "openapi" / "openapi.json"),
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
    report = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, f"schemathesis (seed {seed}) found problems:\n{report}"
    assert "No issues found" in result.stdout, report
    server_log = (tmp_path / "server.log").read_text(errors="replace")
    assert "Traceback" not in server_log, server_log[-10_000:]

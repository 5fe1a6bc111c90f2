"""The `intake` command in its own process, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from service.settings import Settings
from tests.support.apps import PROJECT_ROOT


def run_intake(
    *args: str, database_url: str | None = None, environment: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`intake ARGS` on `database_url`, with `environment` over this process's own; output captured as
    text; never raises for the exit status."""
    given = {"INTAKE_DATABASE_URL": database_url} if database_url else {}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **given, **(environment or {})},
        cwd=PROJECT_ROOT,
        timeout=timeout,
        check=False,
    )


def environment_for(settings: Settings) -> dict[str, str]:
    """The INTAKE_* variables that point the command at the same database and evidence store as `settings`."""
    environment = {
        "INTAKE_DATABASE_URL": settings.resolved_database_url,
        "INTAKE_EVIDENCE_STORE": settings.evidence_store,
        "INTAKE_EVIDENCE_DIR": str(settings.resolved_evidence_dir),
        "INTAKE_S3_BUCKET": settings.s3_bucket,
        "INTAKE_SWEEP_GRACE": "PT0S",
        "INTAKE_S3_ACCESS_KEY_ID": "test",
        "INTAKE_S3_SECRET_ACCESS_KEY": "test",
    }
    if settings.s3_endpoint_url:
        environment["INTAKE_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    return environment

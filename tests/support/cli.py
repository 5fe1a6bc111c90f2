"""Running the `intake` command as a user would."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import project_root


def intake(*args: str, database_url: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "INTAKE_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=project_root(),
        timeout=60,
        check=False,
    )

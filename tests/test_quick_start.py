"""The quick start: `make run` in a clean clone installs what the service needs, and no more, and serves."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from devsupport.postgres import free_port
from tests.support.apps import PROJECT_ROOT

# A cold machine compiles pdqhash; with the package caches `make test` has just filled, it takes seconds.
SERVING_DEADLINE_SECONDS = 600


def _fresh_shell_environment() -> dict[str, str]:
    """The environment of a person who has just cloned: no virtual environment of ours active."""
    outer_venv = str(PROJECT_ROOT / ".venv")
    path = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if not entry.startswith(outer_venv)]
    environment = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    return {**environment, "PATH": os.pathsep.join(path)}


def _wait_for_healthz(make: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + SERVING_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if make.poll() is not None:
            pytest.fail(f"make run exited with {make.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"make run did not serve /healthz within {SERVING_DEADLINE_SECONDS} s:\n{log.read_text()[-3000:]}")


def test_make_run_in_a_clean_clone_serves_with_the_runtime_alone(tmp_path):
    git, make_command = shutil.which("git"), shutil.which("make")
    assert git and make_command, "git and make come with the machine"
    clone = tmp_path / "clone"
    cloned = subprocess.run([git, "clone", "--quiet", str(PROJECT_ROOT), str(clone)], capture_output=True, text=True)
    if cloned.returncode != 0:
        pytest.skip(f"this checkout cannot be cloned (not a git repository?): {cloned.stderr.strip()}")
    port = free_port()
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        make = subprocess.Popen(
            [make_command, "run", f"PORT={port}"],
            cwd=clone,
            env=_fresh_shell_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, its shell and the server: stopped together below
        )
    try:
        _wait_for_healthz(make, f"http://127.0.0.1:{port}", log)
        venv_python = str(clone / ".venv" / "bin" / "python")
        subprocess.run([venv_python, "-c", "import service.app, pdqhash, magic"], check=True)
        test_tools = subprocess.run([venv_python, "-c", "import pytest"], capture_output=True)
        assert test_tools.returncode != 0, "make run installed the test suite's tools too"
        video_extra = subprocess.run([venv_python, "-c", "import vpdq"], capture_output=True)
        assert video_extra.returncode != 0, "make run built the optional video extra (vpdq and FFmpeg)"
        assert '"event": "video_matching", "state": "off: vpdq is not installed' in log.read_text()
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=60)

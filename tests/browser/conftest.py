"""Headless Chromium from Debian's package, driven by Playwright (its own browser download is not used)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support.synthetic import png

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root, on a closed network: no sandbox, and none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def evidence_file(tmp_path) -> Path:
    """A synthetic screenshot on disk, for a file input to pick."""
    path = tmp_path / "screenshot.png"
    path.write_bytes(png(8, 8, 90))
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()

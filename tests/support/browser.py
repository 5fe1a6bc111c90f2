"""Helpers for the browser tests: axe-core's location and screenshots for the docs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support.apps import PROJECT_ROOT

AXE = PROJECT_ROOT / ".cache" / "browser-tests" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def screenshot(page, name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("INTAKE_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / name)

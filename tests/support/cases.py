"""Synthetic case reports, and values no other test shares (so a search finds only this test's cases)."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

MINIMAL_CASE = {
    "reporter": {"relationship": "self"},
    "account": "Synthetic account: a stranger on a video call recorded me and now asks for money.",
}

# Forces a test deployment adds (content/police-forces.yaml), so each test can file cases under a force
# of its own in a database shared by the session: a slug not on the list is refused.
_SYNTHETIC_FORCES = 2000
_synthetic_force_numbers = itertools.count()


def unique_force() -> str:
    return f"synthetic-force-{next(_synthetic_force_numbers) % _SYNTHETIC_FORCES}"


def synthetic_content_dir(folder: Path) -> Path:
    """A deployment's content folder that adds the synthetic forces unique_force() hands out."""
    (folder / "guidance").mkdir(parents=True, exist_ok=True)
    (folder / "police-forces.yaml").write_text(
        "".join(
            f"- {{slug: synthetic-force-{n}, name: Synthetic Force {n}, nation: England}}\n"
            for n in range(_SYNTHETIC_FORCES)
        )
    )
    return folder


def unique_mtcn() -> str:
    return str(uuid.uuid4().int)[:10]

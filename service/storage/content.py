"""Guidance and helplines, read once from the repository's content folder and a deployment's own.

A force overrides a section by putting a Markdown file with the same slug in its folder, and a
helpline by giving an entry with the same slug (`disabled: true` hides one); new slugs are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from service.domain.guidance import GuidanceSection, SupportService
from service.domain.police_forces import PoliceForce, PoliceForces
from service.domain.urgency import (
    BASE_NEXT_STEPS,
    CANCEL_PAYMENT_GUIDANCE,
    IMAGES_REMOVAL_GUIDANCE,
    UNDER_18_GUIDANCE,
)

BUILTIN_CONTENT = Path(__file__).resolve().parent.parent / "content"


class ContentError(RuntimeError):
    """The content folder has a file that cannot be served; raised at start-up, never per request."""


@dataclass(frozen=True)
class Content:
    sections: list[GuidanceSection]
    support_services: list[SupportService]
    police_forces: PoliceForces

    def section(self, slug: str) -> GuidanceSection | None:
        return next((section for section in self.sections if section.slug == slug), None)


def load_content(override_dir: Path | None = None) -> Content:
    folders = [BUILTIN_CONTENT] + ([override_dir] if override_dir else [])
    sections: dict[str, GuidanceSection] = {}
    services: dict[str, SupportService] = {}
    forces: dict[str, PoliceForce] = {}
    for folder in folders:
        if not folder.is_dir():
            raise ContentError(f"content folder {folder} does not exist")
        for path in sorted((folder / "guidance").glob("*.md")):
            section = _read_section(path)
            sections[section.slug] = section
        _merge_by_slug(services, SupportService, folder / "support-services.yaml")
        _merge_by_slug(forces, PoliceForce, folder / "police-forces.yaml")
    return Content(
        sections=_in_reading_order(sections),
        support_services=list(services.values()),
        police_forces=PoliceForces(tuple(forces.values())),
    )


def _merge_by_slug(items: dict, model, path: Path) -> None:
    """A deployment's entries over the built-in ones: same slug replaces, `disabled: true` hides, new slugs add."""
    if not path.exists():
        return
    for entry in _read_yaml(path) or []:
        if not isinstance(entry, dict):
            raise ContentError(f"{path}: each entry is a mapping with a slug")
        slug = entry.get("slug")
        if entry.get("disabled"):
            items.pop(slug, None)
            continue
        merged = {**items[slug].model_dump(mode="json"), **entry} if slug in items else entry
        items[slug] = _validated(model, merged, path)


# The police advice in its own order, then the sections that particular cases bring forward.
_READING_ORDER = [
    *BASE_NEXT_STEPS,
    UNDER_18_GUIDANCE,
    CANCEL_PAYMENT_GUIDANCE,
    IMAGES_REMOVAL_GUIDANCE,
    "for-parents-and-carers",
]


def _in_reading_order(sections: dict[str, GuidanceSection]) -> list[GuidanceSection]:
    known = [sections[slug] for slug in _READING_ORDER if slug in sections]
    extra = sorted((s for slug, s in sections.items() if slug not in _READING_ORDER), key=lambda s: s.slug)
    return known + extra


def _read_section(path: Path) -> GuidanceSection:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        raise ContentError(f"{path}: a guidance file starts with a '---' front matter block")
    front, body = text[4:].split("\n---\n", 1)
    metadata = _parse_yaml(front, path) or {}
    return _validated(GuidanceSection, {**metadata, "body": body.strip() + "\n"}, path)


def _read_yaml(path: Path):
    return _parse_yaml(path.read_text(encoding="utf-8"), path)


def _parse_yaml(text: str, path: Path):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ContentError(f"{path}: {error}") from None


def _validated(model, data: dict, path: Path):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ContentError(f"{path}: {error}") from None

"""The UK police forces a case can be routed to: slugs and names, kept as data (content/police-forces.yaml).

A slug that is not on the list is refused with the closest ones, because a case filed under
`north-yorks` is one that no force-scoped analyst ever sees.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"


class ForceKind(StrEnum):
    territorial = "territorial"  # a geographical area: where the victim lives decides it
    national = "national"  # special forces such as British Transport Police


class PoliceForce(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(pattern=SLUG_PATTERN, max_length=80, examples=["north-yorkshire"])
    name: str = Field(min_length=1, max_length=200, examples=["North Yorkshire Police"])
    nation: str = Field(
        description="England, Wales, Scotland, Northern Ireland, or United Kingdom for a force that works across them.",
        examples=["England"],
    )
    kind: ForceKind = ForceKind.territorial


class UnknownPoliceForce(ValueError):
    """A slug not on the list; the message names the closest ones."""


_NOT_A_WORD = re.compile(r"[^a-z0-9]+")
_GENERIC_WORDS = {"police", "constabulary", "service", "force", "the"}


@dataclass(frozen=True)
class PoliceForces:
    forces: tuple[PoliceForce, ...]
    _by_slug: dict[str, PoliceForce] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_slug", {force.slug: force for force in self.forces})

    def __contains__(self, slug: object) -> bool:
        return slug in self._by_slug

    def get(self, slug: str) -> PoliceForce | None:
        return self._by_slug.get(slug)

    @property
    def slugs(self) -> list[str]:
        return list(self._by_slug)

    def closest(self, text: str, count: int = 3) -> list[PoliceForce]:
        """Forces whose slug or name looks like `text` (a near-miss slug, or a name typed as a name)."""
        wanted = _as_slug(text)
        candidates: dict[str, str] = {}
        for force in self.forces:
            candidates.setdefault(force.slug, force.slug)
            candidates.setdefault(_as_slug(force.name), force.slug)
        found = [
            candidates[match] for match in difflib.get_close_matches(wanted, list(candidates), n=count * 2, cutoff=0.6)
        ]
        starts = [force.slug for force in self.forces if wanted and force.slug.startswith(wanted)]
        return [self._by_slug[slug] for slug in dict.fromkeys(found + starts)][:count]

    def check(self, slug: str) -> str:
        """The slug if it is a force on the list; otherwise UnknownPoliceForce saying which ones it may mean."""
        if slug in self._by_slug:
            return slug
        suggestions = self.closest(slug)
        if suggestions:
            named = [f"{force.slug} ({force.name})" for force in suggestions]
            options = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " or " + named[-1]
            raise UnknownPoliceForce(f"There is no police force {slug!r}. Did you mean {options}?")
        raise UnknownPoliceForce(
            f"There is no police force {slug!r}. Use a slug from GET /v1/police-forces, like north-yorkshire."
        )


def _as_slug(text: str) -> str:
    words = [word for word in _NOT_A_WORD.split(text.lower()) if word and word not in _GENERIC_WORDS]
    return "-".join(words)

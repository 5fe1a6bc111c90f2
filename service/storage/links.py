"""Links between cases: shared identifiers and matching images, as analysts have corrected them,
read together for an analyst."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from service.storage.corrections import not_linking_identifiers, pair, pair_corrections
from service.storage.identifiers import links_of as identifier_links_of
from service.storage.image_hashes import ImageLink, image_links_of
from service.storage.models import Case, Identifier


@dataclass
class CaseLink:
    case: Case
    identifiers: list[Identifier] = field(default_factory=list)
    images: list[ImageLink] = field(default_factory=list)
    by_analyst: str | None = None  # manual_link, or duplicate where one case duplicates the other


def links_of(session: Session, case_id: int, max_image_distance: int) -> list[CaseLink]:
    """Every other case linked to this one, oldest first, with what links them: identifiers marked as
    joining nothing and links marked false are left out; links made by analysts are in."""
    excluded = set(session.execute(not_linking_identifiers()).scalars())
    linked: dict[int, CaseLink] = {}
    for other, shared in identifier_links_of(session, case_id):
        kept = [row for row in shared if row.normalized not in excluded]
        if kept:
            linked[other.id] = CaseLink(other, identifiers=kept)
    images = image_links_of(session, case_id, max_image_distance)
    corrections = pair_corrections(session, [case_id])
    by_analyst = {(b if a == case_id else a): kind for (a, b), kind in corrections.added.items() if case_id in (a, b)}
    missing = ({image.other_case_id for image in images} | set(by_analyst)) - linked.keys()
    if missing:
        for other in session.exec(select(Case).where(Case.id.in_(missing))):
            linked[other.id] = CaseLink(other)
    for image in images:
        linked[image.other_case_id].images.append(image)
    for other_id, kind in by_analyst.items():
        linked[other_id].by_analyst = kind
    kept_links = [link for other_id, link in linked.items() if pair(case_id, other_id) not in corrections.false_links]
    return sorted(
        (link for link in kept_links if link.identifiers or link.images or link.by_analyst),
        key=lambda link: (link.case.created_at, link.case.id),
    )

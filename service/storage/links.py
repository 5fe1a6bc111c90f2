"""Links between cases: shared identifiers and matching images, read together for an analyst."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from service.storage.cases import links_of as identifier_links_of
from service.storage.image_hashes import ImageLink, image_links_of
from service.storage.models import Case, Identifier


@dataclass
class CaseLink:
    case: Case
    identifiers: list[Identifier] = field(default_factory=list)
    images: list[ImageLink] = field(default_factory=list)


def links_of(session: Session, case_id: int, max_image_distance: int) -> list[CaseLink]:
    """Every other case linked to this one, oldest first, with what links them."""
    linked: dict[int, CaseLink] = {
        other.id: CaseLink(other, identifiers=shared) for other, shared in identifier_links_of(session, case_id)
    }
    images = image_links_of(session, case_id, max_image_distance)
    missing = {image.other_case_id for image in images} - linked.keys()
    if missing:
        for other in session.exec(select(Case).where(Case.id.in_(missing))):
            linked[other.id] = CaseLink(other)
    for image in images:
        linked[image.other_case_id].images.append(image)
    return sorted(linked.values(), key=lambda link: (link.case.created_at, link.case.id))

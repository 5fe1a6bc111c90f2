"""Perceptual hashes of image evidence: taken from the received bytes in memory, kept with the
evidence row, indexed for Hamming search, and matched against other cases' images at intake.

No image is ever written anywhere by this module: the bytes are decoded in memory, reduced in
memory to the size PDQ works from, hashed, and let go. Only the 256-bit hash and its quality stay.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy
import pdqhash
import sqlalchemy as sa
from PIL import Image, ImageOps
from sqlalchemy.dialects.postgresql import ARRAY, BIT
from sqlmodel import Session

from service.domain.perceptual import CHUNK_COUNT, ImageMatchPolicy, PdqHash, candidate_chunks
from service.storage.models import Evidence, ImageHash, ImageMatch

log = logging.getLogger("intake.images")

# PDQ reduces every image to 64x64 itself; Meta's reference hasher first brings large photos down
# to 512 pixels a side, which costs nothing in matching and most of the time of a 12 MP photo.
HASH_INPUT_SIDE = 512
# Larger than any camera makes: past it, an "image" is a decompression bomb, not evidence to hash.
MAX_HASHED_PIXELS = 200_000_000


@dataclass(frozen=True)
class ImageFingerprint:
    pdq_hash: str
    quality: int


def is_hashable_image(content_type: str) -> bool:
    return content_type.startswith("image/")


def fingerprint_image(data: bytes) -> ImageFingerprint | None:
    """The PDQ hash of an image's bytes, or None if they can't be decoded as an image.

    A picture that can't be hashed is still evidence: it is kept, it just can't be matched.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_HASHED_PIXELS:
                    return None
                # JPEG decodes straight to 1/2, 1/4 or 1/8 size in the DCT: no full-size pixels at all.
                image.draft("RGB", (HASH_INPUT_SIDE, HASH_INPUT_SIDE))
                pixels = ImageOps.exif_transpose(image).convert("RGB")
        if max(pixels.size) > HASH_INPUT_SIDE:
            scale = HASH_INPUT_SIDE / max(pixels.size)
            size = (max(1, round(pixels.width * scale)), max(1, round(pixels.height * scale)))
            pixels = pixels.resize(size, Image.Resampling.BOX)
        bits, quality = pdqhash.compute(numpy.asarray(pixels))
    except Exception as error:  # noqa: BLE001 - any undecodable image is simply not hashed
        log.info('{"event": "image_not_hashed", "why": "%s"}', type(error).__name__)
        return None
    return ImageFingerprint(PdqHash.from_bits(bits.tolist()).hex, int(quality))


# --- the index ---------------------------------------------------------------------------------

_HASHES = ImageHash.__table__
_MATCHES = ImageMatch.__table__
_EVIDENCE = Evidence.__table__
_CHUNK_COLUMNS = [_HASHES.c[f"chunk_{position:02d}"] for position in range(CHUNK_COUNT)]


@dataclass(frozen=True)
class HashMatch:
    evidence_id: str
    case_id: int
    pdq_hash: str
    quality: int
    distance: int


def index_row(evidence_id: str, case_id: int, fingerprint: ImageFingerprint) -> dict:
    chunks = PdqHash.from_hex(fingerprint.pdq_hash).chunks()
    return {
        "evidence_id": evidence_id,
        "case_id": case_id,
        "pdq_hash": fingerprint.pdq_hash,
        "quality": fingerprint.quality,
        **{column.name: chunk for column, chunk in zip(_CHUNK_COLUMNS, chunks, strict=True)},
    }


def find_similar(
    session: Session, query: PdqHash, policy: ImageMatchPolicy, *, exclude_case_id: int | None = None
) -> list[HashMatch]:
    """Stored hashes within policy.max_distance of the query, nearest first, through the chunk
    indexes: one B-tree lookup per chunk neighbour, never a pass over every hash."""
    candidates = candidate_chunks(query, policy.max_distance)
    if session.get_bind().dialect.name == "postgresql":  # an array per chunk: eleven parameters, not thousands
        parameters = {
            "query_bits": f"{query.value:0256b}",
            "max_distance": policy.max_distance,
            "min_quality": policy.min_quality,
            "exclude_case_id": exclude_case_id if exclude_case_id is not None else -1,
            # As array literals: psycopg would otherwise look at each of some 3,000 values on its own.
            **{f"chunk_values_{position}": "{" + ",".join(map(str, values)) + "}" for position, values in candidates},
        }
        return _within(session.connection().execute(_SIMILAR_IN_POSTGRES, parameters), query, policy.max_distance)
    conditions = [_CHUNK_COLUMNS[position].in_(values) for position, values in candidates]
    statement = sa.select(*_FOUND).where(sa.or_(*conditions), _HASHES.c.quality >= policy.min_quality)
    if exclude_case_id is not None:
        statement = statement.where(_HASHES.c.case_id != exclude_case_id)
    return _within(session.connection().execute(statement), query, policy.max_distance)


_FOUND = (_HASHES.c.evidence_id, _HASHES.c.case_id, _HASHES.c.pdq_hash, _HASHES.c.quality)
_distance_in_postgres = sa.func.bit_count(
    sa.cast(sa.literal_column("'x'", sa.String) + _HASHES.c.pdq_hash, BIT(256)).op("#")(
        sa.cast(sa.bindparam("query_bits", type_=sa.String), BIT(256))
    )
)


# The candidates' Hamming distance is checked by PostgreSQL itself, so only matches come back.
_SIMILAR_IN_POSTGRES = sa.select(*_FOUND).where(
    sa.or_(
        *(
            column == sa.any_(sa.cast(sa.bindparam(f"chunk_values_{position}", type_=sa.String), ARRAY(sa.Integer)))
            for position, column in enumerate(_CHUNK_COLUMNS)
        )
    ),
    _HASHES.c.quality >= sa.bindparam("min_quality"),
    _HASHES.c.case_id != sa.bindparam("exclude_case_id"),  # -1: none
    _distance_in_postgres <= sa.bindparam("max_distance"),
)


def find_similar_by_full_scan(
    session: Session, query: PdqHash, policy: ImageMatchPolicy, *, exclude_case_id: int | None = None
) -> list[HashMatch]:
    """The same answer as find_similar, by comparing with every stored hash: the reference the
    index is tested against, and nothing else."""
    statement = sa.select(_HASHES.c.evidence_id, _HASHES.c.case_id, _HASHES.c.pdq_hash, _HASHES.c.quality).where(
        _HASHES.c.quality >= policy.min_quality
    )
    if exclude_case_id is not None:
        statement = statement.where(_HASHES.c.case_id != exclude_case_id)
    return _within(session.execute(statement), query, policy.max_distance)


def _within(rows: Iterable, query: PdqHash, max_distance: int) -> list[HashMatch]:
    found = []
    for evidence_id, case_id, pdq_hash, quality in rows:
        distance = query.distance(PdqHash.from_hex(pdq_hash))
        if distance <= max_distance:
            found.append(HashMatch(evidence_id, case_id, pdq_hash, quality, distance))
    return sorted(found, key=lambda match: (match.distance, match.evidence_id))


def index_and_match(
    session: Session,
    case_id: int,
    fingerprinted: list[tuple[str, ImageFingerprint]],
    *,
    policy: ImageMatchPolicy,
    now: datetime,
) -> list[HashMatch]:
    """Index new evidence hashes and record which other cases' images they match (the caller
    commits). Hashes too poor to match on are indexed all the same, so a later, laxer setting can use them."""
    if not fingerprinted:
        return []
    matches: list[tuple[str, HashMatch]] = []
    for evidence_id, fingerprint in fingerprinted:
        if fingerprint.quality >= policy.min_quality:
            query = PdqHash.from_hex(fingerprint.pdq_hash)
            matches += [(evidence_id, match) for match in find_similar(session, query, policy, exclude_case_id=case_id)]
    session.execute(sa.insert(_HASHES), [index_row(evidence_id, case_id, fp) for evidence_id, fp in fingerprinted])
    if matches:
        session.execute(
            sa.insert(_MATCHES),
            [
                {
                    "evidence_id": evidence_id,
                    "case_id": case_id,
                    "matched_evidence_id": match.evidence_id,
                    "matched_case_id": match.case_id,
                    "distance": match.distance,
                    "created_at": now,
                }
                for evidence_id, match in matches
            ],
        )
    return [match for _, match in matches]


@dataclass(frozen=True)
class ImageLink:
    """One image of this case that matches one image of another case."""

    other_case_id: int
    evidence_id: str
    other_evidence_id: str
    distance: int


def image_links_of(session: Session, case_id: int, max_distance: int) -> list[ImageLink]:
    """Matches recorded at intake, either way round, still within the distance now in force."""
    forward = sa.select(
        _MATCHES.c.matched_case_id, _MATCHES.c.evidence_id, _MATCHES.c.matched_evidence_id, _MATCHES.c.distance
    ).where(_MATCHES.c.case_id == case_id, _MATCHES.c.distance <= max_distance)
    backward = sa.select(
        _MATCHES.c.case_id, _MATCHES.c.matched_evidence_id, _MATCHES.c.evidence_id, _MATCHES.c.distance
    ).where(_MATCHES.c.matched_case_id == case_id, _MATCHES.c.distance <= max_distance)
    rows = session.execute(sa.union_all(forward, backward)).all()
    links = [ImageLink(*row) for row in rows]
    return sorted(links, key=lambda link: (link.other_case_id, link.distance, link.evidence_id))

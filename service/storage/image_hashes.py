"""Perceptual hashes of image evidence: taken from the received bytes in memory, kept with the
evidence row, indexed for Hamming search (beside video frames' hashes, service.storage.video_hashes),
and matched against other cases' images and video frames at intake.

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
from service.storage.models import Evidence, ImageHash, ImageMatch, VideoFrameHash
from service.storage.video_hashes import VideoFingerprint

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
_FRAMES = VideoFrameHash.__table__
_MATCHES = ImageMatch.__table__
_EVIDENCE = Evidence.__table__


def _chunk_columns(table: sa.Table) -> list[sa.Column]:
    return [table.c[f"chunk_{position:02d}"] for position in range(CHUNK_COUNT)]


_CHUNK_COLUMNS = _chunk_columns(_HASHES)


@dataclass(frozen=True)
class HashMatch:
    evidence_id: str
    case_id: int
    pdq_hash: str  # of the matching image, or of a video's nearest frame
    quality: int
    distance: int


def index_row(evidence_id: str, case_id: int, fingerprint: ImageFingerprint) -> dict:
    return {"evidence_id": evidence_id, "case_id": case_id, **hash_columns(fingerprint.pdq_hash, fingerprint.quality)}


def frame_rows(evidence_id: str, case_id: int, video: VideoFingerprint) -> list[dict]:
    return [
        {
            "evidence_id": evidence_id,
            "case_id": case_id,
            "seconds": frame.seconds,
            **hash_columns(frame.pdq_hash, frame.quality),
        }
        for frame in video.frames
    ]


def hash_columns(pdq_hash: str, quality: int) -> dict:
    chunks = PdqHash.from_hex(pdq_hash).chunks()
    return {"pdq_hash": pdq_hash, "quality": quality, **{f"chunk_{n:02d}": chunk for n, chunk in enumerate(chunks)}}


class _HashTable:
    """One table of PDQ hashes cut into chunks, each chunk with its own B-tree: image hashes (one per
    image) and video frames' hashes (several per video). A lookup searches both."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.chunks = _chunk_columns(table)
        self.found = (table.c.evidence_id, table.c.case_id, table.c.pdq_hash, table.c.quality)
        distance = sa.func.bit_count(
            sa.cast(sa.literal_column("'x'", sa.String) + table.c.pdq_hash, BIT(256)).op("#")(
                sa.cast(sa.bindparam("query_bits", type_=sa.String), BIT(256))
            )
        )
        # The candidates' Hamming distance is checked by PostgreSQL itself, so only matches come back.
        self.similar_in_postgres = sa.select(*self.found).where(
            sa.or_(
                *(
                    column
                    == sa.any_(sa.cast(sa.bindparam(f"chunk_values_{position}", type_=sa.String), ARRAY(sa.Integer)))
                    for position, column in enumerate(self.chunks)
                )
            ),
            table.c.quality >= sa.bindparam("min_quality"),
            table.c.case_id != sa.bindparam("exclude_case_id"),  # -1: none
            distance <= sa.bindparam("max_distance"),
        )

    def candidates(self, candidates, min_quality: int, exclude_case_id: int | None) -> sa.Select:
        conditions = [self.chunks[position].in_(values) for position, values in candidates]
        statement = sa.select(*self.found).where(sa.or_(*conditions), self.table.c.quality >= min_quality)
        if exclude_case_id is not None:
            statement = statement.where(self.table.c.case_id != exclude_case_id)
        return statement

    def every(self, min_quality: int, exclude_case_id: int | None) -> sa.Select:
        statement = sa.select(*self.found).where(self.table.c.quality >= min_quality)
        if exclude_case_id is not None:
            statement = statement.where(self.table.c.case_id != exclude_case_id)
        return statement


_TABLES = (_HashTable(_HASHES), _HashTable(_FRAMES))


def find_similar(
    session: Session, query: PdqHash, policy: ImageMatchPolicy, *, exclude_case_id: int | None = None
) -> list[HashMatch]:
    """Evidence whose image (or one of whose video frames) is within policy.max_distance of the query,
    nearest first, one match per evidence file, through the chunk indexes: one B-tree lookup per chunk
    neighbour, never a pass over every hash."""
    candidates = candidate_chunks(query, policy.max_distance)
    connection = session.connection()
    if session.get_bind().dialect.name == "postgresql":  # an array per chunk: eleven parameters, not thousands
        parameters = {
            "query_bits": f"{query.value:0256b}",
            "max_distance": policy.max_distance,
            "min_quality": policy.min_quality,
            "exclude_case_id": exclude_case_id if exclude_case_id is not None else -1,
            # As array literals: psycopg would otherwise look at each of some 3,000 values on its own.
            **{f"chunk_values_{position}": "{" + ",".join(map(str, values)) + "}" for position, values in candidates},
        }
        rows = [row for table in _TABLES for row in connection.execute(table.similar_in_postgres, parameters)]
    else:
        statements = [table.candidates(candidates, policy.min_quality, exclude_case_id) for table in _TABLES]
        rows = [row for statement in statements for row in connection.execute(statement)]
    return _within(rows, query, policy.max_distance)


def find_similar_by_full_scan(
    session: Session, query: PdqHash, policy: ImageMatchPolicy, *, exclude_case_id: int | None = None
) -> list[HashMatch]:
    """The same answer as find_similar, by comparing with every stored hash: the reference the
    index is tested against, and nothing else."""
    rows = [row for table in _TABLES for row in session.execute(table.every(policy.min_quality, exclude_case_id))]
    return _within(rows, query, policy.max_distance)


def _within(rows: Iterable, query: PdqHash, max_distance: int) -> list[HashMatch]:
    nearest: dict[str, HashMatch] = {}
    for evidence_id, case_id, pdq_hash, quality in rows:
        distance = query.distance(PdqHash.from_hex(pdq_hash))
        if distance <= max_distance:
            found = HashMatch(evidence_id, case_id, pdq_hash, quality, distance)
            kept = nearest.get(evidence_id)
            if kept is None or (distance, pdq_hash) < (kept.distance, kept.pdq_hash):
                nearest[evidence_id] = found
    return sorted(nearest.values(), key=lambda match: (match.distance, match.evidence_id))


def index_and_match(
    session: Session,
    case_id: int,
    fingerprinted: list[tuple[str, ImageFingerprint]],
    *,
    policy: ImageMatchPolicy,
    now: datetime,
    videos: list[tuple[str, VideoFingerprint]] = (),
) -> list[HashMatch]:
    """Index new evidence hashes (images' and video frames') and record which other cases' images and
    videos they match, once per pair of evidence files at the nearest distance (the caller commits).
    Hashes too poor to match on are indexed all the same, so a later, laxer setting can use them."""
    hashes = [(evidence_id, fp.pdq_hash, fp.quality) for evidence_id, fp in fingerprinted]
    hashes += [(evidence_id, frame.pdq_hash, frame.quality) for evidence_id, video in videos for frame in video.frames]
    if not hashes:
        return []
    nearest: dict[tuple[str, str], HashMatch] = {}
    for evidence_id, pdq_hash, quality in hashes:
        if quality < policy.min_quality:
            continue
        for match in find_similar(session, PdqHash.from_hex(pdq_hash), policy, exclude_case_id=case_id):
            pair = (evidence_id, match.evidence_id)
            if pair not in nearest or match.distance < nearest[pair].distance:
                nearest[pair] = match
    if fingerprinted:
        session.execute(sa.insert(_HASHES), [index_row(evidence_id, case_id, fp) for evidence_id, fp in fingerprinted])
    frames = [row for evidence_id, video in videos for row in frame_rows(evidence_id, case_id, video)]
    if frames:
        session.execute(sa.insert(_FRAMES), frames)
    if nearest:
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
                for (evidence_id, _), match in nearest.items()
            ],
        )
    return list(nearest.values())


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

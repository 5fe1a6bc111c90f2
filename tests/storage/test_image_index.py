"""The Hamming index answers exactly what comparing with every stored hash answers, on both databases."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from service.domain.perceptual import CHUNK_COUNT, CHUNK_SHIFTS, CHUNK_WIDTHS, ImageMatchPolicy, PdqHash
from service.storage.database import session_scope
from service.storage.image_hashes import ImageFingerprint, find_similar, find_similar_by_full_scan, index_row
from service.storage.models import Case, Evidence, ImageHash
from tests.support.apps import BACKENDS, fresh_database_url
from tests.support.database import database_engine

NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path_factory):
    with database_engine(fresh_database_url(request.param, request, tmp_path_factory)) as made:
        yield made


def spread_flips(value: int, distance: int, rng: random.Random) -> int:
    """`distance` bits flipped, dealt round the chunks as evenly as they go (hardest for the index)."""
    order = list(range(CHUNK_COUNT))
    rng.shuffle(order)
    used = [0] * CHUNK_COUNT
    flipped = 0
    while flipped < distance:  # distance <= 256: each bit once
        for chunk in order:
            if flipped < distance and used[chunk] < CHUNK_WIDTHS[chunk]:
                value ^= 1 << (CHUNK_SHIFTS[chunk] + used[chunk])
                used[chunk] += 1
                flipped += 1
    return value


def store_hashes(engine, values: list[tuple[int, int]]) -> None:
    """One case per 50 hashes; (hash, quality) pairs."""
    with session_scope(engine) as session:
        case_ids = []
        for _ in range(0, len(values), 50):
            case_ids.append(
                session.execute(
                    sa.insert(Case.__table__).returning(Case.__table__.c.id),
                    {
                        "reference": uuid.uuid4().hex[:12],
                        "reporter_token_sha256": uuid.uuid4().hex,
                        "status": "received",
                        "priority": "normal",
                        "flags": [],
                        "next_steps": [],
                        "submission": {},
                        "created_at": NOW,
                        "updated_at": NOW,
                    },
                ).scalar_one()
            )
        evidence, index = [], []
        for number, (value, quality) in enumerate(values):
            evidence_id = f"{number:016x}{uuid.uuid4().hex[:16]}"
            case_id = case_ids[number // 50]
            fingerprint = ImageFingerprint(PdqHash(value).hex, quality)
            evidence.append(
                {
                    "id": evidence_id,
                    "case_id": case_id,
                    "object_key": uuid.uuid4().hex,
                    "filename": "synthetic.jpg",
                    "content_type": "image/jpeg",
                    "size": 1,
                    "sha256": "0" * 64,
                    "received_at": NOW,
                    "received_by": "test",
                    "pdq_hash": fingerprint.pdq_hash,
                    "pdq_quality": quality,
                }
            )
            index.append(index_row(evidence_id, case_id, fingerprint))
        session.execute(sa.insert(Evidence.__table__), evidence)
        session.execute(sa.insert(ImageHash.__table__), index)
        session.commit()


def test_the_index_finds_exactly_what_a_full_scan_finds(engine):
    rng = random.Random(14)
    queries = [rng.getrandbits(256) for _ in range(12)]
    stored = [(rng.getrandbits(256), rng.choice([100, 100, 100, 30])) for _ in range(3000)]
    for query in queries:
        # Neighbours on both sides of every threshold tried below, plus exact copies.
        for distance in (0, 1, 5, 15, 16, 17, 24, 30, 31, 32, 33, 40, 47, 48, 64):
            stored.append((spread_flips(query, distance, rng), rng.choice([100, 100, 40])))
    store_hashes(engine, stored)

    with session_scope(engine) as session:
        total_found = 0
        for query in queries:
            for policy in (
                ImageMatchPolicy(),
                ImageMatchPolicy(max_distance=15, min_quality=0),
                ImageMatchPolicy(max_distance=16, min_quality=50),
                ImageMatchPolicy(max_distance=47, min_quality=0),
                ImageMatchPolicy(max_distance=0, min_quality=0),
            ):
                by_index = find_similar(session, PdqHash(query), policy)
                by_scan = find_similar_by_full_scan(session, PdqHash(query), policy)
                assert by_index == by_scan
                assert all(match.distance <= policy.max_distance for match in by_index)
                assert all(match.quality >= policy.min_quality for match in by_index)
                total_found += len(by_index)
        assert total_found > 0  # the comparison was not between two empty answers


def test_a_search_leaves_out_the_case_it_is_made_for(engine):
    value = random.Random(1).getrandbits(256)
    store_hashes(engine, [(value, 100)])
    with session_scope(engine) as session:
        (match,) = find_similar(session, PdqHash(value), ImageMatchPolicy())
        assert match.distance == 0
        assert find_similar(session, PdqHash(value), ImageMatchPolicy(), exclude_case_id=match.case_id) == []

"""PDQ hashes as values: hex form, Hamming distance, and the pigeonhole rule the index relies on."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.perceptual import (
    CHUNK_COUNT,
    CHUNK_SHIFTS,
    CHUNK_WIDTHS,
    NotAPdqHash,
    PdqHash,
    candidate_chunks,
    chunk_neighbours,
    chunk_radius,
    may_be_within,
)

hashes = st.integers(min_value=0, max_value=(1 << 256) - 1).map(PdqHash)


def flipped(value: PdqHash, positions) -> PdqHash:
    result = value.value
    for position in positions:
        result ^= 1 << position
    return PdqHash(result)


def test_hex_round_trips_and_is_64_lower_case_digits():
    text = "F" * 8 + "0" * 56
    assert PdqHash.from_hex(text).hex == text.lower()
    for bad in ("", "f" * 63, "f" * 65, "g" * 64, " " + "f" * 63):
        with pytest.raises(NotAPdqHash):
            PdqHash.from_hex(bad)


def test_bits_are_read_most_significant_first():
    assert PdqHash.from_bits([1] + [0] * 255).hex == "8" + "0" * 63
    assert PdqHash.from_bits([0] * 255 + [1]).hex == "0" * 63 + "1"


def test_chunks_cut_the_hash_into_eleven_pieces_of_23_or_24_bits_in_order():
    assert CHUNK_WIDTHS == (24, 24, 24) + (23,) * 8 and sum(CHUNK_WIDTHS) == 256
    value = 0
    for position, width in enumerate(CHUNK_WIDTHS):
        value = (value << width) | (position + 1)
    assert PdqHash(value).chunks() == tuple(range(1, 12))
    assert PdqHash((1 << 256) - 1).chunks() == tuple((1 << width) - 1 for width in CHUNK_WIDTHS)


@given(hashes, st.sets(st.integers(0, 255), max_size=64))
def test_distance_counts_the_bits_that_differ(value, positions):
    assert value.distance(flipped(value, positions)) == len(positions)


def test_chunk_neighbours_are_every_value_within_the_radius():
    assert list(chunk_neighbours(0, 0, 23)) == [0]
    ones = list(chunk_neighbours(0, 1, 23))
    assert ones[0] == 0 and sorted(ones[1:]) == [1 << bit for bit in range(23)]
    assert len(set(chunk_neighbours(0xBEEF, 2, 24))) == 1 + 24 + 276


def test_the_recommended_distance_searches_each_chunk_within_two_bits():
    assert chunk_radius(31) == 2 and chunk_radius(33) == 3 and chunk_radius(10) == 0
    counts = [len(values) for _, values in candidate_chunks(PdqHash(12345), 31)]
    assert counts == [1 + 24 + 276] * 3 + [1 + 23 + 253] * 8


def spread_positions(distance: int, rng: random.Random) -> list[int]:
    """`distance` bit positions dealt round the chunks in a random order, as evenly as they go."""
    order = list(range(CHUNK_COUNT))
    rng.shuffle(order)
    used = [0] * CHUNK_COUNT
    positions = []
    while len(positions) < distance:
        for chunk in order:
            if len(positions) < distance and used[chunk] < CHUNK_WIDTHS[chunk]:
                positions.append(CHUNK_SHIFTS[chunk] + used[chunk])
                used[chunk] += 1
    return positions


@given(hashes, st.integers(0, 64), st.randoms(use_true_random=False))
def test_no_hash_within_the_distance_is_ever_left_out_of_the_candidates(query, distance, rng: random.Random):
    # The hardest case for the index: the differing bits spread as evenly over the chunks as they go.
    near = flipped(query, spread_positions(distance, rng))
    assert query.distance(near) == distance
    assert may_be_within(near, query, distance)
    for max_distance in range(distance, 65, 7):
        assert may_be_within(near, query, max_distance)

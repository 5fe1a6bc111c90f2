"""PDQ hashes as values: hex form, Hamming distance, and the pigeonhole rule the index relies on."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.perceptual import (
    CHUNK_COUNT,
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


def test_chunks_cut_the_hash_into_sixteen_sixteen_bit_pieces_in_order():
    value = PdqHash.from_hex("".join(f"{position:04x}" for position in range(16)))
    assert value.chunks() == tuple(range(16))


@given(hashes, st.sets(st.integers(0, 255), max_size=64))
def test_distance_counts_the_bits_that_differ(value, positions):
    assert value.distance(flipped(value, positions)) == len(positions)


def test_chunk_neighbours_are_every_value_within_the_radius():
    assert list(chunk_neighbours(0, 0)) == [0]
    ones = list(chunk_neighbours(0, 1))
    assert ones[0] == 0 and sorted(ones[1:]) == [1 << bit for bit in range(16)]
    assert len(set(chunk_neighbours(0xBEEF, 2))) == 1 + 16 + 120


def test_the_recommended_distance_searches_each_chunk_within_one_bit():
    assert chunk_radius(31) == 1 and chunk_radius(32) == 2 and chunk_radius(15) == 0
    assert all(len(values) == 17 for _, values in candidate_chunks(PdqHash(12345), 31))


@given(hashes, st.integers(0, 64), st.randoms(use_true_random=False))
def test_no_hash_within_the_distance_is_ever_left_out_of_the_candidates(query, distance, rng: random.Random):
    # The hardest case for the index: the differing bits spread as evenly over the chunks as they go.
    chunks = list(range(CHUNK_COUNT))
    rng.shuffle(chunks)
    positions = [chunks[i % CHUNK_COUNT] * 16 + (i // CHUNK_COUNT) for i in range(distance)]
    near = flipped(query, positions)
    assert query.distance(near) == distance
    assert may_be_within(near, query, distance)
    for max_distance in range(distance, 65, 7):
        assert may_be_within(near, query, max_distance)

"""Case references: readable, with a check character that catches typing mistakes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.domain.reference import RANDOM_LENGTH, REFERENCE_ALPHABET, canonical_reference, reference_from_random

random_bytes = st.binary(min_size=RANDOM_LENGTH, max_size=RANDOM_LENGTH)


@given(random_bytes)
def test_a_reference_uses_no_confusable_characters_and_checks_itself(seed):
    reference = reference_from_random(seed)
    compact = reference.replace("-", "")
    assert len(compact) == RANDOM_LENGTH + 1
    assert not set(compact) & set("01OI")
    assert canonical_reference(reference) == reference


@given(random_bytes)
def test_a_reference_typed_in_lower_case_or_without_dashes_is_still_found(seed):
    reference = reference_from_random(seed)
    assert canonical_reference(reference.lower().replace("-", " ")) == reference


@given(random_bytes, st.integers(min_value=0, max_value=RANDOM_LENGTH), st.sampled_from(REFERENCE_ALPHABET))
def test_every_single_mistyped_character_is_caught(seed, position, replacement):
    compact = reference_from_random(seed).replace("-", "")
    if compact[position] == replacement:
        return
    typo = compact[:position] + replacement + compact[position + 1 :]
    assert canonical_reference(typo) is None


@given(random_bytes, st.integers(min_value=0, max_value=RANDOM_LENGTH - 1))
def test_swapping_two_neighbours_is_caught_almost_always(seed, position):
    compact = reference_from_random(seed).replace("-", "")
    first, second = compact[position], compact[position + 1]
    swapped = compact[:position] + second + first + compact[position + 2 :]
    # Luhn mod N misses only the swap of the alphabet's first and last characters.
    if first == second or {first, second} == {REFERENCE_ALPHABET[0], REFERENCE_ALPHABET[-1]}:
        return
    assert canonical_reference(swapped) is None


def test_garbage_is_not_a_reference():
    for text in ["", "ABC", "0000-0000-0000", "AAAA-AAAA-AAAA-AAAA", "🙂" * 12]:
        assert canonical_reference(text) is None

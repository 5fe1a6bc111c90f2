"""PDQ perceptual hashes: what they are, how far apart two are, and how to find near ones fast.

PDQ (Meta's open perceptual hash, used by StopNCII and Take It Down) turns an image into 256 bits
that change little when the image is re-encoded, resized or slightly cropped. Two images whose
hashes differ in at most 31 bits are, by Meta's guidance, the same picture.

Finding every stored hash within distance r of a query without comparing against all of them is
multi-index hashing (Norouzi, Punjani and Fleet, 2012): cut the 256 bits into 16 chunks of 16
bits. If two hashes differ in at most r bits, then by the pigeonhole principle at least one chunk
differs in at most floor(r / 16) bits. So the candidates are the hashes that have, in some chunk
position, a value within that small radius of the query's chunk: an exact lookup per neighbour
value, which an ordinary B-tree index answers. Candidates are then checked at full length.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations

HASH_BITS = 256
CHUNK_BITS = 16
CHUNK_COUNT = HASH_BITS // CHUNK_BITS
CHUNK_MASK = (1 << CHUNK_BITS) - 1
HEX_PATTERN = r"^[0-9a-fA-F]{64}$"
_HEX = re.compile(HEX_PATTERN)

# Meta's recommended match threshold (of 256 bits) and the quality below which a hash is too
# unreliable to match on (a flat or nearly blank image); the service's settings default to these.
RECOMMENDED_MAX_DISTANCE = 31
RECOMMENDED_MIN_QUALITY = 50


@dataclass(frozen=True)
class ImageMatchPolicy:
    """When two images count as the same picture."""

    max_distance: int = RECOMMENDED_MAX_DISTANCE
    min_quality: int = RECOMMENDED_MIN_QUALITY


class NotAPdqHash(ValueError):
    pass


@dataclass(frozen=True)
class PdqHash:
    """256 bits, written as 64 hexadecimal digits, most significant first (as Meta's tools do)."""

    value: int

    @classmethod
    def from_hex(cls, text: str) -> PdqHash:
        if not _HEX.match(text):
            raise NotAPdqHash("A PDQ hash is 64 hexadecimal digits (256 bits).")
        return cls(int(text, 16))

    @classmethod
    def from_bits(cls, bits) -> PdqHash:
        """From a sequence of 256 0/1 values, first bit most significant."""
        value = 0
        for bit in bits:
            value = (value << 1) | (1 if bit else 0)
        return cls(value)

    @property
    def hex(self) -> str:
        return f"{self.value:064x}"

    def distance(self, other: PdqHash) -> int:
        return (self.value ^ other.value).bit_count()

    def chunks(self) -> tuple[int, ...]:
        """The 16 sixteen-bit chunks, chunk 0 being the most significant."""
        return tuple(
            (self.value >> (HASH_BITS - CHUNK_BITS * (position + 1))) & CHUNK_MASK for position in range(CHUNK_COUNT)
        )


def chunk_radius(max_distance: int) -> int:
    """How far one chunk may be from the query's chunk for the whole hash to be within max_distance."""
    if max_distance < 0:
        raise ValueError("a distance is never negative")
    return max_distance // CHUNK_COUNT


def chunk_neighbours(chunk: int, radius: int) -> Iterator[int]:
    """Every 16-bit value within `radius` bits of `chunk`, itself first."""
    for flips in range(min(radius, CHUNK_BITS) + 1):
        for positions in combinations(range(CHUNK_BITS), flips):
            flipped = chunk
            for position in positions:
                flipped ^= 1 << position
            yield flipped


def candidate_chunks(query: PdqHash, max_distance: int) -> list[tuple[int, list[int]]]:
    """For each chunk position, the chunk values a stored hash must have in at least one position
    to possibly be within max_distance: no hash within it is left out (pigeonhole)."""
    radius = chunk_radius(max_distance)
    return [(position, list(chunk_neighbours(chunk, radius))) for position, chunk in enumerate(query.chunks())]


def may_be_within(stored: PdqHash, query: PdqHash, max_distance: int) -> bool:
    """What the index answers for one stored hash: some chunk within the chunk radius."""
    radius = chunk_radius(max_distance)
    return any((a ^ b).bit_count() <= radius for a, b in zip(stored.chunks(), query.chunks(), strict=True))

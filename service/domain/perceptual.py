"""PDQ perceptual hashes: what they are, how far apart two are, and how to find near ones fast.

PDQ (Meta's open perceptual hash, used by StopNCII and Take It Down) turns an image into 256 bits
that change little when the image is re-encoded, resized or slightly cropped. Two images whose
hashes differ in at most 31 bits are, by Meta's guidance, the same picture.

Finding every stored hash within distance r of a query without comparing against all of them is
multi-index hashing (Norouzi, Punjani and Fleet, 2012): cut the 256 bits into m chunks. If two
hashes differ in at most r bits, then by the pigeonhole principle at least one chunk differs in at
most floor(r / m) bits. So the candidates are the hashes that have, in some chunk position, a value
within that small radius of the query's chunk: an exact lookup per neighbour value, which an
ordinary B-tree index answers. Candidates are then checked at full length.

The chunk count trades probes against candidates. At r = 31: 16 chunks of 16 bits is radius 1,
17 probes a chunk (272), but a 16-bit value is shared by one stored hash in 65,536, so a million
hashes give some 4,000 candidates to fetch and check. 11 chunks of 23-24 bits is radius 2, about
3,100 probes, and a 23-bit value is shared by one hash in 8 million: some 300 candidates. Fetching
rows costs far more than probing an index, so 11 it is (Norouzi et al. advise chunks of about
log2(stored hashes) bits: 20 at a million, 23-24 as the index grows).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from itertools import combinations

HASH_BITS = 256
# Most significant first: three chunks of 24 bits, then eight of 23.
CHUNK_WIDTHS = (24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23)
CHUNK_COUNT = len(CHUNK_WIDTHS)
# How far each chunk's lowest bit is from the hash's lowest bit.
CHUNK_SHIFTS = tuple(HASH_BITS - sum(CHUNK_WIDTHS[: position + 1]) for position in range(CHUNK_COUNT))
assert sum(CHUNK_WIDTHS) == HASH_BITS
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
        """The chunks (CHUNK_WIDTHS), chunk 0 being the most significant."""
        return tuple(
            (self.value >> shift) & ((1 << width) - 1) for shift, width in zip(CHUNK_SHIFTS, CHUNK_WIDTHS, strict=True)
        )


def chunk_radius(max_distance: int) -> int:
    """How far one chunk may be from the query's chunk for the whole hash to be within max_distance."""
    if max_distance < 0:
        raise ValueError("a distance is never negative")
    return max_distance // CHUNK_COUNT


def chunk_neighbours(chunk: int, radius: int, width: int) -> list[int]:
    """Every `width`-bit value within `radius` bits of `chunk`, itself first."""
    return [chunk ^ mask for mask in _flip_masks(radius, width)]


@functools.cache
def _flip_masks(radius: int, width: int) -> tuple[int, ...]:
    """Every way of flipping at most `radius` of `width` bits, none first: worked out once."""
    masks = []
    for flips in range(min(radius, width) + 1):
        for positions in combinations(range(width), flips):
            mask = 0
            for position in positions:
                mask |= 1 << position
            masks.append(mask)
    return tuple(masks)


def candidate_chunks(query: PdqHash, max_distance: int) -> list[tuple[int, list[int]]]:
    """For each chunk position, the chunk values a stored hash must have in at least one position
    to possibly be within max_distance: no hash within it is left out (pigeonhole)."""
    radius = chunk_radius(max_distance)
    return [
        (position, chunk_neighbours(chunk, radius, CHUNK_WIDTHS[position]))
        for position, chunk in enumerate(query.chunks())
    ]


def may_be_within(stored: PdqHash, query: PdqHash, max_distance: int) -> bool:
    """What the index answers for one stored hash: some chunk within the chunk radius."""
    radius = chunk_radius(max_distance)
    return any((a ^ b).bit_count() <= radius for a, b in zip(stored.chunks(), query.chunks(), strict=True))

"""Case references: short enough to read over the phone, unguessable, and self-checking.

The alphabet leaves out 0/O and 1/I, which people confuse. The last character is a Luhn mod N
check character, which catches every single mistyped character and every swap of two neighbours
(bar one pair), so a mistyped reference is refused before any lookup and can never land on
someone else's case.
"""

from __future__ import annotations

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
RANDOM_LENGTH = 11  # 55 bits; the reference alone grants nothing, a token is always needed too
GROUP = 4


def reference_from_random(random_bytes: bytes) -> str:
    """A reference built from at least RANDOM_LENGTH random bytes handed in by the caller."""
    if len(random_bytes) < RANDOM_LENGTH:
        raise ValueError(f"need {RANDOM_LENGTH} random bytes")
    body = "".join(REFERENCE_ALPHABET[byte % len(REFERENCE_ALPHABET)] for byte in random_bytes[:RANDOM_LENGTH])
    return _grouped(body + _check_character(body))


def canonical_reference(text: str) -> str | None:
    """The reference as stored, from what someone typed; None if it cannot be a valid reference."""
    compact = "".join(char for char in text.upper() if char not in " -")
    if len(compact) != RANDOM_LENGTH + 1 or any(char not in REFERENCE_ALPHABET for char in compact):
        return None
    if _check_character(compact[:-1]) != compact[-1]:
        return None
    return _grouped(compact)


def _check_character(body: str) -> str:
    base = len(REFERENCE_ALPHABET)
    total = 0
    factor = 2
    for char in reversed(body):
        addend = factor * REFERENCE_ALPHABET.index(char)
        total += addend // base + addend % base
        factor = 1 if factor == 2 else 2
    return REFERENCE_ALPHABET[(base - total % base) % base]


def _grouped(compact: str) -> str:
    return "-".join(compact[i : i + GROUP] for i in range(0, len(compact), GROUP))

"""Perceptual hashing of image evidence (PDQ): robustness to what re-sharing does, false matches among
unrelated pictures, and the time to hash a 12-megapixel photo, beside decoding it fully in the same run.

    .venv/bin/python bench/images.py [--pictures 50] [--unrelated 10000] [--runs 15]
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import time

import numpy
from _harness import Target, print_rows
from PIL import Image

from devsupport.images import cropped, encoded, half_size, synthetic_picture
from service.domain.perceptual import RECOMMENDED_MAX_DISTANCE, PdqHash
from service.storage.image_hashes import fingerprint_image

MAX_DISTANCE = RECOMMENDED_MAX_DISTANCE


def pdq(data: bytes) -> PdqHash:
    fingerprint = fingerprint_image(data)
    assert fingerprint is not None
    return PdqHash.from_hex(fingerprint.pdq_hash)


def robustness(pictures: int) -> dict[str, list[int]]:
    distances: dict[str, list[int]] = {"JPEG q70": [], "half size": [], "5% crop": []}
    for seed in range(pictures):
        picture = synthetic_picture(1_000_000 + seed)
        original = pdq(encoded(picture, quality=95))
        distances["JPEG q70"].append(original.distance(pdq(encoded(picture, quality=70))))
        distances["half size"].append(original.distance(pdq(encoded(half_size(picture)))))
        distances["5% crop"].append(original.distance(pdq(encoded(cropped(picture, 0.05)))))
    return distances


def false_matches(count: int) -> tuple[int, int]:
    """Pairs of unrelated pictures within the match distance, counted over every pair (numpy popcount)."""
    hashes = numpy.zeros((count, 32), dtype=numpy.uint8)
    for seed in range(count):
        hashes[seed] = numpy.frombuffer(pdq(encoded(synthetic_picture(seed, 256, 192))).value.to_bytes(32), numpy.uint8)
    popcount = numpy.array([bin(value).count("1") for value in range(256)], dtype=numpy.uint16)
    within, closest = 0, 256
    for start in range(0, count, 256):
        block = hashes[start : start + 256]
        distances = popcount[block[:, None, :] ^ hashes[None, :, :]].sum(axis=2)
        for row in range(block.shape[0]):
            distances[row, : start + row + 1] = 256  # each pair once, never a picture with itself
        within += int((distances <= MAX_DISTANCE).sum())
        closest = min(closest, int(distances.min()))
    return within, closest


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def hashing_time(runs: int) -> tuple[float, float, float, float]:
    photo = encoded(synthetic_picture(7, 4000, 3000), quality=90)  # 12 megapixels
    hash_ms, decode_ms = [], []
    cpu_before = cpu_seconds()
    for _ in range(runs):
        started = time.perf_counter()
        fingerprint_image(photo)
        hash_ms.append((time.perf_counter() - started) * 1000)
    hash_cpu_ms = (cpu_seconds() - cpu_before) / runs * 1000
    for _ in range(runs):
        started = time.perf_counter()
        with Image.open(io.BytesIO(photo)) as image:
            image.load()  # the baseline: decoding the photo fully, as any viewer would
        decode_ms.append((time.perf_counter() - started) * 1000)
    return statistics.median(hash_ms), max(hash_ms), hash_cpu_ms, statistics.median(decode_ms)


def main(argv: list[str] | None = None) -> list[Target]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=50)
    parser.add_argument("--unrelated", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args(argv)

    distances = robustness(options.pictures)
    rows = [("variant", "matched", "median distance", "largest distance")]
    for name, values in distances.items():
        matched = sum(value <= MAX_DISTANCE for value in values)
        rows.append((name, f"{matched}/{len(values)}", f"{statistics.median(values):.0f}", str(max(values))))
    print_rows(rows)
    within, closest = false_matches(options.unrelated)
    print(f"unrelated pictures: {options.unrelated:,}; pairs within {MAX_DISTANCE}: {within}; closest pair: {closest}")
    median_ms, worst_ms, cpu_ms, decode_ms = hashing_time(options.runs)
    print(
        f"12 MP JPEG: hash median {median_ms:.1f} ms (worst {worst_ms:.1f}, CPU {cpu_ms:.1f} ms per hash); "
        f"full decode alone, the baseline: {decode_ms:.1f} ms; ratio {median_ms / decode_ms:.2f}"
    )

    def share(name: str) -> float:
        return sum(value <= MAX_DISTANCE for value in distances[name]) / len(distances[name])

    return [
        Target("images", "JPEG q70 copies matched", share("JPEG q70"), 1.0),
        Target("images", "half-size copies matched", share("half size"), 1.0),
        Target("images", "5%-cropped copies matched", share("5% crop"), 1.0),
        Target("images", f"false matches among {options.unrelated:,}", within, 0, False),
        Target("images", "hash a 12 MP JPEG, median", median_ms, 50, False, " ms"),
        Target("images", "hash ÷ full decode (same run)", median_ms / decode_ms, 1.0, False),
    ]


if __name__ == "__main__":
    main()

"""Perceptual hashing of video evidence (vPDQ frames, the optional `video` extra): CPU per second of
video beside decoding the same video alone with ffmpeg in the same run, and whether a re-encoded,
rescaled copy still matches while unrelated videos do not.

    .venv/bin/python bench/videos.py [--videos 3] [--seconds 10]

Judged by: copies matched, no false matches, hashing CPU within the default limit's share per second
(INTAKE_VIDEO_HASH_CPU_SECONDS over INTAKE_VIDEO_HASH_MAX_FRAMES: the frame limit is reached within the
CPU limit for a 720p video), and hashing CPU against decoding the same videos alone.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _harness import Target, print_rows

from service.domain.perceptual import RECOMMENDED_MAX_DISTANCE, PdqHash
from service.settings import Settings
from service.storage.objects import LocalObjectStore
from service.storage.video_hashes import VideoFingerprint, VideoFrameHasher

MAX_DISTANCE = RECOMMENDED_MAX_DISTANCE
FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def make_video(target: Path, seed: int, seconds: int) -> None:
    """720p, 30 frames a second, H.264: what a phone sends, from FFmpeg's `life` source in 8-pixel cells."""
    source = f"life=seed={seed}:size=160x90:rate=30:mold=10:life_color=#00ff00:death_color=#aa0000"
    scale = "scale=1280:720:flags=neighbor"
    arguments = ["-f", "lavfi", "-i", source, "-t", str(seconds), "-vf", scale, "-pix_fmt", "yuv420p"]
    subprocess.run([*FFMPEG, *arguments, "-preset", "veryfast", str(target)], check=True)


def re_encode(source: Path, target: Path) -> None:
    subprocess.run([*FFMPEG, "-i", str(source), "-vf", "scale=854:480", "-crf", "32", str(target)], check=True)


def nearest(one: VideoFingerprint, other: VideoFingerprint) -> int:
    return min(
        PdqHash.from_hex(a.pdq_hash).distance(PdqHash.from_hex(b.pdq_hash))
        for a in one.frames
        for b in other.frames
        if a.quality >= 50 and b.quality >= 50
    )


def main(argv: list[str] | None = None) -> list[Target]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    options = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is missing: scripts/ensure-system-packages.sh --video")
    hasher = VideoFrameHasher(max_frames=3600, cpu_seconds=600)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        store = LocalObjectStore(root / "store", lambda: "bench")
        originals, copies = [], []
        for seed in range(options.videos):
            original, copy = root / "store" / f"o{seed}.mp4", root / "store" / f"c{seed}.mkv"
            make_video(original, 1000 + seed, options.seconds)
            re_encode(original, copy)
            originals.append(original.name)
            copies.append(copy.name)

        hash_cpu, hash_wall, prints = 0.0, 0.0, {}
        for name in originals + copies:
            before, started = children_cpu(), time.perf_counter()
            prints[name] = hasher.fingerprint(store, name)
            hash_cpu += children_cpu() - before
            hash_wall += time.perf_counter() - started
        before = children_cpu()
        for name in originals + copies:  # the baseline: decoding every frame, as any player would
            subprocess.run([*FFMPEG, "-threads", "1", "-i", str(root / "store" / name), "-f", "null", "-"], check=True)
        decode_cpu = children_cpu() - before

    video_seconds = options.seconds * len(prints)
    copy_distances = [nearest(prints[o], prints[c]) for o, c in zip(originals, copies, strict=True)]
    unrelated = [nearest(prints[a], prints[b]) for i, a in enumerate(originals) for b in originals[i + 1 :]]
    frames = sum(len(fingerprint.frames) for fingerprint in prints.values())
    print_rows(
        [
            ("measure", "value"),
            ("videos hashed (720p originals and 480p copies)", str(len(prints))),
            ("seconds of video each", str(options.seconds)),
            ("frames kept", str(frames)),
            ("hash CPU per second of video", f"{hash_cpu / video_seconds * 1000:.1f} ms"),
            ("hash wall time per second of video", f"{hash_wall / video_seconds * 1000:.1f} ms"),
            ("ffmpeg decode alone, CPU per second of video", f"{decode_cpu / video_seconds * 1000:.1f} ms"),
            ("re-encoded copies: nearest frame distances", ", ".join(map(str, copy_distances))),
            ("unrelated videos: nearest frame distances", ", ".join(map(str, unrelated))),
        ]
    )
    defaults = Settings()
    budget_ms = defaults.video_hash_cpu_seconds / defaults.video_hash_max_frames * 1000
    matched = sum(distance <= MAX_DISTANCE for distance in copy_distances) / len(copy_distances)
    false = sum(distance <= MAX_DISTANCE for distance in unrelated)
    return [
        Target("videos", "re-encoded 480p copies matched", matched, 1.0),
        Target("videos", f"false matches among {len(originals)} videos", false, 0, False),
        Target("videos", "hash CPU per second of 720p video", hash_cpu / video_seconds * 1000, budget_ms, False, " ms"),
        Target("videos", "hash CPU ÷ ffmpeg decode CPU (same run)", hash_cpu / decode_cpu, 1.5, False),
    ]


if __name__ == "__main__":
    main()

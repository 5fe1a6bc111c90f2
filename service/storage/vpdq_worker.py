"""The child process that hashes one video's still frames with vPDQ (run by service.storage.video_hashes).

It limits itself before it reads a byte: CPU time (the kernel stops it at the limit), memory, and a low
priority, so a hostile video costs at most that and the service's requests go first. vPDQ answers only
once it has read to the end, so the video is hashed over ever longer spans from its start (30 s, 2 min,
8 min, ...: at most a third more work than the last span alone) and each span's frames are printed as
soon as they are known: if the limit stops the child, the frames of the last span it finished stand.

Only hashes leave this process (as JSON on stdout). FFmpeg's messages go to a stderr nobody reads.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
from pathlib import Path

SPAN_GROWTH = 4
MEMORY_BYTES = 4 * 1024**3  # far above any real frame; a decompression bomb's frames stop here


def limit_self(cpu_seconds: float) -> None:
    whole = max(1, math.ceil(cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (whole, whole + 1))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    os.nice(10)


def hash_spans(folder: Path, seconds_per_hash: float, max_frames: int, first_span_seconds: float) -> None:
    import vpdq

    longest = max_frames * seconds_per_hash
    span = min(first_span_seconds, longest)
    while True:
        # The concat demuxer reads the video (a name in this private folder) up to `outpoint` only: the
        # same frames at the same times as the whole video, without seeking or writing anything.
        listing = folder / "span.ffconcat"
        listing.write_text(f"ffconcat version 1.0\nfile video\noutpoint {span}\n")
        features = vpdq.computeHash(str(listing), seconds_per_hash=seconds_per_hash, thread_count=1)
        frames = [[feature.timestamp, feature.hex, feature.quality] for feature in features]
        frames = [frame for frame in frames if frame[0] < span][:max_frames]
        print(json.dumps(frames), flush=True)
        ended = not frames or frames[-1][0] < span - 1.5 * seconds_per_hash
        if ended or span >= longest:
            return
        span = min(span * SPAN_GROWTH, longest)


def main() -> None:
    job = json.loads(sys.argv[1])
    limit_self(job["cpu_seconds"])
    hash_spans(Path(job["folder"]), job["seconds_per_hash"], job["max_frames"], job["first_span_seconds"])


if __name__ == "__main__":
    main()

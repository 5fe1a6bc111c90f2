"""Synthetic videos for the video-matching tests, made by FFmpeg's own test sources (lavfi): no real
footage anywhere. `make test` installs ffmpeg (scripts/ensure-system-packages.sh --video)."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:  # never a skip: `make test` installs it
        raise RuntimeError("ffmpeg is missing: run scripts/ensure-system-packages.sh --video (make test does)")
    return found


def _run(*arguments: str, output: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / output
        subprocess.run(  # noqa: S603 - ffmpeg with our own arguments
            [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *arguments, str(target)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return target.read_bytes()


def synthetic_video(seed: int, *, seconds: float = 4, container: str = "mp4") -> bytes:
    """A few seconds of Conway's game of life from a random start (FFmpeg's `life` source): each seed
    its own picture, so no two tests' videos match."""
    # Cells of 8 by 8 pixels: shapes a perceptual hash sees, not pixel noise that any rescaling changes.
    source = f"life=seed={seed}:size=80x45:rate=10:mold=10:life_color=#00ff00:death_color=#aa0000"
    arguments = ["-f", "lavfi", "-i", source, "-t", str(seconds), "-vf", "scale=640:360:flags=neighbor"]
    return _run(*arguments, "-pix_fmt", "yuv420p", output=f"video.{container}")


def re_encoded(video: bytes, *, scale: str, container: str, quality: list[str]) -> bytes:
    """The same video rescaled and encoded again (another codec, container and bitrate)."""
    with tempfile.NamedTemporaryFile(suffix=".video") as original:
        original.write(video)
        original.flush()
        return _run("-i", original.name, "-vf", f"scale={scale}", *quality, output=f"copy.{container}")


def still_frame(video: bytes, *, at_seconds: float = 0) -> bytes:
    """One frame of the video as a PNG: the same picture posted as an image elsewhere."""
    with tempfile.NamedTemporaryFile(suffix=".video") as original:
        original.write(video)
        original.flush()
        return _run("-ss", str(at_seconds), "-i", original.name, "-frames:v", "1", output="frame.png")


@functools.cache  # about three CPU seconds to make: once a session
def expensive_video() -> bytes:
    """Full HD, every frame a JPEG (nothing to skip): about a second of CPU to decode, for the time limit."""
    arguments = ["-f", "lavfi", "-i", "testsrc=size=1920x1080:rate=25", "-t", "4", "-c:v", "mjpeg", "-q:v", "2"]
    return _run(*arguments, output="video.avi")

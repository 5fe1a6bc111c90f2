"""Perceptual hashes of video evidence: PDQ hashes of still frames (Meta's vPDQ, about one a second),
kept beside the evidence row in the same chunked index as image hashes, so a frame matches an image
or a frame of another case's video.

vPDQ is optional (the `video` extra: it builds against FFmpeg). Without it videos are kept as ever,
with their SHA-256, and simply not matched. It reads a file by its path: the stored object's own path
where the store is a local folder (a link to it, not a copy), else the object read into a private
folder (0700) that is removed as soon as the frames are hashed, within the request. Decoded frames are
never written anywhere: vPDQ hashes each in memory. Hashing runs in a child process with a CPU limit.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from service.storage.objects import ObjectStore

log = logging.getLogger("intake.videos")

WORKER = Path(__file__).with_name("vpdq_worker.py")
SECONDS_PER_HASH = 1.0  # vPDQ's own default: one frame a second
VIDEO_FILE_MODE = 0o600


@functools.cache
def vpdq_installed() -> bool:
    return importlib.util.find_spec("vpdq") is not None


def video_matching_state(settings) -> str:
    """What the operator is told at startup: whether videos' frames are matched, and if not, why."""
    if not settings.video_matching:
        return "off: INTAKE_VIDEO_MATCHING is false"
    if not vpdq_installed():
        return "off: vpdq is not installed (pip install '.[video]' after scripts/ensure-system-packages.sh --video)"
    return "on"


def is_hashable_video(content_type: str) -> bool:
    return content_type.startswith("video/")


@dataclass(frozen=True)
class VideoFrame:
    seconds: float  # where the frame is in the video
    pdq_hash: str
    quality: int


@dataclass(frozen=True)
class VideoFingerprint:
    frames: tuple[VideoFrame, ...]  # in the video's order; a frame the same as an earlier one is left out
    cut_short: bool  # the CPU limit stopped hashing before the video (or the frame limit) ended


@dataclass(frozen=True)
class VideoFrameHasher:
    max_frames: int
    cpu_seconds: float
    first_span_seconds: float = 30  # hashed first; then spans four times as long, to the frame limit

    @classmethod
    def from_settings(cls, settings) -> VideoFrameHasher | None:
        """The hasher the settings ask for, or None where video matching is off or vpdq is not installed."""
        if not settings.video_matching or not vpdq_installed():
            return None
        return cls(settings.video_hash_max_frames, settings.video_hash_cpu_seconds)

    def fingerprint(self, store: ObjectStore, key: str) -> VideoFingerprint | None:
        """The frames' hashes of a stored video, or None if none could be taken (not decodable, no
        video stream, or the CPU limit reached before the first span was hashed)."""
        try:
            folder = Path(tempfile.mkdtemp(prefix="intake-video-"))  # 0700: only this service's user
            try:
                _place_video(store, key, folder / "video")
                spans = self._run_worker(folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        except Exception as error:  # noqa: BLE001 - a video that can't be hashed now is still evidence, kept
            log.warning('{"event": "video_not_hashed", "why": "%s"}', type(error).__name__)
            return None
        if not spans:
            log.info('{"event": "video_not_hashed"}')
            return None
        frames, ended = spans[-1]
        if not ended:
            log.info('{"event": "video_hashed_in_part", "frames": %d}', len(frames))
        return VideoFingerprint(_distinct(frames), cut_short=not ended)

    def _run_worker(self, folder: Path) -> list[tuple[list, bool]]:
        job = {
            "folder": str(folder),
            "seconds_per_hash": SECONDS_PER_HASH,
            "max_frames": self.max_frames,
            "cpu_seconds": self.cpu_seconds,
            "first_span_seconds": self.first_span_seconds,
        }
        command = [sys.executable, "-I", str(WORKER), json.dumps(job)]
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and script, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                timeout=self.cpu_seconds * 3 + 10,  # waiting on a slow disk is no CPU time
                check=False,
            )
            output, finished = done.stdout, done.returncode == 0
        except subprocess.TimeoutExpired as expired:
            output, finished = expired.stdout or b"", False
        lines = [line for line in output.decode().splitlines() if line.startswith("[")]
        spans = [(json.loads(line), False) for line in lines]
        if spans and finished:
            spans[-1] = (spans[-1][0], True)
        return spans


def _place_video(store: ObjectStore, key: str, target: Path) -> None:
    local = store.local_path(key)
    if local is not None:
        target.symlink_to(local)
        return
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, VIDEO_FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        for chunk in store.read(key):
            handle.write(chunk)


def _distinct(frames: list) -> tuple[VideoFrame, ...]:
    seen: set[str] = set()
    kept = []
    for seconds, pdq_hash, quality in frames:
        if pdq_hash not in seen:
            seen.add(pdq_hash)
            kept.append(VideoFrame(float(seconds), pdq_hash, int(quality)))
    return tuple(kept)

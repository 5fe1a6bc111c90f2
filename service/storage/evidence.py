"""Evidence as it arrives: hashed, sized and typed on the way through, stored, then recorded.

ACPO principle 1 (no change to original evidence) and 3 (an audit trail another examiner could
follow): the bytes are stored exactly as received, their SHA-256 is taken as they pass, and the
row that makes them evidence is written only once the stored object is verified.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import magic
import sqlalchemy as sa
from sqlmodel import Session, select

from service.domain.evidence import clean_filename, is_allowed, refusal_message
from service.domain.perceptual import ImageMatchPolicy
from service.storage.image_hashes import ImageFingerprint, fingerprint_image, index_and_match, is_hashable_image
from service.storage.models import Case, Evidence, EvidenceUpload
from service.storage.objects import (
    ObjectChanged,
    ObjectStore,
    ObjectUpload,
    OpenedObject,
)
from service.storage.video_hashes import VideoFingerprint, VideoFrameHasher, is_hashable_video

# libmagic needs this much of the start of a file to tell most kinds apart.
SNIFF_BYTES = 8192
# Images up to this size are also held in memory while they arrive, to take their perceptual hash
# once whole (PDQ needs every pixel); larger ones are kept but not hashed. A setting overrides it.
DEFAULT_IMAGE_HASH_MAX_BYTES = 64 * 1024 * 1024


class EvidenceRefused(Exception):
    """A file that can't be kept; `status` is the HTTP status the caller should answer with."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def detect_content_type(head: bytes) -> str:
    return magic.from_buffer(head, mime=True)


@dataclass(frozen=True)
class ReceivedFile:
    object_key: str
    filename: str
    content_type: str
    size: int
    sha256: str
    image: ImageFingerprint | None = None
    etag: str | None = None  # the stored version that was verified; reads must find that version
    evidence_id: str | None = None  # a direct upload's evidence takes its upload's id (a retried complete finds it)
    video: VideoFingerprint | None = None  # a video's frames' hashes, where video matching is on


class IncomingEvidence:
    """One file arriving in chunks. Nothing of it is kept in memory but the first few KiB (to tell
    its type) and what the object store buffers for one part."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        field: str,
        filename: str | None,
        max_bytes: int,
        image_hash_max_bytes: int = DEFAULT_IMAGE_HASH_MAX_BYTES,
        too_large: str | None = None,
        video_hasher: VideoFrameHasher | None = None,
    ) -> None:
        self.store = store
        self.video_hasher = video_hasher
        self.image_hash_max_bytes = image_hash_max_bytes
        self.image_bytes: bytearray | None = None  # an image's bytes, in memory only, until hashed
        self.field = field
        self.filename = clean_filename(filename)
        self.max_bytes = max_bytes
        self.too_large = too_large  # why past max_bytes is refused, where it is not this file's own size limit
        self.object_key = store.new_evidence_key()
        self.hasher = hashlib.sha256()
        self.size = 0
        self.head = bytearray()
        self.content_type: str | None = None
        self.upload: ObjectUpload | None = None
        self.received: ReceivedFile | None = None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            message = self.too_large or f"'{self.filename}' is larger than the limit of {megabytes(self.max_bytes)}."
            raise EvidenceRefused(413, self.field, message)
        self.hasher.update(chunk)
        if self.content_type is None:
            self.head += chunk
            if len(self.head) < SNIFF_BYTES:
                return
            self._judge_type()
            chunk, self.head = bytes(self.head), bytearray()
        self._keep_for_hashing(chunk)
        self._upload().write(chunk)

    def finish(self) -> ReceivedFile:
        if self.size == 0:
            raise EvidenceRefused(422, self.field, f"'{self.filename}' is empty.")
        if self.content_type is None:
            self._judge_type()
            self._keep_for_hashing(bytes(self.head))
            self._upload().write(bytes(self.head))
            self.head = bytearray()
        stored = self._upload().complete()
        if stored.size != self.size:
            raise EvidenceRefused(503, self.field, "The evidence store did not keep the whole file. Please try again.")
        image = None
        if self.image_bytes is not None:
            image, self.image_bytes = fingerprint_image(bytes(self.image_bytes)), None
        self.received = ReceivedFile(
            self.object_key,
            self.filename,
            self.content_type or "",
            self.size,
            self.hasher.hexdigest(),
            image,
            stored.etag,
            video=fingerprint_video(self.video_hasher, self.store, self.object_key, self.content_type or ""),
        )
        return self.received

    def _keep_for_hashing(self, chunk: bytes) -> None:
        if self.image_bytes is None:
            return
        if self.size > self.image_hash_max_bytes:
            self.image_bytes = None  # too large to hold: kept as evidence, not hashed
            return
        self.image_bytes += chunk

    def abort(self) -> None:
        self.image_bytes = None
        if self.upload is not None:
            self.upload.abort()

    def _judge_type(self) -> None:
        detected = detect_content_type(bytes(self.head[:SNIFF_BYTES]))
        if not is_allowed(detected):
            raise EvidenceRefused(415, self.field, f"'{self.filename}': {refusal_message(detected)}")
        self.content_type = detected
        if is_hashable_image(detected):
            self.image_bytes = bytearray()

    def _upload(self) -> ObjectUpload:
        if self.upload is None:
            self.upload = self.store.start_upload(self.object_key)
        return self.upload


def megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{max(1, size // 1024)} KB"
    return f"{size / (1024 * 1024):.0f} MB"


# --- rows -------------------------------------------------------------------------------------


def new_evidence_id() -> str:
    """Time first, then random: ids sort in the order evidence arrived, and can't be guessed."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def record_evidence(
    session: Session,
    case_id: int,
    files: list[ReceivedFile],
    *,
    received_by: str,
    now: datetime,
    image_matching: ImageMatchPolicy | None = None,
) -> list[Evidence]:
    """Add rows for stored, verified objects to the session's transaction (the caller commits),
    and index the images' perceptual hashes, recording which other cases' images they match."""
    rows = [Evidence(case_id=case_id, **evidence_row(item, received_by=received_by, now=now)) for item in files]
    session.add_all(rows)
    session.flush()
    fingerprinted = [(row.id, item.image) for row, item in zip(rows, files, strict=True) if item.image is not None]
    videos = [(row.id, item.video) for row, item in zip(rows, files, strict=True) if item.video is not None]
    index_and_match(
        session, case_id, fingerprinted, policy=image_matching or ImageMatchPolicy(), now=now, videos=videos
    )
    return rows


def evidence_row(item: ReceivedFile, *, received_by: str, now: datetime) -> dict:
    """The row (less its case) for a stored, verified object."""
    return {
        "id": item.evidence_id or new_evidence_id(),
        "object_key": item.object_key,
        "filename": item.filename,
        "content_type": item.content_type,
        "size": item.size,
        "sha256": item.sha256,
        "received_at": now,
        "received_by": received_by,
        "pdq_hash": item.image.pdq_hash if item.image else None,
        "pdq_quality": item.image.quality if item.image else None,
        "video_frames": len(item.video.frames) if item.video else None,
        "video_hashed_in_part": item.video.cut_short if item.video else None,
        "object_etag": item.etag,
    }


def evidence_of(session: Session, case_id: int) -> list[Evidence]:
    return list(session.exec(select(Evidence).where(Evidence.case_id == case_id).order_by(Evidence.id)))


def evidence_held(session: Session, case_id: int, *, now: datetime) -> tuple[int, int]:
    """Files and bytes a case holds against its quota: its evidence, and the direct uploads it was
    promised and that may still be completed (each counts at its declared size until it expires)."""
    kept = session.exec(
        select(sa.func.count(), sa.func.coalesce(sa.func.sum(Evidence.size), 0)).where(Evidence.case_id == case_id)
    ).one()
    promised = session.exec(
        select(sa.func.count(), sa.func.coalesce(sa.func.sum(EvidenceUpload.declared_size), 0)).where(
            EvidenceUpload.case_id == case_id, EvidenceUpload.expires_at >= now
        )
    ).one()
    return int(kept[0]) + int(promised[0]), int(kept[1]) + int(promised[1])


def hold_case(session: Session, case_id: int) -> None:
    """Until the session's transaction ends, nothing else adds to this case, so what is counted next is
    still true when the rows go in: PostgreSQL locks the case's row; SQLite, one writer at a time, takes
    its write lock now with a write that changes nothing."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sa.update(Case).where(Case.id == case_id).values(id=Case.id))
    else:
        session.execute(sa.select(Case.id).where(Case.id == case_id).with_for_update())


def find_evidence(session: Session, case_id: int, evidence_id: str) -> Evidence | None:
    return session.exec(select(Evidence).where(Evidence.case_id == case_id, Evidence.id == evidence_id)).first()


# --- direct uploads ---------------------------------------------------------------------------


def request_upload(
    session: Session,
    store: ObjectStore,
    case_id: int,
    *,
    filename: str,
    size: int,
    sha256: str,
    requested_by: str,
    now: datetime,
    expires_in: timedelta,
) -> EvidenceUpload:
    upload = EvidenceUpload(
        id=new_evidence_id(),
        case_id=case_id,
        object_key=store.new_upload_key(),
        filename=clean_filename(filename),
        declared_size=size,
        declared_sha256=sha256.lower(),
        requested_by=requested_by,
        created_at=now,
        expires_at=now + expires_in,
    )
    session.add(upload)
    session.flush()
    return upload


def find_upload(session: Session, case_id: int, upload_id: str) -> EvidenceUpload | None:
    return session.exec(
        select(EvidenceUpload).where(EvidenceUpload.case_id == case_id, EvidenceUpload.id == upload_id)
    ).first()


def claim_upload(session: Session, upload_id: str) -> bool:
    """Take an upload out of the open ones, in the session's transaction: of two completions (or a
    completion and a refusal) running at once only one claims it; the other waits for it, then finds
    nothing left to claim."""
    claimed = session.execute(sa.delete(EvidenceUpload).where(EvidenceUpload.id == upload_id))
    return claimed.rowcount == 1


def verify_direct_upload(
    store: ObjectStore,
    upload: EvidenceUpload,
    image_hash_max_bytes: int = DEFAULT_IMAGE_HASH_MAX_BYTES,
    video_hasher: VideoFrameHasher | None = None,
) -> ReceivedFile:
    """Copy the client's upload to a key only the service writes, then read that copy back: its size,
    type and SHA-256 must be what was declared, and an image of a size that can be held is hashed
    from the bytes read back. What is verified is what is kept, so nothing the client sends to its
    upload URL afterwards (or while this runs) can change the evidence."""
    stored_size = store.size_of(upload.object_key)
    if stored_size is None:
        raise EvidenceRefused(409, "upload", "Nothing has been uploaded yet for this request.")
    if stored_size != upload.declared_size:
        raise EvidenceRefused(
            422, "size", f"The upload is {stored_size} bytes, but {upload.declared_size} were declared."
        )
    evidence_key = store.new_evidence_key()
    store.copy(upload.object_key, evidence_key, stored_size)
    try:
        opened = store.open(evidence_key)
        if opened.size != upload.declared_size:  # replaced between the size check and the copy
            raise EvidenceRefused(
                422, "size", f"The upload is {opened.size} bytes, but {upload.declared_size} were declared."
            )
        digest, content_type, image_bytes = _read_copy(opened, image_hash_max_bytes)
        if not is_allowed(content_type):
            raise EvidenceRefused(415, "file", f"'{upload.filename}': {refusal_message(content_type)}")
        if digest != upload.declared_sha256:
            raise EvidenceRefused(
                422,
                "sha256",
                "The uploaded file's SHA-256 is not the one declared: it changed or was cut short on the way.",
            )
    except BaseException:
        store.delete(evidence_key)
        raise
    image = fingerprint_image(bytes(image_bytes)) if image_bytes and is_hashable_image(content_type) else None
    try:
        video = fingerprint_video(video_hasher, store, evidence_key, content_type)
    except BaseException:
        store.delete(evidence_key)
        raise
    return ReceivedFile(
        evidence_key,
        upload.filename,
        content_type,
        opened.size,
        upload.declared_sha256,
        image,
        opened.etag,
        video=video,
    )


def fingerprint_video(
    hasher: VideoFrameHasher | None, store: ObjectStore, key: str, content_type: str
) -> VideoFingerprint | None:
    """A stored video's frame hashes, where video matching is on; None for anything else."""
    if hasher is None or not is_hashable_video(content_type):
        return None
    return hasher.fingerprint(store, key)


def _read_copy(opened: OpenedObject, image_hash_max_bytes: int) -> tuple[str, str, bytearray | None]:
    """SHA-256, type and (for an image small enough to hold) the bytes of one opened object."""
    hasher = hashlib.sha256()
    head = bytearray()
    content_type: str | None = None
    image_bytes = bytearray() if opened.size <= image_hash_max_bytes else None
    for chunk in opened.chunks:
        hasher.update(chunk)
        if image_bytes is not None:
            image_bytes += chunk
        if content_type is None:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) >= SNIFF_BYTES:
                content_type = detect_content_type(bytes(head))
                if not is_hashable_image(content_type):
                    image_bytes = None
    return hasher.hexdigest(), content_type or detect_content_type(bytes(head)), image_bytes


# --- maintenance ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    orphan_objects: list[str]
    missing_objects: list[str]  # evidence ids whose object is gone
    expired_uploads: int
    aborted_multipart: int


def sweep(session: Session, store: ObjectStore, *, now: datetime, grace: timedelta, remove: bool) -> SweepReport:
    """Objects with no row (what a killed process leaves) and rows with no object.

    Only this deployment's objects (under its prefix) are listed and removed: another deployment's
    sharing the folder or bucket, and objects from before prefixes, are never touched. Objects younger
    than `grace` are left alone: they may belong to an upload still under way.
    """
    known = set(session.exec(select(Evidence.object_key)))
    pending = {row.object_key: row for row in session.exec(select(EvidenceUpload))}
    expired = [row for row in pending.values() if row.expires_at < now]
    live_pending = {key for key, row in pending.items() if row.expires_at >= now}
    objects = list(store.list_objects())  # this deployment's only: never another's, never unprefixed ones
    orphans = [
        item.key
        for item in objects
        if item.key not in known and item.key not in live_pending and item.modified_at < now - grace
    ]
    present = {item.key for item in objects}
    missing = [row.id for row in session.exec(select(Evidence)) if not _object_present(store, row.object_key, present)]
    aborted = 0
    if remove:
        for key in orphans:
            store.delete(key)
        for row in expired:
            store.delete(row.object_key)
            session.delete(row)
        session.commit()
        aborted = store.abort_stale_uploads(now - grace)
    return SweepReport(orphans, missing, len(expired), aborted)


def _object_present(store: ObjectStore, key: str, listed: set[str]) -> bool:
    # A key from before deployment prefixes is not listed: it is looked up on its own.
    return key in listed if store.is_ours(key) else store.size_of(key) is not None


@dataclass(frozen=True)
class VerifyResult:
    evidence_id: str
    ok: bool
    detail: str


def verify_all(session: Session, store: ObjectStore, on_bytes: Callable[[int], None]) -> Iterator[VerifyResult]:
    """Re-hash every stored object and compare with the SHA-256 taken at intake."""
    for row in session.exec(select(Evidence).order_by(Evidence.received_at)):
        hasher = hashlib.sha256()
        try:
            for chunk in store.read(row.object_key, row.object_etag):
                hasher.update(chunk)
                on_bytes(len(chunk))
        except ObjectChanged:
            yield VerifyResult(
                row.id, False, "was replaced: the stored version differs from the one verified at intake"
            )
            continue
        except Exception as error:  # noqa: BLE001 - any failure to read is a finding
            yield VerifyResult(row.id, False, f"cannot be read: {type(error).__name__}")
            continue
        if hasher.hexdigest() != row.sha256:
            yield VerifyResult(row.id, False, "SHA-256 differs from the one taken at intake")
        else:
            yield VerifyResult(row.id, True, "ok")


def total_evidence_bytes(session: Session) -> int:
    return int(session.exec(select(sa.func.coalesce(sa.func.sum(Evidence.size), 0))).one())

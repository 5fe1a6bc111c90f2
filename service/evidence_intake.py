"""Adding evidence to a case: the one use case behind `POST …/evidence`, direct uploads (the ticket and
`complete`) and the reporter's status page.

A case's evidence quota (files and bytes) is checked here and nowhere else, counting what the case
keeps, the direct uploads it was promised (at their declared size, until they expire) and what
arrives, in the transaction that keeps the rows, with the case held so that two requests at once
cannot both take the last of it. Callers anyone can be (the form, publishable keys) get smaller
allowances than secret keys and a case's reporter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlmodel import Session

from service.clustering import refresh_cluster
from service.settings import Settings
from service.storage.audit import record_audit_event
from service.storage.evidence import (
    EvidenceRefused,
    ReceivedFile,
    claim_upload,
    evidence_held,
    find_evidence,
    find_upload,
    hold_case,
    record_evidence,
    request_upload,
    verify_direct_upload,
)
from service.storage.models import Evidence, EvidenceUpload, utc_now
from service.storage.objects import ObjectStore
from service.storage.video_hashes import VideoFrameHasher


@dataclass(frozen=True)
class Contributor:
    """Who adds to the case, as the audit log and `received_by` name them."""

    actor: str
    request_id: str | None


@dataclass(frozen=True)
class Allowance:
    """What one request may bring, and why in words: a refusal names the limit it met."""

    max_files: int
    max_file_bytes: int
    max_total_bytes: int
    too_many_files: str
    too_many_bytes: str
    too_many_files_status: int = 422  # 413 where it is the case's quota, not one request's limit, that is met


@dataclass(frozen=True)
class CompletedUpload:
    evidence: Evidence
    again: bool  # a retry of a completion that had already succeeded: the same evidence, nothing new kept


class UploadNotFound(Exception):
    """No open upload with this id on this case, and no evidence this caller made of one."""


def files_in_words(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def size_in_words(size: int) -> str:
    gib = 1024**3
    if size >= gib and size % gib == 0:
        return f"{size // gib} GB"
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size} bytes"


class EvidenceIntake:
    def __init__(self, settings: Settings, objects: ObjectStore, *, alerts: bool) -> None:
        self.settings = settings
        self.objects = objects
        self.alerts = alerts  # whether a cluster join may queue the urgent webhook
        self.video_hasher = VideoFrameHasher.from_settings(settings)  # None: videos kept, not matched

    # --- allowances: checked while the bytes stream in, before anything is kept ----------------

    def for_new_case(self, *, anonymous: bool) -> Allowance:
        """The files a report may bring. Anonymous: the form and publishable keys, which anyone holds."""
        s = self.settings
        if anonymous:
            files, file_bytes, total = (
                s.anonymous_evidence_max_files,
                s.anonymous_evidence_max_bytes,
                s.anonymous_evidence_total_bytes,
            )
            return Allowance(
                files,
                file_bytes,
                total,
                f"Send at most {files_in_words(files)} with a report.",
                f"The files together are more than {size_in_words(total)}, the most a report can bring.",
            )
        files = min(s.evidence_max_files, s.evidence_case_max_files)
        return Allowance(
            files,
            s.evidence_max_bytes,
            s.evidence_case_max_bytes,
            f"Send at most {files_in_words(files)} in one request.",
            f"The files together are more than {size_in_words(s.evidence_case_max_bytes)}, the most one case can hold.",
        )

    def for_case(self, session: Session, case_id: int) -> Allowance:
        """What a request may still add to a case, from what it holds now (checked again when kept)."""
        s = self.settings
        files_held, bytes_held = evidence_held(session, case_id, now=utc_now())
        files_left = max(0, s.evidence_case_max_files - files_held)
        bytes_left = max(0, s.evidence_case_max_bytes - bytes_held)
        if files_left == 0:
            raise EvidenceRefused(413, "file", self._files_quota_message(files_held))
        if bytes_left == 0:
            raise EvidenceRefused(413, "file", self._bytes_quota_message(bytes_held))
        if files_left >= s.evidence_max_files:
            too_many, status = f"Send at most {files_in_words(s.evidence_max_files)} in one request.", 422
        else:
            too_many, status = self._files_quota_message(files_held, adding=True), 413
        return Allowance(
            min(s.evidence_max_files, files_left),
            s.evidence_max_bytes,
            bytes_left,
            too_many,
            self._bytes_quota_message(bytes_held),
            status,
        )

    # --- keeping ---------------------------------------------------------------------------------

    def add_files(
        self, session: Session, case_id: int, files: list[ReceivedFile], contributor: Contributor, **detail
    ) -> list[Evidence]:
        """Rows for stored, verified files, within the case's quota, in the session's transaction: the
        caller ends it (`respond_once` commits it with an Idempotency-Key's answer). Over the quota: 413,
        and the caller removes the files' objects."""
        now = utc_now()
        hold_case(session, case_id)
        self._check_quota(session, case_id, len(files), sum(item.size for item in files), now)
        rows = record_evidence(
            session, case_id, files, received_by=contributor.actor, now=now, image_matching=self.settings.image_matching
        )
        if any(row.pdq_hash for row in rows) or any(item.video for item in files):  # may link the case to others
            refresh_cluster(session, case_id, self.settings, alerts=self.alerts, now=now)
        record_audit_event(
            session,
            actor=contributor.actor,
            action="evidence.add",
            case_id=case_id,
            request_id=contributor.request_id,
            detail={"evidence": [row.id for row in rows], **detail},
        )
        return rows

    def keep_files(
        self, session: Session, case_id: int, files: list[ReceivedFile], contributor: Contributor
    ) -> list[Evidence]:
        """`add_files` as one whole transaction of its own."""
        try:
            rows = self.add_files(session, case_id, files, contributor)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return rows

    # --- direct uploads --------------------------------------------------------------------------

    def open_upload(
        self,
        session: Session,
        case_id: int,
        contributor: Contributor,
        *,
        filename: str,
        size: int,
        sha256: str,
    ) -> EvidenceUpload:
        """A promise of room for one file: it counts against the quota at its declared size until it is
        completed or expires, so tickets can't be opened past what the case may hold."""
        s = self.settings
        if size > s.evidence_max_bytes:
            raise EvidenceRefused(
                413, "size", f"Files larger than {size_in_words(s.evidence_max_bytes)} can't be accepted."
            )
        now = utc_now()
        try:
            hold_case(session, case_id)
            self._check_quota(session, case_id, 1, size, now, field="size")
            upload = request_upload(
                session,
                self.objects,
                case_id,
                filename=filename,
                size=size,
                sha256=sha256,
                requested_by=contributor.actor,
                now=now,
                expires_in=timedelta(seconds=s.evidence_upload_seconds),
            )
            record_audit_event(
                session,
                actor=contributor.actor,
                action="evidence.upload_requested",
                case_id=case_id,
                request_id=contributor.request_id,
                detail={"upload": upload.id, "size": size},
            )
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return upload

    def complete_upload(
        self, session: Session, case_id: int, upload_id: str, contributor: Contributor
    ) -> CompletedUpload:
        """Verify a direct upload and keep it as evidence whose id is the upload's. Once only: a retry
        after success gets the same evidence, and of two completions at once one keeps the evidence and
        the other answers with it. Refused (size, type, hash, quota): the upload and its objects are gone."""
        upload = find_upload(session, case_id, upload_id)
        if upload is None:
            return self._completed_before(session, case_id, upload_id, contributor)
        upload_key = upload.object_key  # kept as plain values: a rollback below expires the row
        try:
            received = verify_direct_upload(self.objects, upload, self.settings.image_hash_max_bytes, self.video_hasher)
        except EvidenceRefused as refusal:
            if refusal.status == 409:  # nothing there: not yet sent, or completed meanwhile by another call
                session.rollback()
                if find_evidence(session, case_id, upload_id) is not None:
                    return self._completed_before(session, case_id, upload_id, contributor)
                raise
            self._refuse(session, case_id, upload_id, upload_key, contributor, refusal)
            raise
        except Exception:
            session.rollback()
            if find_evidence(session, case_id, upload_id) is None:
                raise
            # Completed by a call that ran alongside this one, which removed the client's copy under it.
            return self._completed_before(session, case_id, upload_id, contributor)
        received = replace(received, evidence_id=upload_id)
        try:
            session.rollback()  # what was read so far is let go: the claim below decides
            if not claim_upload(session, upload_id):
                session.rollback()
                self.objects.delete(received.object_key)
                return self._completed_before(session, case_id, upload_id, contributor)
            (row,) = self.add_files(session, case_id, [received], contributor, direct=True)
            session.commit()
        except EvidenceRefused as refusal:
            session.rollback()
            self.objects.delete(received.object_key)
            self._refuse(session, case_id, upload_id, upload_key, contributor, refusal)
            raise
        except BaseException:
            session.rollback()
            self.objects.delete(received.object_key)
            raise
        self.objects.delete(upload_key)  # the client's copy; the verified one is the evidence
        return CompletedUpload(row, again=False)

    def _completed_before(
        self, session: Session, case_id: int, upload_id: str, contributor: Contributor
    ) -> CompletedUpload:
        row = find_evidence(session, case_id, upload_id)
        if row is None or row.received_by != contributor.actor:
            raise UploadNotFound()
        record_audit_event(
            session,
            actor=contributor.actor,
            action="evidence.upload_complete_repeated",
            case_id=case_id,
            request_id=contributor.request_id,
            detail={"evidence": row.id},
        )
        session.commit()
        return CompletedUpload(row, again=True)

    def _refuse(
        self,
        session: Session,
        case_id: int,
        upload_id: str,
        upload_key: str,
        contributor: Contributor,
        refusal: EvidenceRefused,
    ) -> None:
        """A refused upload is gone: its row, the client's object, and an audit row saying why."""
        session.rollback()
        if not claim_upload(session, upload_id):
            session.rollback()  # another call completed or refused it meanwhile
            return
        self.objects.delete(upload_key)
        record_audit_event(
            session,
            actor=contributor.actor,
            action="evidence.upload_refused",
            case_id=case_id,
            request_id=contributor.request_id,
            detail={"upload": upload_id, "why": refusal.field},
        )
        session.commit()

    # --- the quota -------------------------------------------------------------------------------

    def _check_quota(
        self, session: Session, case_id: int, files: int, size: int, now: datetime, *, field: str = "file"
    ) -> None:
        s = self.settings
        files_held, bytes_held = evidence_held(session, case_id, now=now)
        if files_held + files > s.evidence_case_max_files:
            raise EvidenceRefused(413, field, self._files_quota_message(files_held, adding=True))
        if bytes_held + size > s.evidence_case_max_bytes:
            raise EvidenceRefused(413, field, self._bytes_quota_message(bytes_held))

    def _files_quota_message(self, held: int, *, adding: bool = False) -> str:
        most = self.settings.evidence_case_max_files
        left = max(0, most - held)
        if adding and left:
            return f"One case can hold at most {files_in_words(most)}, and this one has room for {left} more."
        return (
            f"This case already holds {files_in_words(most)} (counting uploads under way), the most one case can hold."
        )

    def _bytes_quota_message(self, held: int) -> str:
        most = self.settings.evidence_case_max_bytes
        left = max(0, most - held)
        return (
            f"One case can hold at most {size_in_words(most)} of evidence (counting uploads under way), and this "
            f"one has room for {size_in_words(left)} more."
        )

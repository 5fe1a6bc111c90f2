"""The tables. Every timestamp is stored in UTC and read back timezone-aware on every database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator):
    """SQLite keeps no offset; PostgreSQL does. Both give back aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _when(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    secret_sha256: str = Field(max_length=64)
    # Evidence of under-18 cases may be images of children: seeing it is a separate permission.
    can_view_child_evidence: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # A partner-agency export shares only cases whose victims agreed, unless the key holds this permission.
    can_share_without_consent: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # An analyst key may be limited to some police forces: it then never sees another force's cases.
    forces: list[str] | None = Field(default=None, sa_type=JSONDocument)
    # A publishable key is written into a force website's pages: it only reports cases and adds to
    # them, and browsers may use it only from its own origins.
    publishable: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    origins: list[str] | None = Field(default=None, sa_type=JSONDocument)
    created_at: datetime = _when(default_factory=utc_now)
    revoked_at: datetime | None = _when(default=None, nullable=True)


# Indexes that leave out rows without the value: every query by police force or by handle names one, so
# they still serve it, and a new case without one skips them (one B-tree insert less per row).
_HAS_FORCE = sa.text("police_force IS NOT NULL")
_HAS_HANDLE = sa.text("handle IS NOT NULL")


class Case(SQLModel, table=True):
    __tablename__ = "case"
    __table_args__ = (
        sa.Index("ix_case_created_at_id", "created_at", "id"),
        sa.Index("ix_case_priority_created_at", "priority", "created_at"),
        sa.Index(
            "ix_case_police_force_created_at",
            "police_force",
            "created_at",
            postgresql_where=_HAS_FORCE,
            sqlite_where=_HAS_FORCE,
        ),
        sa.Index("ix_case_status_created_at", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=20, unique=True)
    reporter_token_sha256: str = Field(max_length=64, unique=True)
    submitted_by_key_id: str | None = Field(default=None, foreign_key="api_key.id", max_length=16)
    status: str = Field(default="received", max_length=20)
    # Bumped by every change an analyst makes; the ETag, so two people can't overwrite each other.
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    assigned_to: str | None = Field(default=None, max_length=120)
    priority: str = Field(max_length=10)
    police_force: str | None = Field(default=None, max_length=80)
    flags: list[dict] = Field(sa_type=JSONDocument)
    next_steps: list[str] = Field(sa_type=JSONDocument)
    # Decided from the victim's age when the report came in and kept: never re-decided, so a birthday
    # never lifts the under_18 flag or the extra permission its evidence needs.
    victim_was_under_18: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    submission: dict = Field(sa_type=JSONDocument)
    created_at: datetime = _when(default_factory=utc_now)
    updated_at: datetime = _when(default_factory=utc_now)


class CaseNote(SQLModel, table=True):
    """Analysts' notes: append-only, like the audit log, by trigger on both databases."""

    __tablename__ = "case_note"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    author: str = Field(max_length=80)
    body: str = Field(sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utc_now)


class CaseFlag(SQLModel, table=True):
    """One row per flag a case carries, so analysts can filter by flag with an index on any database."""

    __tablename__ = "case_flag"
    __table_args__ = (sa.Index("ix_case_flag_code_case_id", "code", "case_id"),)

    case_id: int = Field(foreign_key="case.id", primary_key=True, ondelete="CASCADE")
    code: str = Field(max_length=40, primary_key=True)


class Identifier(SQLModel, table=True):
    __tablename__ = "identifier"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "type", "normalized", name="uq_identifier_case_type_normalized"),
        sa.Index("ix_identifier_normalized", "normalized"),
        sa.Index("ix_identifier_handle", "handle", postgresql_where=_HAS_HANDLE, sqlite_where=_HAS_HANDLE),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE")
    type: str = Field(max_length=40)
    value: str = Field(max_length=2048)
    normalized: str = Field(max_length=2048)
    platform: str | None = Field(default=None, max_length=60)
    handle: str | None = Field(default=None, max_length=200)
    created_at: datetime = _when(default_factory=utc_now)


class IdempotencyRecord(SQLModel, table=True):
    """One row per (caller, Idempotency-Key): the database's unique constraint decides the winner."""

    __tablename__ = "idempotency_record"
    __table_args__ = (sa.UniqueConstraint("scope", "key_sha256", name="uq_idempotency_scope_key"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=80)
    key_sha256: str = Field(max_length=64)
    request_sha256: str = Field(max_length=64)
    status_code: int
    # Encrypted under a key derived from the caller's own token and the Idempotency-Key, so the
    # reporter token inside a stored response is useless to anyone reading the database alone.
    response_sealed: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = _when(default_factory=utc_now, index=True)


class Deployment(SQLModel, table=True):
    """This database's deployment: one row, made by the migration that created the table. Its id is the
    prefix of every object key the deployment writes (service.storage.objects), so deployments that
    share a folder or a bucket never touch each other's evidence."""

    __tablename__ = "deployment"

    id: str = Field(primary_key=True, max_length=32)
    created_at: datetime = _when(default_factory=utc_now)


class AuditEvent(SQLModel, table=True):
    """Append-only: the migration adds triggers that refuse UPDATE and DELETE on both databases."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_case_id_at", "case_id", "at"),
        sa.Index("ix_audit_event_actor_at", "actor", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(default_factory=utc_now, index=True)
    actor: str = Field(max_length=80)
    action: str = Field(max_length=60)
    case_id: int | None = Field(default=None)
    reason: str | None = Field(default=None, max_length=500)
    request_id: str | None = Field(default=None, max_length=64)  # the server's own, never the client's
    client_request_id: str | None = Field(default=None, max_length=64)  # the client's X-Request-Id, if any
    detail: dict | None = Field(default=None, sa_type=JSONDocument)


class Evidence(SQLModel, table=True):
    """A file kept for a case. The row exists only once its object is stored and verified."""

    __tablename__ = "evidence"

    id: str = Field(primary_key=True, max_length=32)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    object_key: str = Field(max_length=200, unique=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size: int = Field(sa_type=sa.BigInteger)
    sha256: str = Field(max_length=64)
    received_at: datetime = _when(default_factory=utc_now)
    received_by: str = Field(max_length=80)
    # The PDQ perceptual hash of an image (64 hex digits) and PDQ's quality (0-100), taken from the
    # bytes in memory at intake; null for what is not an image or could not be decoded.
    pdq_hash: str | None = Field(default=None, max_length=64)
    pdq_quality: int | None = Field(default=None, sa_type=sa.SmallInteger)
    # A video's frames hashed for matching (video_frame_hash), and whether the CPU limit stopped hashing
    # before the video or the frame limit ended; null for what is not a video or was not hashed.
    video_frames: int | None = Field(default=None, sa_type=sa.SmallInteger)
    video_hashed_in_part: bool | None = Field(default=None)
    # The stored version that was verified (S3 ETag, or a local file's identity): a read that finds
    # another version refuses to serve it. Null for evidence kept before this was recorded.
    object_etag: str | None = Field(default=None, max_length=200)


class ImageHash(SQLModel, table=True):
    """The Hamming-search index of image hashes: each hash cut into 11 chunks of 23-24 bits, each chunk
    with its own B-tree (multi-index hashing; see service.domain.perceptual.CHUNK_WIDTHS)."""

    __tablename__ = "image_hash"
    __table_args__ = tuple(sa.Index(f"ix_image_hash_chunk_{n:02d}", f"chunk_{n:02d}") for n in range(11))

    evidence_id: str = Field(primary_key=True, foreign_key="evidence.id", max_length=32, ondelete="CASCADE")
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    pdq_hash: str = Field(max_length=64)
    quality: int = Field(sa_type=sa.SmallInteger)
    chunk_00: int
    chunk_01: int
    chunk_02: int
    chunk_03: int
    chunk_04: int
    chunk_05: int
    chunk_06: int
    chunk_07: int
    chunk_08: int
    chunk_09: int
    chunk_10: int


class VideoFrameHash(SQLModel, table=True):
    """PDQ hashes of a video's still frames (vPDQ: about one a second, at most a setting's number per
    video, repeats of the frame before left out), in the same multi-index form as ImageHash, so a frame
    is found from an image and an image from a frame. A match is kept as an ImageMatch of the two
    evidence files, with the nearest frame's distance."""

    __tablename__ = "video_frame_hash"
    __table_args__ = (
        sa.UniqueConstraint("evidence_id", "seconds", name="uq_video_frame_hash_frame"),
        *(sa.Index(f"ix_video_frame_hash_chunk_{n:02d}", f"chunk_{n:02d}") for n in range(11)),
    )

    id: int | None = Field(default=None, primary_key=True)
    evidence_id: str = Field(foreign_key="evidence.id", max_length=32, ondelete="CASCADE")
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    seconds: float  # where the frame is in the video
    pdq_hash: str = Field(max_length=64)
    quality: int = Field(sa_type=sa.SmallInteger)
    chunk_00: int
    chunk_01: int
    chunk_02: int
    chunk_03: int
    chunk_04: int
    chunk_05: int
    chunk_06: int
    chunk_07: int
    chunk_08: int
    chunk_09: int
    chunk_10: int


class ImageMatch(SQLModel, table=True):
    """An image of one case within the match distance of an image of an earlier case, found when the
    later one arrived. Kept once per pair; read either way round."""

    __tablename__ = "image_match"
    __table_args__ = (
        sa.UniqueConstraint("evidence_id", "matched_evidence_id", name="uq_image_match_pair"),
        sa.Index("ix_image_match_case_id", "case_id"),
        sa.Index("ix_image_match_matched_case_id", "matched_case_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    evidence_id: str = Field(foreign_key="evidence.id", max_length=32, ondelete="CASCADE")
    case_id: int = Field(foreign_key="case.id", ondelete="CASCADE")
    matched_evidence_id: str = Field(foreign_key="evidence.id", max_length=32, ondelete="CASCADE")
    matched_case_id: int = Field(foreign_key="case.id", ondelete="CASCADE")
    distance: int = Field(sa_type=sa.SmallInteger)
    created_at: datetime = _when(default_factory=utc_now)


# Clusters of two or more cases, in each order an analyst may list them (newest id first on a tie).
_LISTED = sa.text("size >= 2")
_CLUSTER_ORDERS = {
    "harm": ("child_victims", "victims", "last_seen", "id"),
    "victims": ("victims", "child_victims", "last_seen", "id"),
    "last_seen": ("last_seen", "id"),
    "first_seen": ("first_seen", "id"),
}


class Cluster(SQLModel, table=True):
    """An offender network: a connected component of cases linked by identifiers or images. Kept up to
    date as cases, identifiers, evidence and corrections arrive, in their transaction
    (service.storage.clusters). A cluster of two or more cases also keeps what it adds up to over all
    its cases (here) and per police force (ClusterForce); a cluster of one is its one member row. A case
    linked to no other case is in none until its cluster is asked for (no rows for nine cases in ten)."""

    __tablename__ = "cluster"
    __table_args__ = (
        sa.Index("ix_cluster_size", "size"),
        *(
            sa.Index(f"ix_cluster_by_{name}", *columns, postgresql_where=_LISTED, sqlite_where=_LISTED)
            for name, columns in _CLUSTER_ORDERS.items()
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    size: int = Field(default=1)
    victims: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    child_victims: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    money: dict = Field(  # currency → decimal string
        default_factory=dict, sa_type=JSONDocument, sa_column_kwargs={"server_default": sa.text("'{}'")}
    )
    first_seen: datetime | None = _when(default=None, nullable=True)
    last_seen: datetime | None = _when(default=None, nullable=True)
    created_at: datetime = _when(default_factory=utc_now)
    updated_at: datetime = _when(default_factory=utc_now)


class ClusterForce(SQLModel, table=True):
    """A cluster's totals over its cases in one police force ('' for cases given none), for clusters of
    two or more cases: what a key limited to some forces adds up, and how it counts the cases it may
    not see, without reading the cases."""

    __tablename__ = "cluster_force"
    __table_args__ = (
        sa.Index("ix_cluster_force_police_force", "police_force", "cluster_id"),
        # A key of one force (the usual analyst) lists by harm straight from this index, a page at a time.
        sa.Index("ix_cluster_force_by_harm", "police_force", "child_victims", "victims", "last_seen", "cluster_id"),
    )

    cluster_id: int = Field(primary_key=True, foreign_key="cluster.id", ondelete="CASCADE")
    police_force: str = Field(primary_key=True, max_length=80)
    cases: int
    victims: int
    child_victims: int
    money: dict = Field(default_factory=dict, sa_type=JSONDocument)
    first_seen: datetime = _when()
    last_seen: datetime = _when()


class ClusterMember(SQLModel, table=True):
    """Which cluster a case is in, with the facts about it that clusters add up, so that a list of
    clusters reads one narrow table rather than every case's submission."""

    __tablename__ = "cluster_member"

    case_id: int = Field(primary_key=True, foreign_key="case.id", ondelete="CASCADE")
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    police_force: str | None = Field(default=None, max_length=80)
    child_victim: bool = Field(default=False)
    money: dict = Field(default_factory=dict, sa_type=JSONDocument)
    reported_at: datetime = _when()
    # A case marked as a duplicate of another is the same victim: kept in the cluster, not counted.
    duplicate: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class LinkCorrection(SQLModel, table=True):
    """An analyst's correction of the links, with its reason; revoked rather than deleted, so the
    history of who decided what about which link stays."""

    __tablename__ = "link_correction"
    __table_args__ = (
        sa.Index("ix_link_correction_case_id", "case_id"),
        sa.Index("ix_link_correction_other_case_id", "other_case_id"),
        sa.Index("ix_link_correction_identifier", "identifier"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)  # identifier_not_linking | false_link | manual_link | duplicate
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="CASCADE")
    other_case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="CASCADE")
    identifier: str | None = Field(default=None, max_length=2048)  # a normalized identifier
    reason: str = Field(max_length=500)
    created_by: str = Field(max_length=80)
    created_at: datetime = _when(default_factory=utc_now)
    revoked_at: datetime | None = _when(default=None, nullable=True)
    revoked_by: str | None = Field(default=None, max_length=80)
    revoke_reason: str | None = Field(default=None, max_length=500)


class EvidenceUpload(SQLModel, table=True):
    """A direct upload that was asked for and not yet completed; the declared size and hash are
    what the service checks the object against before it becomes evidence."""

    __tablename__ = "evidence_upload"

    id: str = Field(primary_key=True, max_length=32)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    object_key: str = Field(max_length=200, unique=True)
    filename: str = Field(max_length=255)
    declared_size: int = Field(sa_type=sa.BigInteger)
    declared_sha256: str = Field(max_length=64)
    requested_by: str = Field(max_length=80)
    created_at: datetime = _when(default_factory=utc_now)
    expires_at: datetime = _when()


class WebhookDelivery(SQLModel, table=True):
    """An alert waiting to reach the configured webhook. Written in the same transaction as the case
    change that caused it, so a webhook that is down loses nothing; only ever the reference, priority
    and flags, never personal data."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (sa.Index("ix_webhook_delivery_due", "delivered_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    event: str = Field(max_length=40)
    payload: dict = Field(sa_type=JSONDocument)
    created_at: datetime = _when(default_factory=utc_now)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _when(default_factory=utc_now)
    delivered_at: datetime | None = _when(default=None, nullable=True)
    gave_up_at: datetime | None = _when(default=None, nullable=True)
    last_error: str | None = Field(default=None, max_length=200)

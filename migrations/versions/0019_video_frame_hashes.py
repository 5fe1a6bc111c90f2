"""video frame hashes: PDQ hashes of video evidence's still frames (vPDQ), indexed as image hashes are

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

CHUNKS = [f"chunk_{position:02d}" for position in range(11)]


def upgrade() -> None:
    op.create_table(
        "video_frame_hash",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("pdq_hash", sa.String(length=64), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        *[sa.Column(chunk, sa.Integer(), nullable=False) for chunk in CHUNKS],
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("evidence_id", "seconds", name="uq_video_frame_hash_frame"),
    )
    op.create_index("ix_video_frame_hash_case_id", "video_frame_hash", ["case_id"], unique=False)
    for chunk in CHUNKS:
        op.create_index(f"ix_video_frame_hash_{chunk}", "video_frame_hash", [chunk], unique=False)


def downgrade() -> None:
    op.drop_table("video_frame_hash")

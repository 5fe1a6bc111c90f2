"""evidence: how many of a video's frames were hashed for matching, and whether only in part

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28 01:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild of "evidence" on SQLite would take its rows through a copy.
    op.add_column("evidence", sa.Column("video_frames", sa.SmallInteger(), nullable=True))
    op.add_column("evidence", sa.Column("video_hashed_in_part", sa.Boolean(), nullable=True))
    # Videos hashed before this: their frames are counted; whether in part was not recorded (null).
    op.execute(
        "UPDATE evidence SET video_frames = (SELECT count(*) FROM video_frame_hash "
        "WHERE video_frame_hash.evidence_id = evidence.id) WHERE id IN (SELECT evidence_id FROM video_frame_hash)"
    )


def downgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_column("video_hashed_in_part")
        batch_op.drop_column("video_frames")

"""image hashes: PDQ hash and quality on evidence, the chunk index, and matches between cases

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHUNKS = [f"chunk_{position:02d}" for position in range(16)]


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild of "evidence" on SQLite would take its rows through a copy.
    op.add_column("evidence", sa.Column("pdq_hash", sa.String(length=64), nullable=True))
    op.add_column("evidence", sa.Column("pdq_quality", sa.SmallInteger(), nullable=True))

    op.create_table(
        "image_hash",
        sa.Column("evidence_id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("pdq_hash", sa.String(length=64), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        *[sa.Column(chunk, sa.Integer(), nullable=False) for chunk in CHUNKS],
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("evidence_id"),
    )
    with op.batch_alter_table("image_hash", schema=None) as batch_op:
        batch_op.create_index("ix_image_hash_case_id", ["case_id"], unique=False)
        for chunk in CHUNKS:
            batch_op.create_index(f"ix_image_hash_{chunk}", [chunk], unique=False)

    op.create_table(
        "image_match",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("matched_evidence_id", sa.String(length=32), nullable=False),
        sa.Column("matched_case_id", sa.Integer(), nullable=False),
        sa.Column("distance", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["matched_evidence_id"], ["evidence.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["matched_case_id"], ["case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("evidence_id", "matched_evidence_id", name="uq_image_match_pair"),
    )
    with op.batch_alter_table("image_match", schema=None) as batch_op:
        batch_op.create_index("ix_image_match_case_id", ["case_id"], unique=False)
        batch_op.create_index("ix_image_match_matched_case_id", ["matched_case_id"], unique=False)


def downgrade() -> None:
    op.drop_table("image_match")
    op.drop_table("image_hash")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_column("pdq_quality")
        batch_op.drop_column("pdq_hash")

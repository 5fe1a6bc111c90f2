"""link corrections: analysts mark identifiers as not linking, links as false, cases linked by hand or duplicates

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cluster_member", sa.Column("duplicate", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "link_correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("other_case_id", sa.Integer(), nullable=True),
        sa.Column("identifier", sa.String(length=2048), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=80), nullable=True),
        sa.Column("revoke_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["other_case_id"], ["case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_link_correction_case_id", "link_correction", ["case_id"], unique=False)
    op.create_index("ix_link_correction_other_case_id", "link_correction", ["other_case_id"], unique=False)
    op.create_index("ix_link_correction_identifier", "link_correction", ["identifier"], unique=False)


def downgrade() -> None:
    op.drop_table("link_correction")
    with op.batch_alter_table("cluster_member", schema=None) as batch_op:
        batch_op.drop_column("duplicate")

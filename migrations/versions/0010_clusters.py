"""clusters: offender networks as connected components of linked cases, kept up to date at intake

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cluster_size", "cluster", ["size"], unique=False)
    op.create_table(
        "cluster_member",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("police_force", sa.String(length=80), nullable=True),
        sa.Column("child_victim", sa.Boolean(), nullable=False),
        sa.Column("money", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cluster_id"], ["cluster.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index("ix_cluster_member_cluster_id", "cluster_member", ["cluster_id"], unique=False)


def downgrade() -> None:
    op.drop_table("cluster_member")
    op.drop_table("cluster")

"""cluster totals per force: an index in harm order, so a key of one force reads its first page from it

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27 22:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_cluster_force_by_harm",
        "cluster_force",
        ["police_force", "child_victims", "victims", "last_seen", "cluster_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_cluster_force_by_harm", table_name="cluster_force")

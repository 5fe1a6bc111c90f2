"""api keys: the permission to share, in a partner-agency export, cases whose victims did not agree to sharing

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27 23:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_key") as batch_op:
        batch_op.add_column(
            sa.Column("can_share_without_consent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_key") as batch_op:
        batch_op.drop_column("can_share_without_consent")

"""identifier handle index: analysts search profile links, usernames and Skype IDs by account handle

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 19:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_identifier_handle", "identifier", ["handle"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_identifier_handle", table_name="identifier")

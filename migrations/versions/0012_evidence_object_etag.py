"""the stored version each evidence object was verified as

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 19:05:00

Reads ask the store for exactly that version (S3 If-Match; a local file's identity), so bytes that
were replaced after verification are never served. Evidence kept before has none: `intake evidence
verify` re-hashes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (no batch rebuild of the table on SQLite).
    op.add_column("evidence", sa.Column("object_etag", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("object_etag")

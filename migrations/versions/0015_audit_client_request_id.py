"""the client's X-Request-Id kept apart from the server's request id in the audit log

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27 22:00:00

Until now `request_id` held the client's X-Request-Id when it sent one, so a client could file its
requests under an id of its choosing. From here `request_id` is always the server's own and the
client's is kept in `client_request_id`. Rows written before cannot be told apart and stay as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: no table rebuild, so the append-only triggers stay as they are.
    op.add_column("audit_event", sa.Column("client_request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place; a batch rebuild would lose the append-only triggers.
    op.drop_column("audit_event", "client_request_id")

"""a deployment id, made once, that prefixes every object key the deployment writes

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27 22:30:00

Two deployments sharing an evidence folder or bucket (a SQLite trial and a PostgreSQL service both on
the default `var/evidence`, say) could each sweep away the other's objects as orphans. From here each
writes under `deployments/<id>/` and lists and deletes only there. Objects written before keep their
keys: the rows that name them still read and erase them.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    deployment = op.create_table(
        "deployment",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(deployment, [{"id": secrets.token_hex(16), "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("deployment")

"""indexes without absent values: a case with no police force, an identifier with no handle, is not indexed
by them (one B-tree insert less for each, on the statement that keeps a new case); every query by force
or by handle names a value, so it still reads them (issue 11)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_HAS_FORCE = sa.text("police_force IS NOT NULL")
_HAS_HANDLE = sa.text("handle IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_case_police_force_created_at", table_name="case")
    op.create_index(
        "ix_case_police_force_created_at",
        "case",
        ["police_force", "created_at"],
        postgresql_where=_HAS_FORCE,
        sqlite_where=_HAS_FORCE,
    )
    op.drop_index("ix_identifier_handle", table_name="identifier")
    op.create_index(
        "ix_identifier_handle", "identifier", ["handle"], postgresql_where=_HAS_HANDLE, sqlite_where=_HAS_HANDLE
    )


def downgrade() -> None:
    op.drop_index("ix_identifier_handle", table_name="identifier")
    op.create_index("ix_identifier_handle", "identifier", ["handle"])
    op.drop_index("ix_case_police_force_created_at", table_name="case")
    op.create_index("ix_case_police_force_created_at", "case", ["police_force", "created_at"])

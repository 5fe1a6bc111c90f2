"""analyst scope and case flags

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:50:10.713133
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Cases already stored get their flags copied across, below.
    op.create_table(
        "case_flag",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "code"),
    )
    with op.batch_alter_table("case_flag", schema=None) as batch_op:
        batch_op.create_index("ix_case_flag_code_case_id", ["code", "case_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""INSERT INTO case_flag (case_id, code)
                      SELECT c.id, f->>'code' FROM "case" c, jsonb_array_elements(c.flags) f""")
    else:
        op.execute("""INSERT INTO case_flag (case_id, code)
                      SELECT c.id, json_extract(f.value, '$.code') FROM "case" c, json_each(c.flags) f""")

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("forces", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True)
        )

    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index("ix_case_status_created_at", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_status_created_at")

    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_column("forces")

    with op.batch_alter_table("case_flag", schema=None) as batch_op:
        batch_op.drop_index("ix_case_flag_code_case_id")

    op.drop_table("case_flag")

"""case workflow and notes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:56:06.042635
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_note", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_note_case_id"), ["case_id"], unique=False)
    # Notes are never edited; they go only when retention erases the whole case (the cascade).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""CREATE FUNCTION case_note_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN RAISE EXCEPTION 'case_note is append-only: % is not allowed', TG_OP; END $$""")
        op.execute("""CREATE TRIGGER case_note_append_only BEFORE UPDATE ON case_note
                      FOR EACH ROW EXECUTE FUNCTION case_note_is_append_only()""")
    else:
        op.execute("""CREATE TRIGGER case_note_no_update BEFORE UPDATE ON case_note
                      BEGIN SELECT RAISE(ABORT, 'case_note is append-only: UPDATE is not allowed'); END""")

    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("assigned_to", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("assigned_to")
        batch_op.drop_column("version")

    with op.batch_alter_table("case_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_note_case_id"))

    op.drop_table("case_note")

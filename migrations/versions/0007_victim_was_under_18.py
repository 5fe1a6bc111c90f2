"""whether the victim was a child, kept as a fact on the case

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 18:50:00

Until now `under_18` was decided again from the date of birth at every re-decision, so a case could
lose it at the victim's birthday. A case is marked a child's when it carries the flag now, or when
the victim was under 18 on the day it was reported; a case that had already lost the flag gets it
(and the urgent priority) back.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_CASE = sa.table(
    "case",
    sa.column("id", sa.Integer),
    sa.column("priority", sa.String),
    sa.column("flags", _JSON),
    sa.column("next_steps", _JSON),
    sa.column("submission", _JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("victim_was_under_18", sa.Boolean),
)
_CASE_FLAG = sa.table("case_flag", sa.column("case_id", sa.Integer), sa.column("code", sa.String))
_CHILD_BANDS = {"under_13", "13_15", "16_17"}
# The words service.domain.urgency gives the flag, copied: a migration must not change with the code.
_UNDER_18_REASON = (
    "The victim is under 18: this is child sexual exploitation and needs a safeguarding "
    "response now; CEOP can also take the report."
)


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: rebuilding "case" in batch mode on SQLite would drop the old
    # table and so cascade-delete its identifiers, flags and evidence rows.
    op.add_column("case", sa.Column("victim_was_under_18", sa.Boolean(), server_default=sa.false(), nullable=False))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_CASE.c.id, _CASE.c.flags, _CASE.c.next_steps, _CASE.c.submission, _CASE.c.created_at)
    )
    for case_id, flags, next_steps, submission, created_at in rows.all():
        flags = flags or []
        flagged = any(flag.get("code") == "under_18" for flag in flags)
        if not (flagged or _was_under_18(submission or {}, created_at)):
            continue
        changes: dict = {"victim_was_under_18": True}
        if not flagged:
            changes["flags"] = [{"code": "under_18", "reason": _UNDER_18_REASON}, *flags]
            changes["priority"] = "urgent"
            steps = [step for step in (next_steps or []) if step != "under-18"]
            first = 1 if steps[:1] == ["support-services"] else 0
            changes["next_steps"] = steps[:first] + ["under-18"] + steps[first:]
            connection.execute(sa.insert(_CASE_FLAG).values(case_id=case_id, code="under_18"))
        connection.execute(sa.update(_CASE).where(_CASE.c.id == case_id).values(**changes))


def _was_under_18(submission: dict, reported_at: datetime | str | None) -> bool:
    victim = submission.get("victim") or {}
    if isinstance(victim.get("age"), int) and victim["age"] < 18:
        return True
    if victim.get("age_band") in _CHILD_BANDS:
        return True
    born_text = victim.get("date_of_birth")
    if not born_text or reported_at is None:
        return False
    born = date.fromisoformat(born_text)
    # SQLite gives the timestamp back as text.
    reported = (datetime.fromisoformat(str(reported_at)) if isinstance(reported_at, str) else reported_at).date()
    return reported.year - born.year - ((reported.month, reported.day) < (born.month, born.day)) < 18


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("victim_was_under_18")

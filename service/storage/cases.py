"""Case rows and the flag rows that mirror their flags: kept and found here, never decided."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.models import Case, CaseFlag

_CASES = Case.__table__
_FLAGS = CaseFlag.__table__

INSERT_CASE = sa.insert(_CASES).returning(_CASES.c.id)
INSERT_FLAGS = sa.insert(_FLAGS)
DELETE_FLAGS = sa.delete(_FLAGS).where(_FLAGS.c.case_id == sa.bindparam("flagged_case_id"))
# A new urgency for a stored case because another case shares its identifier. The version moves, so an
# analyst's stale copy is noticed; updated_at does not: it is the last change to what the case's reporter
# sent or was told, which they can read, and it would tell whoever holds a reporter token (an offender's
# decoy report too) that their identifier was just reported by someone else.
UPDATE_URGENCY = (
    sa.update(_CASES).where(_CASES.c.id == sa.bindparam("changed_case_id")).values(version=_CASES.c.version + 1)
)


def flag_rows(case_id: int, flags: list[dict]) -> list[dict]:
    return [{"case_id": case_id, "code": flag["code"]} for flag in flags]


def update_urgency(session: Session, case_id: int, urgency_columns: dict) -> None:
    """Another case's priority, flags and next steps, decided again, and its flag rows to match."""
    session.execute(UPDATE_URGENCY, {"changed_case_id": case_id, **urgency_columns})
    replace_flag_rows(session, case_id, urgency_columns["flags"])


def replace_flag_rows(session: Session, case_id: int, flags: list[dict]) -> None:
    session.execute(DELETE_FLAGS, {"flagged_case_id": case_id})
    if flags:
        session.execute(INSERT_FLAGS, flag_rows(case_id, flags))


def find_case(session: Session, reference: str) -> Case | None:
    return session.exec(select(Case).where(Case.reference == reference)).first()

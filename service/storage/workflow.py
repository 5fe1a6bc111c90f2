"""Working a case: status changes under compare-and-set, and analysts' notes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.storage.models import Case, CaseNote

_CASES = Case.__table__


class StaleVersion(Exception):
    """The case changed since the caller read it."""


def change_status(
    session: Session, case: Case, *, status: str, assigned_to: str | None, expected_version: int, now: datetime
) -> Case:
    """Compare-and-set on the version: of two analysts acting on one reading, only the first wins."""
    changed = session.execute(
        sa.update(_CASES)
        .where(_CASES.c.id == case.id, _CASES.c.version == expected_version)
        .values(status=status, assigned_to=assigned_to, version=_CASES.c.version + 1, updated_at=now)
    )
    if changed.rowcount != 1:
        raise StaleVersion()
    session.refresh(case)
    return case


def add_note(session: Session, case: Case, *, author: str, body: str, now: datetime) -> CaseNote:
    note = CaseNote(case_id=case.id, author=author, body=body, created_at=now)
    session.add(note)
    session.flush()
    return note


def notes_of(session: Session, case_id: int) -> list[CaseNote]:
    return list(session.exec(select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id)))

"""Linking cases through the identifiers they share: adding identifiers to a case, and deciding again
the urgency of the earlier cases a new link makes repeat cases. The domain decides; storage keeps."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from service.domain.cases import IdentifierInput, StoredSubmission
from service.domain.identifiers import NormalizedIdentifier
from service.domain.urgency import CaseFacts, Urgency, UrgencyPolicy, flag_urgency
from service.storage.cases import replace_flag_rows, update_urgency
from service.storage.identifiers import (
    cases_awaiting_repeat_flag,
    cases_holding,
    identifier_row,
    identifiers_of,
    shared_identifier_values,
)
from service.storage.models import Case, Identifier


def unique_normalized(inputs: list[IdentifierInput]) -> list[NormalizedIdentifier]:
    """Each identifier once, however often (or in whatever spelling) it was given."""
    seen: dict[tuple[str, str], NormalizedIdentifier] = {}
    for item in inputs:
        normalized = item.normalized()
        seen.setdefault((normalized.type.value, normalized.normalized), normalized)
    return list(seen.values())


def urgency_columns(urgency: Urgency) -> dict:
    return {
        "priority": urgency.priority.name,
        "flags": [{"code": flag.code.value, "reason": flag.reason} for flag in urgency.flags],
        "next_steps": urgency.next_steps,
    }


def decided_again(
    stored_submission: dict, shared: list[str], now: datetime, policy: UrgencyPolicy, victim_was_under_18: bool
) -> dict:
    """A stored case's urgency columns, decided afresh from its submission as stored (read leniently:
    what was valid when it was written stays readable), the identifiers other cases share with it, and
    the kept fact of whether the victim was a child when it was reported (never decided again)."""
    submission = StoredSubmission.model_validate(stored_submission)
    facts = CaseFacts(submission, shared_identifiers=shared, victim_was_under_18=victim_was_under_18)
    return urgency_columns(flag_urgency(facts, now, policy))


def add_identifiers(
    session: Session, case: Case, inputs: list[IdentifierInput], *, now: datetime, policy: UrgencyPolicy
) -> list[Identifier]:
    """Keep new identifiers on a case (one it has already is returned, not duplicated) and decide its
    urgency again, since a shared identifier may make it a repeat case; in the session's transaction."""
    existing = {(row.type, row.normalized): row for row in identifiers_of(session, case.id)}
    stored: list[Identifier] = []
    for item in unique_normalized(inputs):
        row = existing.get((item.type.value, item.normalized))
        if row is None:
            row = Identifier(**identifier_row(case.id, item, now))
            session.add(row)
            existing[(row.type, row.normalized)] = row
        stored.append(row)
    session.flush()
    normalized_values = [normalized for _, normalized in existing]
    shared = shared_identifier_values(session, normalized_values, exclude_case_id=case.id)
    for column, value in decided_again(case.submission, shared, now, policy, case.victim_was_under_18).items():
        setattr(case, column, value)
    case.updated_at = now
    session.add(case)
    session.flush()
    replace_flag_rows(session, case.id, case.flags)
    if shared:
        flag_earlier_repeat_cases(session, shared, exclude_case_id=case.id, now=now, policy=policy)
    return stored


def flag_earlier_repeat_cases(
    session: Session, shared: list[str], *, exclude_case_id: int, now: datetime, policy: UrgencyPolicy
) -> None:
    """Earlier cases holding these identifiers are repeat cases now too: decide their urgency again."""
    for other in cases_awaiting_repeat_flag(session, shared, exclude_case_id=exclude_case_id):
        their_shared = shared_identifier_values(session, other.normalized, exclude_case_id=other.id)
        columns = decided_again(other.submission, their_shared, now, policy, other.victim_was_under_18)
        update_urgency(session, other.id, columns)


def decide_holders_again(session: Session, normalized: str, *, now: datetime, policy: UrgencyPolicy) -> int:
    """After analysts marked an identifier as joining nothing (or revoked that), whether each case
    holding it is a repeat case may have changed: decide their urgency again, in the session's
    transaction. Only cases whose urgency changes are written. Returns how many were."""
    changed = 0
    for holder in cases_holding(session, normalized):
        shared = shared_identifier_values(session, holder.normalized, exclude_case_id=holder.id)
        columns = decided_again(holder.submission, shared, now, policy, holder.victim_was_under_18)
        if columns != holder.urgency:
            update_urgency(session, holder.id, columns)
            changed += 1
    return changed

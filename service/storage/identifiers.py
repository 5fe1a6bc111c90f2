"""Offender identifiers kept on cases, and the links between cases they make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.domain.identifiers import NormalizedIdentifier
from service.domain.urgency import FlagCode
from service.storage.corrections import not_linking_identifiers
from service.storage.models import Case, CaseFlag, Identifier

_CASES = Case.__table__
_IDENTIFIERS = Identifier.__table__
_FLAGS = CaseFlag.__table__

# An identifier analysts marked as joining nothing (a platform's support address) makes no repeat case.
SHARED_ANYWHERE = (
    sa.select(_IDENTIFIERS.c.normalized)
    .where(
        _IDENTIFIERS.c.normalized.in_(sa.bindparam("values", expanding=True)),
        _IDENTIFIERS.c.normalized.not_in(not_linking_identifiers()),
    )
    .distinct()
)
SHARED_ELSEWHERE = SHARED_ANYWHERE.where(_IDENTIFIERS.c.case_id != sa.bindparam("case_id"))

# Earlier cases holding any of these identifiers that are not yet flagged as repeat cases (those that
# are need nothing: however many more cases share an identifier, they stay repeat cases), with every
# normalized identifier each one holds.
_SHARING = _IDENTIFIERS.alias("sharing")
CASES_AWAITING_REPEAT_FLAG = (
    sa.select(_CASES.c.id, _CASES.c.submission, _CASES.c.victim_was_under_18, _IDENTIFIERS.c.normalized)
    .join(_IDENTIFIERS, _IDENTIFIERS.c.case_id == _CASES.c.id)
    .where(
        _CASES.c.id != sa.bindparam("case_id"),
        sa.exists().where(
            _SHARING.c.case_id == _CASES.c.id, _SHARING.c.normalized.in_(sa.bindparam("values", expanding=True))
        ),
        ~sa.exists().where(_FLAGS.c.case_id == _CASES.c.id, _FLAGS.c.code == FlagCode.repeat_identifier.value),
    )
    .order_by(_CASES.c.id, _IDENTIFIERS.c.id)
)

# Everything keeping a case that repeats identifiers reads, in one round trip, before the case is kept:
# which of its identifiers other cases hold (rows without a case id), and the earlier cases holding one of
# those that await the repeat flag, each identifier of theirs with whether a case other than theirs holds
# it (with the new case's shared identifiers, what deciding their urgency again reads once it is kept).
_OTHER = _IDENTIFIERS.alias("other")
_REPEATED_VALUES = sa.bindparam("values", expanding=True)
_HELD_BY_ANOTHER_CASE = sa.exists().where(
    _OTHER.c.normalized == _IDENTIFIERS.c.normalized,
    _OTHER.c.case_id != _CASES.c.id,
    _OTHER.c.normalized.not_in(not_linking_identifiers()),
)
REPEAT_FACTS = sa.union_all(
    sa.select(
        _CASES.c.id,
        _CASES.c.submission,
        _CASES.c.victim_was_under_18,
        _IDENTIFIERS.c.normalized,
        _HELD_BY_ANOTHER_CASE.label("held_elsewhere"),
    )
    .join(_IDENTIFIERS, _IDENTIFIERS.c.case_id == _CASES.c.id)
    .where(
        _CASES.c.id.in_(
            sa.select(_SHARING.c.case_id).where(
                _SHARING.c.normalized.in_(_REPEATED_VALUES),
                _SHARING.c.normalized.not_in(not_linking_identifiers()),
            )
        ),
        ~sa.exists().where(_FLAGS.c.case_id == _CASES.c.id, _FLAGS.c.code == FlagCode.repeat_identifier.value),
    ),
    sa.select(
        sa.cast(sa.null(), _CASES.c.id.type),
        sa.cast(sa.null(), _CASES.c.submission.type),
        sa.cast(sa.null(), _CASES.c.victim_was_under_18.type),
        _IDENTIFIERS.c.normalized,
        sa.true(),
    )
    .where(
        _IDENTIFIERS.c.normalized.in_(_REPEATED_VALUES),
        _IDENTIFIERS.c.normalized.not_in(not_linking_identifiers()),
    )
    .distinct(),
)


@dataclass(frozen=True)
class RepeatFacts:
    """What a new case's identifiers make of it and of earlier cases, as read before it is kept."""

    shared: list[str]  # its normalized identifiers other cases hold, sorted
    earlier: list[tuple[EarlierCase, list[str]]]  # awaiting the repeat flag, lowest id first: each with the
    # identifiers it shares once the new case is kept, sorted


def repeat_facts_from(rows) -> RepeatFacts:
    shared: set[str] = set()
    earlier: dict[int, EarlierCase] = {}
    held_elsewhere: dict[int, set[str]] = {}
    for case_id, submission, was_child, normalized, elsewhere in rows:
        if case_id is None:
            shared.add(normalized)
            continue
        case = earlier.setdefault(case_id, EarlierCase(case_id, submission, bool(was_child), []))
        case.normalized.append(normalized)
        if elsewhere:
            held_elsewhere.setdefault(case_id, set()).add(normalized)
    return RepeatFacts(
        shared=sorted(shared),
        earlier=[
            (case, sorted(held_elsewhere.get(case_id, set()) | (set(case.normalized) & shared)))
            for case_id, case in sorted(earlier.items())
        ],
    )


def identifier_row(case_id: int, item: NormalizedIdentifier, now: datetime) -> dict:
    return {
        "case_id": case_id,
        "type": item.type.value,
        "value": item.value,
        "normalized": item.normalized,
        "platform": item.platform,
        "handle": item.handle,
        "created_at": now,
    }


def shared_identifier_values(
    session: Session, normalized_values: list[str], exclude_case_id: int | None = None
) -> list[str]:
    """Which of these normalized identifiers another case already has."""
    if not normalized_values:
        return []
    if exclude_case_id is None:
        found = session.execute(SHARED_ANYWHERE, {"values": normalized_values})
    else:
        found = session.execute(SHARED_ELSEWHERE, {"values": normalized_values, "case_id": exclude_case_id})
    return sorted(found.scalars())


@dataclass(frozen=True)
class EarlierCase:
    """A stored case whose urgency is to be decided again, with what that decision reads."""

    id: int
    submission: dict
    victim_was_under_18: bool
    normalized: list[str]  # every identifier it holds, normalized


def cases_awaiting_repeat_flag(
    session: Session, normalized_values: list[str], *, exclude_case_id: int
) -> list[EarlierCase]:
    rows = session.execute(CASES_AWAITING_REPEAT_FLAG, {"values": normalized_values, "case_id": exclude_case_id})
    return group_by_case(rows)


def group_by_case(rows) -> list[EarlierCase]:
    grouped: dict[int, EarlierCase] = {}
    for case_id, submission, was_child, normalized in rows:
        grouped.setdefault(case_id, EarlierCase(case_id, submission, bool(was_child), [])).normalized.append(normalized)
    return list(grouped.values())


@dataclass(frozen=True)
class HoldingCase(EarlierCase):
    """A case holding an identifier: what deciding its urgency again reads, and the urgency it has now."""

    urgency: dict  # priority, flags, next_steps as stored


_HOLDING = _IDENTIFIERS.alias("holding")
CASES_HOLDING = (
    sa.select(
        _CASES.c.id,
        _CASES.c.submission,
        _CASES.c.victim_was_under_18,
        _CASES.c.priority,
        _CASES.c.flags,
        _CASES.c.next_steps,
        _IDENTIFIERS.c.normalized,
    )
    .join(_IDENTIFIERS, _IDENTIFIERS.c.case_id == _CASES.c.id)
    .where(sa.exists().where(_HOLDING.c.case_id == _CASES.c.id, _HOLDING.c.normalized == sa.bindparam("value")))
    .order_by(_CASES.c.id, _IDENTIFIERS.c.id)
)


def cases_holding(session: Session, normalized: str) -> list[HoldingCase]:
    """Every case holding this normalized identifier, with every identifier it holds and its urgency."""
    grouped: dict[int, HoldingCase] = {}
    for case_id, submission, was_child, priority, flags, next_steps, value in session.execute(
        CASES_HOLDING, {"value": normalized}
    ):
        urgency = {"priority": priority, "flags": flags, "next_steps": next_steps}
        grouped.setdefault(case_id, HoldingCase(case_id, submission, bool(was_child), [], urgency)).normalized.append(
            value
        )
    return list(grouped.values())


def identifiers_of(session: Session, case_id: int) -> list[Identifier]:
    return list(session.exec(select(Identifier).where(Identifier.case_id == case_id).order_by(Identifier.id)))


def links_of(session: Session, case_id: int) -> list[tuple[Case, list[Identifier]]]:
    """Other cases sharing any normalized identifier with this one, with the identifiers they share."""
    mine = {row.normalized for row in identifiers_of(session, case_id)}
    if not mine:
        return []
    rows = session.exec(
        select(Case, Identifier)
        .join(Identifier, Identifier.case_id == Case.id)
        .where(Identifier.normalized.in_(mine), Case.id != case_id)
        .order_by(Case.created_at, Case.id, Identifier.id)
    ).all()
    linked: dict[int, tuple[Case, list[Identifier]]] = {}
    for case, identifier in rows:
        linked.setdefault(case.id, (case, []))[1].append(identifier)
    return list(linked.values())

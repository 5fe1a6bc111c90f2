"""Cases and their identifiers: written and read here, with urgency decided by the domain."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.domain.cases import CaseSubmission, IdentifierInput
from service.domain.identifiers import NormalizedIdentifier
from service.domain.reference import RANDOM_LENGTH, reference_from_random
from service.domain.urgency import (
    CaseFacts,
    FlagCode,
    Priority,
    Urgency,
    UrgencyPolicy,
    flag_urgency,
    victim_was_under_18,
)
from service.storage.alerts import URGENT_EVENT, queue_alert
from service.storage.corrections import not_linking_identifiers
from service.storage.keys import new_reporter_token, sha256_hex
from service.storage.models import Case, CaseFlag, CaseNote, Identifier


@dataclass(frozen=True)
class IdentifierRecord:
    type: str
    value: str
    normalized: str
    platform: str | None
    handle: str | None
    created_at: datetime


@dataclass(frozen=True)
class NewCase:
    id: int
    reference: str
    reporter_token: str
    status: str
    urgency: Urgency  # as decided, with cross-case flags: what analysts see
    created_at: datetime
    identifiers: list[IdentifierRecord]


_CASES = Case.__table__
_IDENTIFIERS = Identifier.__table__
_FLAGS = CaseFlag.__table__


def create_case(
    session: Session,
    submission: CaseSubmission,
    *,
    submitted_by_key_id: str | None,
    now: datetime,
    policy: UrgencyPolicy,
    alert_if_urgent: bool = False,
) -> NewCase:
    """Insert the case and its identifiers in the session's transaction (the caller commits).

    Intake is the hot path, so this writes with plain INSERTs rather than the ORM's unit of work.
    """
    normalized = _unique_normalized(submission.identifiers)
    shared = shared_identifier_values(session, [item.normalized for item in normalized])
    was_child = victim_was_under_18(submission, now)
    urgency = flag_urgency(CaseFacts(submission, shared, victim_was_under_18=was_child), now, policy)
    reporter_token = new_reporter_token()
    reference = reference_from_random(secrets.token_bytes(RANDOM_LENGTH))
    columns = _urgency_columns(urgency)
    # 55 random bits: a clash is vanishingly rare, and the unique constraint refuses it if it comes.
    case_id = session.execute(
        sa.insert(_CASES).returning(_CASES.c.id),
        {
            "reference": reference,
            "reporter_token_sha256": sha256_hex(reporter_token),
            "submitted_by_key_id": submitted_by_key_id,
            "status": "received",
            "police_force": submission.police_force,
            "submission": submission.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
            "created_at": now,
            "updated_at": now,
            "victim_was_under_18": was_child,
            **columns,
        },
    ).scalar_one()
    _write_flag_rows(session, case_id, columns["flags"])
    records = [
        IdentifierRecord(item.type.value, item.value, item.normalized, item.platform, item.handle, now)
        for item in normalized
    ]
    if records:
        session.execute(sa.insert(_IDENTIFIERS), [{"case_id": case_id, **asdict(record)} for record in records])
    if alert_if_urgent and urgency.priority is Priority.urgent:
        # Only what lets someone act, never personal data: the case is read through the API.
        queue_alert(
            session,
            event=URGENT_EVENT,
            now=now,
            payload={
                "reference": reference,
                "priority": columns["priority"],
                "flags": [flag["code"] for flag in columns["flags"]],
                "created_at": now.isoformat(),
            },
        )
    if shared:  # after the new identifiers are in, so the earlier cases can see what they share
        _reflag_cases_sharing(session, shared, exclude_case_id=case_id, now=now, policy=policy)
    return NewCase(
        id=case_id,
        reference=reference,
        reporter_token=reporter_token,
        status="received",
        urgency=urgency,
        created_at=now,
        identifiers=records,
    )


def add_identifiers(
    session: Session, case: Case, inputs: list[IdentifierInput], *, now: datetime, policy: UrgencyPolicy
) -> list[Identifier]:
    """Store new identifiers on a case (a repeat of one it has is returned, not duplicated) and
    re-decide its urgency, since a shared identifier may make it a repeat case."""
    existing = {(row.type, row.normalized): row for row in identifiers_of(session, case.id)}
    stored: list[Identifier] = []
    for item in _unique_normalized(inputs):
        row = existing.get((item.type.value, item.normalized))
        if row is None:
            row = _identifier_row(case.id, item, now)
            session.add(row)
            existing[(row.type, row.normalized)] = row
        stored.append(row)
    session.flush()
    shared, columns = _decide_again(session, case, [normalized for _, normalized in existing], now, policy)
    for column, value in columns.items():
        setattr(case, column, value)
    _replace_flag_rows(session, case.id, case.flags)
    if shared:
        _reflag_cases_sharing(session, shared, exclude_case_id=case.id, now=now, policy=policy)
    case.updated_at = now
    session.add(case)
    session.flush()
    return stored


# An identifier analysts marked as joining nothing (a platform's support address) makes no repeat case.
_SHARED_ANYWHERE = (
    sa.select(_IDENTIFIERS.c.normalized)
    .where(
        _IDENTIFIERS.c.normalized.in_(sa.bindparam("values", expanding=True)),
        _IDENTIFIERS.c.normalized.not_in(not_linking_identifiers()),
    )
    .distinct()
)
_SHARED_ELSEWHERE = _SHARED_ANYWHERE.where(_IDENTIFIERS.c.case_id != sa.bindparam("case_id"))


def shared_identifier_values(
    session: Session, normalized_values: list[str], exclude_case_id: int | None = None
) -> list[str]:
    """Which of these normalized identifiers another case already has."""
    if not normalized_values:
        return []
    if exclude_case_id is None:
        found = session.execute(_SHARED_ANYWHERE, {"values": normalized_values})
    else:
        found = session.execute(_SHARED_ELSEWHERE, {"values": normalized_values, "case_id": exclude_case_id})
    return sorted(found.scalars())


def find_case(session: Session, reference: str) -> Case | None:
    return session.exec(select(Case).where(Case.reference == reference)).first()


def find_case_id_by_reporter_token(session: Session, reporter_token: str) -> int | None:
    return session.exec(select(Case.id).where(Case.reporter_token_sha256 == sha256_hex(reporter_token))).first()


def identifiers_of(session: Session, case_id: int) -> list[Identifier]:
    return list(session.exec(select(Identifier).where(Identifier.case_id == case_id).order_by(Identifier.id)))


def _reflag_cases_sharing(
    session: Session, normalized_values: list[str], *, exclude_case_id: int, now: datetime, policy: UrgencyPolicy
) -> None:
    """Earlier cases that hold these identifiers are repeat cases now too: decide their urgency again,
    and bump their version so an analyst's stale copy is noticed. Not their updated_at: that is the
    last change to what the case's reporter sent or was told, which they can read, and a change caused
    by another case would tell whoever holds a reporter token (an offender too) that their identifier
    was just reported by someone else."""
    others = session.exec(
        select(Case).where(
            Case.id != exclude_case_id,
            sa.exists().where(_IDENTIFIERS.c.case_id == Case.id, _IDENTIFIERS.c.normalized.in_(normalized_values)),
        )
    ).all()
    for other in others:
        if any(flag["code"] == FlagCode.repeat_identifier.value for flag in other.flags):
            continue
        values = [row.normalized for row in identifiers_of(session, other.id)]
        _, columns = _decide_again(session, other, values, now, policy)
        session.execute(
            sa.update(_CASES).where(_CASES.c.id == other.id).values(**columns, version=_CASES.c.version + 1)
        )
        _replace_flag_rows(session, other.id, columns["flags"])


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


def _decide_again(
    session: Session, case: Case, normalized_values: list[str], now: datetime, policy: UrgencyPolicy
) -> tuple[list[str], dict]:
    """A stored case's urgency decided afresh, given the normalized identifiers it now holds: which of
    them other cases share, and the urgency columns that follow."""
    shared = shared_identifier_values(session, normalized_values, exclude_case_id=case.id)
    submission = CaseSubmission.model_validate(case.submission)
    urgency = flag_urgency(CaseFacts(submission, shared, victim_was_under_18=case.victim_was_under_18), now, policy)
    return shared, _urgency_columns(urgency)


def _replace_flag_rows(session: Session, case_id: int, flags: list[dict]) -> None:
    session.execute(sa.delete(_FLAGS).where(_FLAGS.c.case_id == case_id))
    _write_flag_rows(session, case_id, flags)


def _write_flag_rows(session: Session, case_id: int, flags: list[dict]) -> None:
    if flags:
        session.execute(sa.insert(_FLAGS), [{"case_id": case_id, "code": flag["code"]} for flag in flags])


def _urgency_columns(urgency: Urgency) -> dict:
    return {
        "priority": urgency.priority.name,
        "flags": [{"code": flag.code.value, "reason": flag.reason} for flag in urgency.flags],
        "next_steps": urgency.next_steps,
    }


def _unique_normalized(inputs: list[IdentifierInput]) -> list[NormalizedIdentifier]:
    seen: dict[tuple[str, str], NormalizedIdentifier] = {}
    for item in inputs:
        normalized = item.normalized()
        seen.setdefault((normalized.type.value, normalized.normalized), normalized)
    return list(seen.values())


def _identifier_row(case_id: int | None, item: NormalizedIdentifier, now: datetime) -> Identifier:
    return Identifier(
        case_id=case_id,
        type=item.type.value,
        value=item.value,
        normalized=item.normalized,
        platform=item.platform,
        handle=item.handle,
        created_at=now,
    )


@dataclass(frozen=True)
class CaseFilters:
    since: datetime | None = None
    until: datetime | None = None
    priority: str | None = None
    flag: str | None = None
    force: str | None = None
    status: str | None = None
    identifier: str | None = None
    forces_in_scope: tuple[str, ...] | None = None  # the caller's key scope; None is every force


def list_cases(session: Session, filters: CaseFilters, *, after: tuple[datetime, int] | None, limit: int) -> list[Case]:
    """Newest first, by (created_at, id): a keyset page, so cases arriving meanwhile never shift it."""
    query = _filtered(select(Case), filters)
    if after is not None:
        created_at, case_id = after
        query = query.where(
            sa.or_(Case.created_at < created_at, sa.and_(Case.created_at == created_at, Case.id < case_id))
        )
    return list(session.exec(query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)))


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


EXPORT_BATCH = 500


def stream_cases(session: Session, filters: CaseFilters) -> Iterator[dict]:
    """Every matching case, oldest first, from a server-side cursor read in batches: memory stays flat
    however many rows there are. Each row carries its identifiers as "type:normalized;..." text."""
    identifiers = (
        sa.select(sa.func.aggregate_strings(_IDENTIFIERS.c.type + ":" + _IDENTIFIERS.c.normalized, ";"))
        .where(_IDENTIFIERS.c.case_id == _CASES.c.id)
        .scalar_subquery()
        .label("identifiers")
    )
    columns = [
        _CASES.c[name]
        for name in (
            "reference",
            "created_at",
            "updated_at",
            "status",
            "priority",
            "flags",
            "police_force",
            "assigned_to",
            "submission",
        )
    ]
    query = _filtered(sa.select(*columns, identifiers), filters).order_by(_CASES.c.created_at, _CASES.c.id)
    for batch in session.execute(query.execution_options(yield_per=EXPORT_BATCH)).mappings().partitions():
        yield from batch


def _filtered(query, filters: CaseFilters):
    """The WHERE clauses of a case search, shared by listing and export."""
    if filters.since is not None:
        query = query.where(_CASES.c.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(_CASES.c.created_at < filters.until)
    for column, value in (
        (_CASES.c.priority, filters.priority),
        (_CASES.c.status, filters.status),
        (_CASES.c.police_force, filters.force),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.forces_in_scope is not None:
        query = query.where(_CASES.c.police_force.in_(filters.forces_in_scope))
    if filters.flag is not None:
        query = query.where(sa.exists().where(_FLAGS.c.case_id == _CASES.c.id, _FLAGS.c.code == filters.flag))
    if filters.identifier is not None:
        query = query.where(
            sa.exists().where(_IDENTIFIERS.c.case_id == _CASES.c.id, _IDENTIFIERS.c.normalized == filters.identifier)
        )
    return query


def copy_export_lines(session: Session, filters: CaseFilters) -> Iterator[bytes]:
    """PostgreSQL only: every matching case as one JSON line of the export's columns, built by the
    database itself (the same values export_record makes in Python) and sent through COPY TO STDOUT in
    blocks as the database sends them; Python only passes them on, so the export runs at the database's pace.

    CSV mode with control characters as delimiter and quote: JSON text never holds either raw, so
    nothing is quoted or escaped and each row is exactly one JSON object and a newline.
    """
    compiled = _export_json_query(filters).compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    statement = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(statement, compiled.params) as copy:  # psycopg binds the filters client-side, quoted
        for block in copy:
            yield bytes(block)


def _export_json_query(filters: CaseFilters):
    line = sa.literal_column(_EXPORT_JSON)
    return _filtered(sa.select(line).select_from(_CASES), filters).order_by(_CASES.c.created_at, _CASES.c.id)


def _iso_utc(column: str) -> str:
    # As Python's isoformat() writes a UTC time: microseconds only when there are any.
    return (
        f"CASE WHEN mod(date_part('microseconds', {column})::bigint, 1000000) = 0 "
        f"""THEN to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') """
        f"""ELSE to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') END"""
    )


# The columns of service.domain.export.EXPORT_COLUMNS, in order; tests compare it with export_record.
_EXPORT_JSON = f"""json_build_object(
    'reference', "case".reference,
    'created_at', {_iso_utc('"case".created_at')},
    'updated_at', {_iso_utc('"case".updated_at')},
    'status', "case".status,
    'priority', "case".priority,
    'flags', COALESCE((SELECT string_agg(flag->>'code', ';' ORDER BY position)
                       FROM jsonb_array_elements("case".flags) WITH ORDINALITY AS f(flag, position)), ''),
    'police_force', "case".police_force,
    'assigned_to', "case".assigned_to,
    'reporter_relationship', "case".submission->'reporter'->>'relationship',
    'victim_age', "case".submission->'victim'->'age',
    'victim_age_band', "case".submission->'victim'->>'age_band',
    'victim_date_of_birth', "case".submission->'victim'->>'date_of_birth',
    'platforms', COALESCE((SELECT string_agg(platform, ';' ORDER BY position)
                           FROM jsonb_array_elements_text("case".submission->'platforms')
                                WITH ORDINALITY AS p(platform, position)), ''),
    'first_contact_at', "case".submission->>'first_contact_at',
    'deadline_at', "case".submission->>'deadline_at',
    'images_shared', "case".submission->'images_shared',
    'feels_unsafe', "case".submission->'feels_unsafe',
    'consent_to_share', "case".submission->'consent_to_share',
    'payments_count', COALESCE(jsonb_array_length("case".submission->'payments'), 0),
    'identifiers', COALESCE((SELECT string_agg(identifier.type || ':' || identifier.normalized, ';'
                                              ORDER BY identifier.type || ':' || identifier.normalized COLLATE "C")
                             FROM identifier WHERE identifier.case_id = "case".id), ''),
    'account', "case".submission->>'account',
    'threats', "case".submission->>'threats'
)::text"""  # noqa: S608 - built from constants only, never from input


def count_cases(session: Session, filters: CaseFilters) -> int:
    return session.execute(_filtered(sa.select(sa.func.count()).select_from(_CASES), filters)).scalar_one()

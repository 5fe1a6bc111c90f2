"""Keeping a reported case, on the event loop: the rows a report becomes, written as they were decided.

On PostgreSQL a case that repeats no earlier identifier is kept by one statement (`keep_new_case`):
one round trip, its own transaction. Every other case is kept by `keep_case` in an explicit transaction.
The statement writes what the rest of the service would write for such a case (flag rows, identifiers,
audit row, alert, idempotency record; no cluster rows, as a case linked to no other case is in no cluster:
service.storage.clusters): tests/api run every path on both databases.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from service.domain.identifiers import NormalizedIdentifier
from service.storage.alerts import URGENT_EVENT
from service.storage.cases import DELETE_FLAGS, INSERT_CASE, INSERT_FLAGS, UPDATE_URGENCY, flag_rows
from service.storage.idempotency import RememberedAnswer
from service.storage.identifiers import REPEAT_FACTS, RepeatFacts, identifier_row, repeat_facts_from
from service.storage.models import (
    ApiKey,
    AuditEvent,
    Evidence,
    IdempotencyRecord,
    Identifier,
    WebhookDelivery,
)

_KEYS = ApiKey.__table__
_IDEMPOTENCY = IdempotencyRecord.__table__


@dataclass(frozen=True)
class CaseToKeep:
    """A new case as decided above storage: its row, and the rows that go with it."""

    case_row: dict  # column → value for "case"
    identifiers: list[NormalizedIdentifier]
    evidence_rows: list[dict]  # column → value for "evidence", less case_id
    audit_row: dict  # column → value for "audit_event", less case_id
    alert_payload: dict | None  # queued with the case when it is urgent and alerts are on
    submitted_by_live_key: str | None  # the key must still be live when the case is written


@dataclass(frozen=True)
class IdempotencyClaim:
    scope: str
    key_sha256: str
    request_sha256: str
    response_sealed: bytes  # the answer, sealed before anything is written


@dataclass(frozen=True)
class StoredAnswer:
    request_sha256: str
    status_code: int
    response_sealed: bytes


class KeyNoLongerLive(Exception):
    """The API key was revoked after the caller was identified: nothing was kept."""


@dataclass(frozen=True)
class OneStatementOutcome:
    case_id: int | None  # kept
    earlier_answer: StoredAnswer | None  # nothing kept: the Idempotency-Key was used before
    key_live: bool = True  # False: nothing kept, the API key was revoked since it was cached
    # None of these: nothing kept, as it repeats an earlier identifier; keep_case keeps it and links it.


# One statement, its own transaction. Nothing is written if an identifier is already known (the rare
# repeat case goes through keep_case, which also flags the earlier cases), if the Idempotency-Key is
# taken (the caller replays the answer kept with it), or if the key was revoked since it was cached.
# The parts in braces are there only when used (`_shape`): a prepared plan starts every part it holds
# on every execution, the unused ones too (bench/new_case_statement.py measures it).
_KEEP_NEW_CASE = """
WITH shared AS (
    SELECT 1 FROM identifier WHERE normalized = ANY($1::text[]) LIMIT 1
), live AS (
    SELECT 1 WHERE $2::text IS NULL OR EXISTS (SELECT 1 FROM api_key WHERE id = $2::text AND revoked_at IS NULL)
){claim}, new_case AS (
    INSERT INTO "case" (reference, reporter_token_sha256, submitted_by_key_id, status, priority, police_force,
                        flags, next_steps, submission, created_at, updated_at, victim_was_under_18)
    SELECT $8::text, $9::text, $2::text, 'received', $10::text, $11::text, $12::jsonb, $13::jsonb, $14::jsonb,
           $7::timestamptz, $7::timestamptz, $25::boolean
    WHERE NOT EXISTS (SELECT 1 FROM shared) AND EXISTS (SELECT 1 FROM live){claimed}
    RETURNING id
), flags AS (
    INSERT INTO case_flag (case_id, code) SELECT new_case.id, code FROM new_case, unnest($15::text[]) AS code
), identifiers AS (
    INSERT INTO identifier (case_id, type, value, normalized, platform, handle, created_at)
    SELECT new_case.id, kept.type, kept.value, kept.normalized, kept.platform, kept.handle, $7::timestamptz
    FROM new_case, unnest($16::text[], $17::text[], $1::text[], $18::text[], $19::text[])
         AS kept(type, value, normalized, platform, handle)
), audit AS (
    INSERT INTO audit_event (at, actor, action, case_id, request_id, client_request_id)
    SELECT $7::timestamptz, $20::text, $21::text, new_case.id, $22::text, $26::text FROM new_case
){alert}
SELECT (SELECT id FROM new_case) AS case_id,
       EXISTS (SELECT 1 FROM shared) AS repeats_identifiers,
       EXISTS (SELECT 1 FROM live) AS key_live
"""
_CLAIM = """, claim AS (
    INSERT INTO idempotency_record (scope, key_sha256, request_sha256, status_code, response_sealed, created_at)
    SELECT $3::text, $4::text, $5::text, 201, $6::bytea, $7::timestamptz
    WHERE NOT EXISTS (SELECT 1 FROM shared) AND EXISTS (SELECT 1 FROM live)
    ON CONFLICT (scope, key_sha256) DO NOTHING
    RETURNING id
)"""
_CLAIMED = " AND EXISTS (SELECT 1 FROM claim)"
_ALERT = """, alert AS (
    INSERT INTO webhook_delivery (event, payload, created_at, attempts, next_attempt_at)
    SELECT $23::text, $24::jsonb, $7::timestamptz, 0, $7::timestamptz FROM new_case
)"""
_PARAMETER = re.compile(r"\$(\d+)\b")


@functools.cache
def _shape(template: str, claiming: bool, alerting: bool) -> tuple[str, tuple[int, ...]]:
    """The statement with the parts this case uses, its parameters numbered anew: (text, the index in
    the full argument list of each parameter it takes). Four shapes, each prepared once per connection."""
    text = template.format(
        claim=_CLAIM if claiming else "", claimed=_CLAIMED if claiming else "", alert=_ALERT if alerting else ""
    )
    used = sorted({int(number) for number in _PARAMETER.findall(text)})
    renumbered = {number: position for position, number in enumerate(used, start=1)}
    text = _PARAMETER.sub(lambda found: f"${renumbered[int(found[1])]}", text)
    return text, tuple(number - 1 for number in used)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


_EARLIER_ANSWER = """
SELECT request_sha256, status_code, response_sealed FROM idempotency_record WHERE scope = $1 AND key_sha256 = $2
"""


async def keep_new_case(
    driver: asyncpg.Connection, case: CaseToKeep, claim: IdempotencyClaim | None
) -> OneStatementOutcome:
    """PostgreSQL only: keep a case that repeats no earlier identifier, with its flags, identifiers, audit
    row, alert and idempotency record, in one statement (one round trip; its own transaction). On the
    driver's connection: its statement cache keeps the statement prepared for the connection's life."""
    row = case.case_row
    items = case.identifiers
    audit = case.audit_row
    statement, taken = _shape(_KEEP_NEW_CASE, claim is not None, case.alert_payload is not None)
    arguments = (
        [item.normalized for item in items],
        case.submitted_by_live_key,
        claim.scope if claim else None,
        claim.key_sha256 if claim else None,
        claim.request_sha256 if claim else None,
        claim.response_sealed if claim else None,
        row["created_at"],
        row["reference"],
        row["reporter_token_sha256"],
        row["priority"],
        row["police_force"],
        _json(row["flags"]),
        _json(row["next_steps"]),
        _json(row["submission"]),
        [flag["code"] for flag in row["flags"]],
        [item.type.value for item in items],
        [item.value for item in items],
        [item.platform for item in items],
        [item.handle for item in items],
        audit["actor"],
        audit["action"],
        audit["request_id"],
        URGENT_EVENT,
        _json(case.alert_payload) if case.alert_payload is not None else None,
        row["victim_was_under_18"],
        audit["client_request_id"],
    )
    found = await driver.fetchrow(statement, *(arguments[index] for index in taken))
    if not found["key_live"]:
        return OneStatementOutcome(None, None, key_live=False)
    if found["case_id"] is not None or found["repeats_identifiers"]:
        return OneStatementOutcome(found["case_id"], None)
    assert claim is not None  # nothing kept, no repeat, key live: the claim found its key taken
    earlier = await driver.fetchrow(_EARLIER_ANSWER, claim.scope, claim.key_sha256)
    stored = StoredAnswer(earlier["request_sha256"], earlier["status_code"], bytes(earlier["response_sealed"]))
    return OneStatementOutcome(None, stored)


# --- in an explicit transaction (SQLite; PostgreSQL's repeat cases and cases with evidence files) ---


async def claim_idempotency_key(connection: AsyncConnection, claim: IdempotencyClaim, now: datetime) -> bool:
    """Take the key for this request, or find it taken (on PostgreSQL after any transaction holding it
    ends; SQLite's writers take turns). False: taken, by this request earlier or by another."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_IDEMPOTENCY)
        .values(
            scope=claim.scope,
            key_sha256=claim.key_sha256,
            request_sha256=claim.request_sha256,
            status_code=0,
            response_sealed=b"",
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key_sha256"])
        .returning(_IDEMPOTENCY.c.id)
    )
    return (await connection.execute(statement)).first() is not None


async def seal_idempotent_answer(connection: AsyncConnection, claim: IdempotencyClaim, status_code: int) -> None:
    await connection.execute(
        sa.update(_IDEMPOTENCY)
        .where(_IDEMPOTENCY.c.scope == claim.scope, _IDEMPOTENCY.c.key_sha256 == claim.key_sha256)
        .values(status_code=status_code, response_sealed=claim.response_sealed)
    )


async def remember_answer(connection: AsyncConnection, answer: RememberedAnswer, now: datetime) -> None:
    """A plain insert: a key already taken is an IntegrityError, and the whole transaction goes back."""
    await connection.execute(
        sa.insert(_IDEMPOTENCY),
        {
            "scope": answer.scope,
            "key_sha256": answer.key_sha256,
            "request_sha256": answer.scope,
            "status_code": 200,
            "response_sealed": answer.response_sealed,
            "created_at": now,
        },
    )


async def earlier_answer(connection: AsyncConnection, claim: IdempotencyClaim) -> StoredAnswer:
    found = await connection.execute(
        sa.select(_IDEMPOTENCY.c.request_sha256, _IDEMPOTENCY.c.status_code, _IDEMPOTENCY.c.response_sealed).where(
            _IDEMPOTENCY.c.scope == claim.scope, _IDEMPOTENCY.c.key_sha256 == claim.key_sha256
        )
    )
    row = found.one()
    return StoredAnswer(row.request_sha256, row.status_code, bytes(row.response_sealed))


async def key_is_live(connection: AsyncConnection, key_id: str) -> bool:
    found = await connection.execute(sa.select(_KEYS.c.id).where(_KEYS.c.id == key_id, _KEYS.c.revoked_at.is_(None)))
    return found.first() is not None


async def repeat_facts(connection: AsyncConnection, normalized_values: list[str]) -> RepeatFacts:
    """Which of a new case's identifiers other cases hold, and the earlier cases awaiting the repeat flag
    because of them: one statement, before the case is kept."""
    if not normalized_values:
        return RepeatFacts(shared=[], earlier=[])
    return repeat_facts_from(await connection.execute(REPEAT_FACTS, {"values": normalized_values}))


# PostgreSQL: what keep_case writes, in one statement of the caller's transaction (one round trip, not
# four or five). JSON goes as text, as in _KEEP_NEW_CASE: None is SQL NULL, never JSON null.
_TEXTS = postgresql.ARRAY(sa.Text)
_KEEP_CASE_ON_POSTGRESQL = sa.text("""
WITH new_case AS (
    INSERT INTO "case" (reference, reporter_token_sha256, submitted_by_key_id, status, priority, police_force,
                        flags, next_steps, submission, created_at, updated_at, victim_was_under_18)
    VALUES (:reference, :reporter_token_sha256, :submitted_by_key_id, :status, :priority, :police_force,
            CAST(:flags AS jsonb), CAST(:next_steps AS jsonb), CAST(:submission AS jsonb), :created_at, :updated_at,
            :victim_was_under_18)
    RETURNING id
), flags AS (
    INSERT INTO case_flag (case_id, code) SELECT new_case.id, code FROM new_case, unnest(:codes) AS code
), identifiers AS (
    INSERT INTO identifier (case_id, type, value, normalized, platform, handle, created_at)
    SELECT new_case.id, kept.type, kept.value, kept.normalized, kept.platform, kept.handle, :created_at
    FROM new_case, unnest(:types, :values, :normalized, :platforms, :handles)
         AS kept(type, value, normalized, platform, handle)
), audit AS (
    INSERT INTO audit_event (at, actor, action, case_id, request_id, client_request_id, detail)
    SELECT :at, :actor, :action, new_case.id, :request_id, :client_request_id, CAST(:detail AS jsonb) FROM new_case
), alert AS (
    INSERT INTO webhook_delivery (event, payload, created_at, attempts, next_attempt_at)
    SELECT :event, CAST(:payload AS jsonb), :created_at, 0, :created_at FROM new_case WHERE :alerting
)
SELECT id FROM new_case
""").bindparams(
    *(sa.bindparam(name, type_=_TEXTS) for name in ("codes", "types", "values", "normalized", "platforms", "handles")),
    *(sa.bindparam(name, type_=sa.DateTime(timezone=True)) for name in ("created_at", "updated_at", "at")),
    *(sa.bindparam(name, type_=sa.Boolean) for name in ("victim_was_under_18", "alerting")),
    *(
        sa.bindparam(name, type_=sa.Text)
        for name in (
            "reference",
            "reporter_token_sha256",
            "submitted_by_key_id",
            "status",
            "priority",
            "police_force",
            "flags",
            "next_steps",
            "submission",
            "actor",
            "action",
            "request_id",
            "client_request_id",
            "detail",
            "event",
            "payload",
        )
    ),
)


def _keep_case_parameters(case: CaseToKeep) -> dict:
    row, audit, items = case.case_row, case.audit_row, case.identifiers
    return {
        **{name: row[name] for name in _CASE_TEXTS},
        "flags": _json(row["flags"]),
        "next_steps": _json(row["next_steps"]),
        "submission": _json(row["submission"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "victim_was_under_18": row["victim_was_under_18"],
        "codes": [flag["code"] for flag in row["flags"]],
        "types": [item.type.value for item in items],
        "values": [item.value for item in items],
        "normalized": [item.normalized for item in items],
        "platforms": [item.platform for item in items],
        "handles": [item.handle for item in items],
        "at": audit["at"],
        **{name: audit.get(name) for name in ("actor", "action", "request_id", "client_request_id")},
        "detail": _json(audit["detail"]) if audit.get("detail") is not None else None,
        "event": URGENT_EVENT,
        "payload": _json(case.alert_payload) if case.alert_payload is not None else None,
        "alerting": case.alert_payload is not None,
    }


_CASE_TEXTS = ("reference", "reporter_token_sha256", "submitted_by_key_id", "status", "priority", "police_force")


async def keep_case(connection: AsyncConnection, case: CaseToKeep) -> int:
    """The case and its rows, in the connection's transaction (on PostgreSQL, all but evidence rows in
    one statement)."""
    if connection.dialect.name == "postgresql":
        case_id = (await connection.execute(_KEEP_CASE_ON_POSTGRESQL, _keep_case_parameters(case))).scalar_one()
    else:
        case_id = await _keep_case_row_by_row(connection, case)
    if case.evidence_rows:
        await connection.execute(
            sa.insert(Evidence.__table__), [{**row, "case_id": case_id} for row in case.evidence_rows]
        )
    return case_id


async def _keep_case_row_by_row(connection: AsyncConnection, case: CaseToKeep) -> int:
    case_id = (await connection.execute(INSERT_CASE, case.case_row)).scalar_one()
    if case.case_row["flags"]:
        await connection.execute(INSERT_FLAGS, flag_rows(case_id, case.case_row["flags"]))
    now = case.case_row["created_at"]
    if case.identifiers:
        await connection.execute(
            sa.insert(Identifier.__table__), [identifier_row(case_id, item, now) for item in case.identifiers]
        )
    await connection.execute(sa.insert(AuditEvent.__table__), {**case.audit_row, "case_id": case_id})
    if case.alert_payload is not None:
        await connection.execute(
            sa.insert(WebhookDelivery.__table__),
            {
                "event": URGENT_EVENT,
                "payload": case.alert_payload,
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
            },
        )
    return case_id


# PostgreSQL: earlier cases' urgency decided again, in two statements however many there are. The flag
# rows are matched to the new flags only once every case row is locked by the update: a statement that
# starts after that sees the flag rows of any transaction that held a lock before, as one that deletes
# and inserts after its own update does.
_UPDATE_URGENCIES_ON_POSTGRESQL = sa.text("""
UPDATE "case" SET version = "case".version + 1, priority = decided.priority,
                  flags = CAST(decided.flags AS jsonb), next_steps = CAST(decided.next_steps AS jsonb)
FROM unnest(:ids, :priorities, :flags, :next_steps) AS decided(id, priority, flags, next_steps)
WHERE "case".id = decided.id
""").bindparams(
    sa.bindparam("ids", type_=postgresql.ARRAY(sa.Integer)),
    *(sa.bindparam(name, type_=_TEXTS) for name in ("priorities", "flags", "next_steps")),
)
_MATCH_FLAG_ROWS_ON_POSTGRESQL = sa.text("""
WITH decided AS (
    SELECT * FROM unnest(:flagged_case_ids, :codes) AS flag(case_id, code)
), dropped AS (
    DELETE FROM case_flag
    WHERE case_id = ANY(:ids)
      AND NOT EXISTS (SELECT 1 FROM decided WHERE decided.case_id = case_flag.case_id AND decided.code = case_flag.code)
)
INSERT INTO case_flag (case_id, code) SELECT case_id, code FROM decided ON CONFLICT DO NOTHING
""").bindparams(
    *(sa.bindparam(name, type_=postgresql.ARRAY(sa.Integer)) for name in ("ids", "flagged_case_ids")),
    sa.bindparam("codes", type_=_TEXTS),
)


async def update_urgencies(connection: AsyncConnection, decided: list[tuple[int, dict]]) -> None:
    """Earlier cases' urgency columns as decided again, each (case id, columns), lowest id first, and their
    flag rows to match: as service.storage.cases.update_urgency (the version moves, updated_at does not)."""
    if not decided:
        return
    if connection.dialect.name != "postgresql":
        for case_id, columns in decided:
            await update_urgency(connection, case_id, columns)
        return
    ids = [case_id for case_id, _ in decided]
    await connection.execute(
        _UPDATE_URGENCIES_ON_POSTGRESQL,
        {
            "ids": ids,
            "priorities": [columns["priority"] for _, columns in decided],
            "flags": [_json(columns["flags"]) for _, columns in decided],
            "next_steps": [_json(columns["next_steps"]) for _, columns in decided],
        },
    )
    flagged = [(case_id, flag["code"]) for case_id, columns in decided for flag in columns["flags"]]
    await connection.execute(
        _MATCH_FLAG_ROWS_ON_POSTGRESQL,
        {"ids": ids, "flagged_case_ids": [case_id for case_id, _ in flagged], "codes": [code for _, code in flagged]},
    )


async def update_urgency(connection: AsyncConnection, case_id: int, urgency_columns: dict) -> None:
    await connection.execute(UPDATE_URGENCY, {"changed_case_id": case_id, **urgency_columns})
    await connection.execute(DELETE_FLAGS, {"flagged_case_id": case_id})
    if urgency_columns["flags"]:
        await connection.execute(INSERT_FLAGS, flag_rows(case_id, urgency_columns["flags"]))

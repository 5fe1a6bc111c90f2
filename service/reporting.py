"""Reporting a case: the one use case behind POST /v1/cases (JSON, form or multipart) and the report form.

Everything the answer needs is decided before anything is written: urgency, reference, reporter token,
the evidence rows, and with an Idempotency-Key the sealed answer. So on PostgreSQL a report that repeats
no earlier identifier, sent without files, is kept by one statement in one round trip, on the event loop.
The rest (a repeat case, which also flags the earlier cases; a report with evidence files; every report
on SQLite) is kept in one explicit transaction. Either way the transaction begins and ends here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Session

from service.clustering import refresh_cluster_on
from service.domain.cases import CaseSubmission
from service.domain.reference import RANDOM_LENGTH, reference_from_random
from service.domain.urgency import (
    CaseFacts,
    Priority,
    UrgencyPolicy,
    as_told_to_reporter,
    flag_urgency,
    victim_was_under_18,
)
from service.linking import decided_again, unique_normalized, urgency_columns
from service.settings import Settings
from service.storage import intake
from service.storage.audit import CLIENT_REQUEST_ID
from service.storage.database import (
    AsyncDatabase,
    on_driver_retrying_once_on_disconnect,
    retrying_on_conflict,
    write_transaction,
)
from service.storage.evidence import ReceivedFile, evidence_row
from service.storage.idempotency import (
    IdempotencyRecordUnreadable,
    RememberedAnswer,
    StoredResponse,
    key_digest,
    replayed,
    seal,
    sealing_key,
)
from service.storage.image_hashes import ImageMatchPolicy, index_and_match
from service.storage.intake import CaseToKeep, IdempotencyClaim, KeyNoLongerLive, StoredAnswer
from service.storage.keys import new_reporter_token, sha256_hex
from service.storage.models import utc_now

CREATED = 201
_EVIDENCE_TOLD = ("id", "filename", "content_type", "size", "sha256", "received_at")

__all__ = ["KeyNoLongerLive", "IdempotencyRecordUnreadable", "Reporting", "Reporter", "ReportedCase", "Answer"]


@dataclass(frozen=True)
class Reporter:
    """Who is reporting, as the audit log and the idempotency record name them."""

    actor: str
    key_id: str | None
    request_id: str
    secret: str | None = None  # the caller's token: seals an idempotent answer; never stored
    scope: str | None = None  # whose Idempotency-Keys these are, if not the actor's own


@dataclass(frozen=True)
class ReportedCase:
    """What the person reporting is told: everything but cross-case facts is decided before writing."""

    reference: str
    reporter_token: str
    status: str
    priority: str
    flags: list[dict]
    next_steps: list[str]
    identifiers: list[dict]
    evidence: list[dict]
    created_at: datetime


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict  # JSON-ready
    headers: dict[str, str]
    replayed: bool | None  # None when no Idempotency-Key was given


# The HTTP layer's shape of the answer: (JSON body, headers) for a reported case.
Shape = Callable[[ReportedCase], tuple[dict, dict[str, str]]]


@dataclass(frozen=True)
class _Decided:
    case: CaseToKeep
    reported: ReportedCase


class Reporting:
    def __init__(self, database: AsyncDatabase, settings: Settings, alerts=None) -> None:
        self.database = database
        self.settings = settings
        self.policy = UrgencyPolicy(recall_window=settings.recall_window, deadline_window=settings.deadline_window)
        self.image_matching: ImageMatchPolicy = settings.image_matching
        self.alerts = alerts  # an AlertDeliverer, nudged once an urgent case is committed
        self.one_statement = database.dialect_name == "postgresql"

    async def report_case(
        self,
        submission: CaseSubmission,
        files: list[ReceivedFile],
        reporter: Reporter,
        *,
        shape: Shape,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
        also_remember: Sequence[RememberedAnswer] = (),
    ) -> Answer:
        """Keep the report as a case, once per Idempotency-Key, and say what to tell the reporter;
        `also_remember`: answers kept under other keys in the case's transaction (the report form's)."""
        now = utc_now()
        decided = self._decide(submission, files, reporter, now, shared=[])
        body, headers = shape(decided.reported)
        claim = None
        sealing = None
        if idempotency_key is not None:
            assert fingerprint is not None and reporter.secret is not None
            sealing = sealing_key(reporter.secret, idempotency_key)
            claim = IdempotencyClaim(
                scope=reporter.scope or reporter.actor,
                key_sha256=key_digest(idempotency_key),
                request_sha256=fingerprint,
                response_sealed=seal(sealing, {"body": body, "headers": headers}),
            )

        if self.one_statement and not files and not also_remember:
            outcome = await on_driver_retrying_once_on_disconnect(
                self.database, lambda driver: intake.keep_new_case(driver, decided.case, claim)
            )
            if not outcome.key_live:
                raise KeyNoLongerLive()
            if outcome.earlier_answer is not None:
                assert claim is not None and sealing is not None
                return _replay(outcome.earlier_answer, claim, sealing)
            if outcome.case_id is not None:
                if self.alerts is not None and decided.case.alert_payload is not None:
                    self.alerts.nudge()  # an urgent case's alert goes now, not at the next poll
                return Answer(CREATED, body, headers, replayed=False if claim else None)
            # Nothing kept: it repeats an earlier identifier, and is kept and linked in a transaction.

        # A repeat case the one statement declared is kept after it found the key live: not asked again.
        key_found_live = self.one_statement and not files and not also_remember

        async def keep(connection: AsyncConnection) -> Answer | StoredAnswer:
            return await self._keep_in_transaction(
                connection,
                submission,
                files,
                reporter,
                now,
                decided,
                shape,
                claim,
                sealing,
                also_remember,
                key_found_live=key_found_live,
            )

        kept = await retrying_on_conflict(self.database, keep)
        if isinstance(kept, StoredAnswer):
            assert claim is not None and sealing is not None
            return _replay(kept, claim, sealing)
        # Kept in a transaction that may have linked it to other cases: a cluster alert may be queued.
        if self.alerts is not None and kept.replayed is not True:
            self.alerts.nudge()
        return kept

    async def _keep_in_transaction(
        self,
        connection: AsyncConnection,
        submission: CaseSubmission,
        files: list[ReceivedFile],
        reporter: Reporter,
        now: datetime,
        decided: _Decided,
        shape: Shape,
        claim: IdempotencyClaim | None,
        sealing: bytes | None,
        also_remember: Sequence[RememberedAnswer],
        *,
        key_found_live: bool = False,
    ) -> Answer | StoredAnswer:
        async with write_transaction(connection):
            if (
                reporter.key_id is not None
                and not key_found_live
                and not await intake.key_is_live(connection, reporter.key_id)
            ):
                raise KeyNoLongerLive()
            if claim is not None and not await intake.claim_idempotency_key(connection, claim, now):
                return await intake.earlier_answer(connection, claim)
            facts = await intake.repeat_facts(connection, [item.normalized for item in decided.case.identifiers])
            shared = facts.shared
            if shared:  # a repeat case: its urgency, and so perhaps its answer, differ
                decided = self._decide(submission, files, reporter, now, shared=shared, like=decided)
                body, headers = shape(decided.reported)
                if claim is not None and sealing is not None:
                    claim = replace(claim, response_sealed=seal(sealing, {"body": body, "headers": headers}))
            else:
                body, headers = shape(decided.reported)
            case_id = await intake.keep_case(connection, decided.case)
            for remembered in also_remember:
                await intake.remember_answer(connection, remembered, now)
            if any(item.image is not None or item.video is not None for item in files):
                await connection.run_sync(self._index_images, case_id, decided.case.evidence_rows, files, now)
            if facts.earlier:  # repeat cases now too: their urgency decided again
                policy = self.policy
                await intake.update_urgencies(
                    connection,
                    [
                        (other.id, decided_again(other.submission, shared_now, now, policy, other.victim_was_under_18))
                        for other, shared_now in facts.earlier
                    ],
                )
            await refresh_cluster_on(connection, case_id, self.settings, alerts=self.alerts is not None, now=now)
            if claim is not None:
                await intake.seal_idempotent_answer(connection, claim, CREATED)
        return Answer(CREATED, body, headers, replayed=False if claim else None)

    def _index_images(
        self, connection, case_id: int, evidence_rows: list[dict], files: list[ReceivedFile], now: datetime
    ) -> None:
        """The images' and video frames' perceptual hashes indexed and matched against other cases', in
        this transaction (run_sync: SQLAlchemy drives the blocking code on the event loop, no thread)."""
        pairs = list(zip(evidence_rows, files, strict=True))
        fingerprinted = [(row["id"], item.image) for row, item in pairs if item.image is not None]
        videos = [(row["id"], item.video) for row, item in pairs if item.video is not None]
        with Session(bind=connection) as session:  # joins the transaction; never ends it
            index_and_match(session, case_id, fingerprinted, policy=self.image_matching, now=now, videos=videos)
            session.flush()

    def _decide(
        self,
        submission: CaseSubmission,
        files: list[ReceivedFile],
        reporter: Reporter,
        now: datetime,
        *,
        shared: list[str],
        like: _Decided | None = None,
    ) -> _Decided:
        """The case's rows and its answer. `like`: the same case decided before, keeping its reference,
        token and evidence ids, now deciding urgency with the identifiers other cases share."""
        was_child = victim_was_under_18(submission, now)  # kept as a fact: a birthday never lifts it
        urgency = flag_urgency(CaseFacts(submission, shared, victim_was_under_18=was_child), now, self.policy)
        columns = urgency_columns(urgency)
        told = as_told_to_reporter(urgency)  # never whether anything sent is already known
        if like is None:
            reporter_token = new_reporter_token()
            reference = reference_from_random(secrets.token_bytes(RANDOM_LENGTH))
            identifiers = unique_normalized(submission.identifiers)
            evidence_rows = [evidence_row(item, received_by=reporter.actor, now=now) for item in files]
        else:
            reporter_token = like.reported.reporter_token
            reference = like.reported.reference
            identifiers = like.case.identifiers
            evidence_rows = like.case.evidence_rows
        case_row = {
            "reference": reference,
            "reporter_token_sha256": sha256_hex(reporter_token),
            "submitted_by_key_id": reporter.key_id,
            "status": "received",
            "police_force": submission.police_force,
            "submission": submission.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
            "created_at": now,
            "updated_at": now,
            "victim_was_under_18": was_child,
            **columns,
        }
        urgent = urgency.priority is Priority.urgent
        case = CaseToKeep(
            case_row=case_row,
            identifiers=identifiers,
            evidence_rows=evidence_rows,
            audit_row={
                "at": now,
                "actor": reporter.actor,
                "action": "case.create",
                "request_id": reporter.request_id,
                "client_request_id": CLIENT_REQUEST_ID.get(),
                "detail": {"evidence": [row["id"] for row in evidence_rows]} if evidence_rows else None,
            },
            # Only what lets someone act, never personal data: the case is read through the API.
            alert_payload={
                "reference": reference,
                "priority": columns["priority"],
                "flags": [flag["code"] for flag in columns["flags"]],
                "created_at": now.isoformat(),
            }
            if urgent and self.alerts is not None
            else None,
            submitted_by_live_key=reporter.key_id,
        )
        reported = ReportedCase(
            reference=reference,
            reporter_token=reporter_token,
            status="received",
            priority=told.priority.name,
            flags=[{"code": flag.code.value, "reason": flag.reason} for flag in told.flags],
            next_steps=told.next_steps,
            identifiers=[
                {
                    "type": item.type.value,
                    "value": item.value,
                    "normalized": item.normalized,
                    "platform": item.platform,
                    "handle": item.handle,
                    "created_at": now,
                }
                for item in identifiers
            ],
            evidence=[{key: row[key] for key in _EVIDENCE_TOLD} for row in evidence_rows],
            created_at=now,
        )
        return _Decided(case, reported)


def _replay(stored: StoredAnswer, claim: IdempotencyClaim, sealing: bytes) -> Answer:
    earlier: StoredResponse = replayed(
        stored.request_sha256, claim.request_sha256, stored.status_code, stored.response_sealed, sealing
    )
    return Answer(earlier.status_code, earlier.body["body"], earlier.body["headers"], replayed=True)

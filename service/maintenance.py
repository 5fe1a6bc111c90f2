"""The routine jobs, run on a schedule by `intake maintenance --every ...` rather than from memory:
idempotency records past their retention purged, orphaned evidence objects swept, and closed cases
past their retention period counted (erasing them stays a person's decision: `intake retention erase`).

Several replicas may each run the schedule: on PostgreSQL an advisory lock lets exactly one of them
do a round while the others skip it. Logs carry counts only, never references or personal data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.settings import Settings
from service.storage.database import session_scope
from service.storage.evidence import sweep
from service.storage.idempotency import purge_expired
from service.storage.models import utc_now
from service.storage.objects import ObjectStore
from service.storage.retention import expired_cases

log = logging.getLogger("service.maintenance")

# pg_advisory_lock takes one 64-bit key; this one is "intake maintenance" for every replica alike.
MAINTENANCE_LOCK_KEY = 0x696E74616B65_01


@dataclass(frozen=True)
class MaintenanceReport:
    idempotency_records_purged: int
    orphan_objects_removed: int
    expired_uploads_removed: int
    evidence_rows_missing_objects: int
    closed_cases_past_retention: int


@contextmanager
def maintenance_lock(engine: Engine) -> Iterator[bool]:
    """True when this process may run the round; False when another replica is running it now."""
    if engine.dialect.name != "postgresql":
        yield True  # SQLite is one host's file: one service, no replicas to agree with
        return
    with engine.connect() as connection:
        taken = connection.execute(sa.select(sa.func.pg_try_advisory_lock(MAINTENANCE_LOCK_KEY))).scalar_one()
        try:
            yield bool(taken)
        finally:
            if taken:
                connection.execute(sa.select(sa.func.pg_advisory_unlock(MAINTENANCE_LOCK_KEY)))
            connection.rollback()


def run_maintenance(settings: Settings, engine: Engine, store: ObjectStore) -> MaintenanceReport | None:
    """One round of every job; None if another replica holds the round."""
    with maintenance_lock(engine) as ours:
        if not ours:
            log.info(json.dumps({"event": "maintenance_skipped", "reason": "another replica is running it"}))
            return None
        now = utc_now()
        with session_scope(engine) as session:
            purged = purge_expired(session, now - settings.idempotency_retention)
        with session_scope(engine) as session:
            swept = sweep(session, store, now=now, grace=settings.sweep_grace, remove=True)
        with session_scope(engine) as session:
            past_retention = len(expired_cases(session, closed_before=now - settings.retention_period))
        report = MaintenanceReport(
            idempotency_records_purged=purged,
            orphan_objects_removed=len(swept.orphan_objects),
            expired_uploads_removed=swept.expired_uploads,
            evidence_rows_missing_objects=len(swept.missing_objects),
            closed_cases_past_retention=past_retention,
        )
        level = logging.WARNING if report.evidence_rows_missing_objects else logging.INFO
        log.log(level, json.dumps({"event": "maintenance_done", **asdict(report)}))
        return report

"""The `intake` command: keys, migrations, and serving."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from service.configuration import SettingsRefused, load_settings
from service.domain.police_forces import UnknownPoliceForce
from service.settings import Settings
from service.storage.content import load_content
from service.storage.database import create_database_engine, session_scope
from service.storage.keys import ROLES, create_api_key, key_id_of, list_api_keys, revoke_api_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def describe_database(database_url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(database_url).render_as_string(hide_password=True)


def upgrade_database(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def _check_forces(settings: Settings, slugs: list[str]) -> None:
    """A key or export limited to a force that does not exist would match nothing, silently."""
    forces = load_content(settings.content_dir).police_forces
    for slug in slugs:
        try:
            forces.check(slug)
        except UnknownPoliceForce as error:
            raise ValueError(f"--force: {error}") from None


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - a flat dispatch, one branch per subcommand
    parser = argparse.ArgumentParser(prog="intake", description="Sextortion case intake service.")
    commands = parser.add_subparsers(dest="command", required=True)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="make a key; it is printed once, alone on the last line")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who the key is for, e.g. 'North Yorkshire website'")
    create.add_argument(
        "--force",
        action="append",
        dest="forces",
        metavar="SLUG",
        help="analyst keys only: limit the key to this police force's cases (repeat for more)",
    )
    create.add_argument(
        "--child-evidence",
        action="store_true",
        help="analyst keys only: may view evidence of cases where the victim is under 18",
    )
    create.add_argument(
        "--share-without-consent",
        action="store_true",
        help="analyst keys only: STIX exports include cases whose victims did not agree to sharing",
    )
    create.add_argument(
        "--publishable",
        action="store_true",
        help="submitter keys only: a key for a force website's pages, usable by browsers only from --origin",
    )
    create.add_argument(
        "--origin",
        action="append",
        dest="origins",
        metavar="URL",
        help="with --publishable: the website's origin, e.g. https://www.example.police.uk (repeat for more)",
    )
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", metavar="KEY", help="the key's id (as `keys list` shows it) or the whole key")
    keys.add_parser("list", help="list keys (never their secrets)")

    database = commands.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    database.add_parser("upgrade", help="apply all migrations")
    database.add_parser("purge", help="delete idempotency records older than INTAKE_IDEMPOTENCY_RETENTION (run daily)")

    evidence = commands.add_parser("evidence", help="evidence maintenance").add_subparsers(
        dest="evidence_command", required=True
    )
    sweep = evidence.add_parser("sweep", help="remove objects with no row, report rows with no object")
    sweep.add_argument("--dry-run", action="store_true", help="report only; remove nothing")
    evidence.add_parser("verify", help="re-hash every evidence object against its intake SHA-256")

    retention = commands.add_parser("retention", help="closed cases past INTAKE_RETENTION_PERIOD").add_subparsers(
        dest="retention_command", required=True
    )
    retention.add_parser("review", help="list the closed cases that are past their retention period")
    erase = retention.add_parser("erase", help="erase them with their evidence objects (audited)")
    erase.add_argument("--yes", action="store_true", help="really erase; without it, nothing is erased")

    maintenance = commands.add_parser(
        "maintenance",
        help="purge old idempotency records, sweep orphaned evidence objects, count cases past retention",
    )
    maintenance.add_argument(
        "--every",
        metavar="DURATION",
        help="repeat forever at this interval (ISO 8601, e.g. PT1H, or seconds); replicas take turns",
    )

    export = commands.add_parser("export", help="export cases to a file, as the API's /v1/cases/export does")
    export.add_argument("--format", choices=["ndjson", "csv", "stix"], default="ndjson")
    export.add_argument("--version", choices=["1", "2"], default="1", help="NDJSON version (2: JSON arrays)")
    export.add_argument("--output", required=True, help="the file to write (it will hold personal data)")
    export.add_argument("--since", help="created at or after (ISO 8601)")
    export.add_argument("--until", help="created before (ISO 8601)")
    export.add_argument("--priority", choices=["normal", "high", "urgent"])
    export.add_argument("--flag")
    export.add_argument("--force", help="police force slug")
    export.add_argument("--status", choices=["received", "triaged", "assigned", "closed"])
    export.add_argument("--identifier", help="a normalized identifier")
    export.add_argument(
        "--share-without-consent",
        action="store_true",
        help="stix only: include cases whose victims did not agree to sharing (audited as such)",
    )

    clusters = commands.add_parser("clusters", help="offender networks").add_subparsers(
        dest="clusters_command", required=True
    )
    clusters.add_parser(
        "rebuild", help="work every cluster out again from the links (after an upgrade, for cases from before)"
    )

    serve = commands.add_parser("serve", help="apply migrations and serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default INTAKE_WORKERS, 1); migrations run once before they start",
    )

    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsRefused as error:
        print(f"intake: refusing to start, a setting is wrong:\n{error}", file=sys.stderr)
        return 2
    # Which database this is, every time: a CLI pointed at the wrong one must not look like an empty service.
    print(f"intake: database {describe_database(settings.resolved_database_url)}", file=sys.stderr)

    if args.command == "db" and args.db_command == "upgrade":
        upgrade_database(settings.resolved_database_url)
        print("database is at the latest migration")
        return 0
    if args.command == "db":
        return _purge(settings)
    if args.command == "serve":
        return _serve(settings, args.host, args.port, args.workers or settings.workers)
    if args.command == "evidence":
        return _evidence(settings, args)
    if args.command == "maintenance":
        return _maintenance(settings, args.every)
    if args.command == "export":
        try:
            _check_forces(settings, [args.force] if args.force else [])
        except ValueError as error:
            print(f"intake: {error}", file=sys.stderr)
            return 2
        return _export(settings, args)
    if args.command == "retention":
        return _retention(settings, args)
    if args.command == "clusters":
        return _rebuild_clusters(settings)

    engine = create_database_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        if args.keys_command == "create":
            try:
                if args.origins and not args.publishable:
                    raise ValueError("--origin is for publishable keys: add --publishable")
                _check_forces(settings, args.forces or [])
                key, plaintext = create_api_key(
                    session,
                    args.role,
                    args.name,
                    can_view_child_evidence=args.child_evidence,
                    can_share_without_consent=args.share_without_consent,
                    forces=args.forces,
                    origins=(args.origins or []) if args.publishable else None,
                )
            except ValueError as error:
                print(f"intake: {error}", file=sys.stderr)
                return 2
            extra = " It may view evidence of under-18 cases." if key.can_view_child_evidence else ""
            if key.can_share_without_consent:
                extra += " Its STIX exports include cases whose victims did not agree to sharing."
            if key.forces:
                extra += f" It sees only cases of: {', '.join(key.forces)}."
            if key.publishable:
                extra += f" Publishable, for pages at: {', '.join(key.origins or [])}."
            print(f"Created {key.role} key {key.id} for {key.name!r}.{extra} Store it now: it is not shown again.")
            print(plaintext)
            return 0
        if args.keys_command == "revoke":
            # Accept the whole key too (it is what an operator holds), but never echo it: only its id.
            key_id = key_id_of(args.key_id)
            if revoke_api_key(session, key_id):
                print(f"revoked key {key_id}")
                return 0
            print(f"no active key with id {key_id}", file=sys.stderr)
            return 1
        for key in list_api_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            kind = "publishable " + ",".join(key.origins or []) if key.publishable else "secret"
            allowed = [
                name
                for name, granted in (
                    ("child-evidence", key.can_view_child_evidence),
                    ("share-without-consent", key.can_share_without_consent),
                )
                if granted
            ]
            permissions = ",".join(allowed) or "-"
            print(f"{key.id}\t{key.role}\t{kind}\t{state}\t{permissions}\t{key.name}")
        return 0


def _retention(settings: Settings, args: argparse.Namespace) -> int:
    from service.app import object_store
    from service.storage.models import utc_now
    from service.storage.retention import erase_case, expired_cases

    engine = create_database_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        expired = expired_cases(session, closed_before=utc_now() - settings.retention_period)
        for case in expired:
            print(f"{case.reference}\tclosed {case.closed_at:%Y-%m-%d}\t{case.evidence} evidence file(s)")
        print(f"{len(expired)} closed case(s) past the retention period of {settings.retention_period.days} days")
        if args.retention_command == "review":
            return 0
        if not args.yes:
            print("nothing erased: add --yes to erase them", file=sys.stderr)
            return 1
        store = object_store(settings, engine)
        for case in expired:
            erase_case(
                session, store, case, actor="cli:retention", max_image_distance=settings.image_match_max_distance
            )
        print(f"erased {len(expired)} case(s) and their evidence")
    return 0


def _maintenance(settings: Settings, every: str | None) -> int:
    import time
    from datetime import timedelta

    from pydantic import TypeAdapter, ValidationError

    from service.app import configure_logging, object_store
    from service.maintenance import run_maintenance

    try:
        interval = TypeAdapter(timedelta).validate_python(every) if every else None
    except ValidationError:
        print(f"intake: --every {every!r} is not a duration; for example PT1H or 3600", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    engine = create_database_engine(settings.resolved_database_url)
    store = object_store(settings, engine)
    while True:
        report = run_maintenance(settings, engine, store)
        if report is None:
            print("another replica is running maintenance now; skipped")
        else:
            print(f"idempotency records purged: {report.idempotency_records_purged}")
            print(f"orphan objects removed: {report.orphan_objects_removed}")
            print(f"expired uploads removed: {report.expired_uploads_removed}")
            print(f"evidence rows missing objects: {report.evidence_rows_missing_objects}")
            print(f"closed cases past retention: {report.closed_cases_past_retention}")
        if interval is None:
            return 1 if report and report.evidence_rows_missing_objects else 0
        time.sleep(interval.total_seconds())


def _export(settings: Settings, args: argparse.Namespace) -> int:
    import os
    from datetime import UTC, datetime

    from tqdm import tqdm

    from service.exporting import ExportRequest, export_cases
    from service.storage.search import CaseFilters, count_cases

    def moment(text: str | None) -> datetime | None:
        if text is None:
            return None
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    filters = CaseFilters(
        since=moment(args.since),
        until=moment(args.until),
        priority=args.priority,
        flag=args.flag,
        force=args.force,
        status=args.status,
        identifier=args.identifier,
    )
    engine = create_database_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        total = count_cases(session, filters)
    if args.share_without_consent and args.format != "stix":
        print("intake: --share-without-consent is for --format stix", file=sys.stderr)
        return 2
    asked = ExportRequest(
        filters,
        args.format,
        args.version,
        actor="cli:export",
        share_without_consent=args.share_without_consent,
        noted={"output": os.path.basename(args.output)},
    )
    # Owner-only: an export holds victims' personal data.
    descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = 0
    with (
        os.fdopen(descriptor, "wb") as output,
        tqdm(total=total, unit="case", desc="exporting", file=sys.stderr) as progress,
    ):

        def counted(cases: int) -> None:
            nonlocal written
            written += cases
            progress.update(cases)

        for part in export_cases(engine, settings, asked, on_cases=counted):
            output.write(part)
    print(f"wrote {written} case(s) to {args.output}")
    return 0


def _rebuild_clusters(settings: Settings) -> int:
    from service.storage.audit import record_audit_event
    from service.storage.clusters import rebuild_clusters
    from service.storage.models import utc_now

    engine = create_database_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        linked = rebuild_clusters(session, now=utc_now(), max_image_distance=settings.image_match_max_distance)
        record_audit_event(session, actor="cli", action="clusters.rebuild", detail={"clusters": linked})
        session.commit()
    engine.dispose()
    print(f"{linked} cluster(s) of two or more cases")
    return 0


def _purge(settings: Settings) -> int:
    from service.storage.idempotency import purge_expired
    from service.storage.models import utc_now

    engine = create_database_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        removed = purge_expired(session, utc_now() - settings.idempotency_retention)
    print(f"deleted {removed} idempotency record(s) older than {settings.idempotency_retention}")
    return 0


def _evidence(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.app import object_store
    from service.storage.evidence import sweep, total_evidence_bytes, verify_all
    from service.storage.models import utc_now

    engine = create_database_engine(settings.resolved_database_url)
    store = object_store(settings, engine)
    with session_scope(engine) as session:
        if args.evidence_command == "sweep":
            report = sweep(session, store, now=utc_now(), grace=settings.sweep_grace, remove=not args.dry_run)
            verb = "would remove" if args.dry_run else "removed"
            print(f"this deployment's objects only: under {store.prefix}")
            print(f"{verb} {len(report.orphan_objects)} object(s) with no evidence row")
            print(f"{verb} {report.expired_uploads} expired direct upload(s)")
            print(f"aborted {report.aborted_multipart} unfinished upload(s)")
            for evidence_id in report.missing_objects:
                print(f"MISSING: evidence {evidence_id} has a row but its object is gone", file=sys.stderr)
            return 1 if report.missing_objects else 0
        failures = 0
        with tqdm(
            total=total_evidence_bytes(session), unit="B", unit_scale=True, desc="verifying", file=sys.stderr
        ) as progress:
            for result in verify_all(session, store, progress.update):
                if not result.ok:
                    failures += 1
                    tqdm.write(f"MISMATCH: evidence {result.evidence_id} {result.detail}")
        print(f"{failures} problem(s) found" if failures else "every evidence object matches its intake SHA-256")
        return 1 if failures else 0


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    from service.metrics import serve_metrics_separately, share_metrics_between_workers

    share_metrics_between_workers()  # first: before anything loads the Prometheus client

    import uvicorn

    from service.app import configure_logging
    from service.deployment import DeploymentRefused, check_deployment
    from service.serving import uvicorn_limits

    configure_logging(settings.log_level)
    try:
        check_deployment(settings)  # here too, so a bad setting stops the start before any worker is made
    except DeploymentRefused as error:
        print(f"intake: refusing to start: {error}", file=sys.stderr)
        return 2
    upgrade_database(settings.resolved_database_url)  # once, before any worker starts
    if settings.metrics_bind:
        serve_metrics_separately(settings.metrics_bind)
    # Each worker builds its app from the same environment (service.app.app_from_environment).
    # Uvicorn's own access log prints paths and query strings, which can hold personal data;
    # the app logs each request itself, by route template. Forwarded headers are the app's to judge
    # (service.api.forwarded), only from the proxies named in INTAKE_TRUSTED_PROXIES.
    uvicorn.run(
        "service.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=False,
        log_config=None,
        # A worker answers the supervisor's health check only once its imports are done, which on a busy
        # machine takes longer than uvicorn's 5 s: it would be killed and restarted while starting.
        timeout_worker_healthcheck=30,
        **uvicorn_limits(settings),  # header size, header and body deadlines, keep-alive, concurrency
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

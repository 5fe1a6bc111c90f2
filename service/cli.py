"""The `intake` command: keys, migrations, and serving."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from service.settings import Settings
from service.storage.database import create_database_engine, session_scope
from service.storage.keys import ROLES, create_api_key, list_api_keys, revoke_api_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def upgrade_database(database_url: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="intake", description="Sextortion case intake service.")
    commands = parser.add_subparsers(dest="command", required=True)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="make a key; it is printed once, alone on the last line")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who the key is for, e.g. 'North Yorkshire website'")
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    keys.add_parser("list", help="list keys (never their secrets)")

    database = commands.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    database.add_parser("upgrade", help="apply all migrations")

    serve = commands.add_parser("serve", help="apply migrations and serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    args = parser.parse_args(argv)
    settings = Settings()

    if args.command == "db":
        upgrade_database(settings.resolved_database_url)
        print("database is at the latest migration")
        return 0
    if args.command == "serve":
        return _serve(settings, args.host, args.port)

    engine = create_database_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        if args.keys_command == "create":
            key, plaintext = create_api_key(session, args.role, args.name)
            print(f"Created {key.role} key {key.id} for {key.name!r}. Store it now: it is not shown again.")
            print(plaintext)
            return 0
        if args.keys_command == "revoke":
            if revoke_api_key(session, args.key_id):
                print(f"revoked key {args.key_id}")
                return 0
            print(f"no active key {args.key_id}", file=sys.stderr)
            return 1
        for key in list_api_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            print(f"{key.id}\t{key.role}\t{state}\t{key.name}")
        return 0


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from service.app import configure_logging, create_app

    configure_logging(settings.log_level)
    upgrade_database(settings.resolved_database_url)
    # Uvicorn's own access log prints paths and query strings, which can hold personal data;
    # the app logs each request itself, by route template.
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False, proxy_headers=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

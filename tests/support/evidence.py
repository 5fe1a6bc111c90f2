"""Evidence as the tests see it: uploads through the API, and what the store and the database hold."""

from __future__ import annotations

from tests.support.database import count_rows
from tests.support.http import bearer


def stored_keys(app) -> set[str]:
    """Every complete object in the app's evidence store."""
    return {item.key for item in app.state.objects.list_objects() if not item.key.startswith(".partial/")}


def evidence_rows(app, reference: str) -> int:
    in_case = 'case_id = (SELECT id FROM "case" WHERE reference = :reference)'
    return count_rows(app.state.engine, "evidence", in_case, reference=reference)


def upload(client, created: dict, *files: tuple[str, bytes, str], token: str | None = None, headers=None):
    """POST files to a case's evidence, as its reporter unless `token` says otherwise."""
    return client.post(
        f"/v1/cases/{created['reference']}/evidence",
        headers={**bearer(token or created["reporter_token"]), **(headers or {})},
        files=[("file", file) for file in files],
    )

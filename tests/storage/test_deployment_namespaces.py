"""Deployments sharing one evidence folder or bucket: each writes, lists and deletes only under its own
prefix (the deployment id its database keeps), so `intake evidence sweep` and retention in one never
touch another's objects. Objects written before prefixes keep working through the rows that name them.

Two deployments here: one on SQLite, one on PostgreSQL (as in the README's path from a trial to a
service), on one local folder, then on one S3 bucket over HTTP.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import sqlalchemy as sa

from service.storage.objects import ObjectOfAnotherDeployment, ObjectStore
from tests.support.apps import STORES, app_client, evidence_settings_for, fresh_database_url
from tests.support.cases import MINIMAL_CASE
from tests.support.cli import environment_for, run_intake
from tests.support.database import make_keys, query_scalar
from tests.support.evidence import upload
from tests.support.http import bearer
from tests.support.synthetic import png

pytestmark = pytest.mark.postgres


@pytest.fixture(params=STORES)
def deployments(request, tmp_path_factory) -> Iterator[list]:
    """Two running apps, SQLite and PostgreSQL, sharing one evidence folder or one bucket."""
    shared_folder = tmp_path_factory.mktemp("shared-evidence")
    first = evidence_settings_for(
        request.param,
        fresh_database_url("sqlite", request, tmp_path_factory),
        tmp_path_factory.mktemp("sqlite-deployment"),
        request,
        evidence_dir=shared_folder,
    )
    second = evidence_settings_for(
        request.param,
        fresh_database_url("postgres", request, tmp_path_factory),
        tmp_path_factory.mktemp("postgres-deployment"),
        request,
        evidence_dir=shared_folder,
        s3_bucket=first.s3_bucket,
    )
    with ExitStack() as stack:
        clients = [stack.enter_context(app_client(settings)) for settings in (first, second)]
        for client in clients:
            client.keys = make_keys(client.app.state.settings.resolved_database_url)
        yield clients


def report_with_evidence(client, shade: int) -> tuple[dict, str]:
    created = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(client.keys.submitter)).json()
    added = upload(client, created, ("photo.png", png(shade=shade), "image/png"))
    assert added.status_code == 201, added.text
    return created, added.json()["evidence"][0]["id"]


def object_key_of(client, evidence_id: str) -> str:
    return query_scalar(client.app.state.engine, "SELECT object_key FROM evidence WHERE id = :i", i=evidence_id)


def put_object(store: ObjectStore, key: str) -> str:
    writing = store.start_upload(key)
    writing.write(b"synthetic bytes nobody's row names")
    writing.complete()
    return key


def read_content(client, created: dict, evidence_id: str):
    path = f"/v1/cases/{created['reference']}/evidence/{evidence_id}/content"
    content = client.get(path, headers=bearer(client.keys.analyst))
    assert content.status_code == 200, content.text
    return content


def present(store: ObjectStore, key: str) -> bool:
    return store.size_of(key) is not None


def test_a_sweep_in_one_deployment_never_lists_or_deletes_anothers_objects(deployments):
    mine, theirs = deployments
    my_store, their_store = mine.app.state.objects, theirs.app.state.objects
    assert my_store.prefix != their_store.prefix  # each database made its own id

    my_report, their_report = report_with_evidence(mine, shade=10), report_with_evidence(theirs, shade=20)
    my_evidence, their_evidence = my_report[1], their_report[1]
    my_key, their_key = object_key_of(mine, my_evidence), object_key_of(theirs, their_evidence)
    assert my_key.startswith(f"{my_store.prefix}evidence/") and their_key.startswith(f"{their_store.prefix}evidence/")
    my_orphan = put_object(my_store, my_store.new_evidence_key())
    their_orphan = put_object(their_store, their_store.new_evidence_key())
    before_prefixes = put_object(my_store, f"evidence/{secrets.token_hex(16)}")  # whose? nobody can tell

    assert {item.key for item in my_store.list_objects()} == {my_key, my_orphan}
    mine_environment = environment_for(mine.app.state.settings)
    dry_run = run_intake("evidence", "sweep", "--dry-run", environment=mine_environment)
    assert dry_run.returncode == 0, dry_run.stderr
    assert "would remove 1 object(s) with no evidence row" in dry_run.stdout
    assert f"under {my_store.prefix}" in dry_run.stdout  # the operator is told which objects were looked at

    swept = run_intake("evidence", "sweep", environment=mine_environment)
    assert swept.returncode == 0, swept.stderr
    assert not present(my_store, my_orphan)
    assert all(present(my_store, key) for key in (my_key, their_key, their_orphan, before_prefixes))

    swept = run_intake("evidence", "sweep", environment=environment_for(theirs.app.state.settings))
    assert swept.returncode == 0, swept.stderr
    assert not present(their_store, their_orphan)
    assert all(present(their_store, key) for key in (my_key, their_key, before_prefixes))
    for client, (created, evidence_id), shade in ((mine, my_report, 10), (theirs, their_report, 20)):
        assert read_content(client, created, evidence_id).content == png(shade=shade)


def test_nothing_deletes_an_object_under_another_deployments_prefix(deployments):
    """Retention and sweep delete through the store, which refuses another deployment's keys whatever a
    row says (a database copied from another deployment names that deployment's objects)."""
    mine, theirs = deployments
    _, their_evidence = report_with_evidence(theirs, shade=30)
    their_key = object_key_of(theirs, their_evidence)
    with pytest.raises(ObjectOfAnotherDeployment):
        mine.app.state.objects.delete(their_key)
    assert present(theirs.app.state.objects, their_key)


def test_evidence_kept_before_prefixes_is_still_read_checked_and_erased(deployments):
    mine, _ = deployments
    store = mine.app.state.objects
    created, evidence_id = report_with_evidence(mine, shade=40)
    prefixed = object_key_of(mine, evidence_id)
    older = f"evidence/{secrets.token_hex(16)}"  # as this deployment wrote it before prefixes
    store.copy(prefixed, older, store.size_of(prefixed))
    with mine.app.state.engine.begin() as connection:
        connection.execute(sa.text("UPDATE evidence SET object_key = :k WHERE id = :i"), {"k": older, "i": evidence_id})
    store.delete(prefixed)

    assert read_content(mine, created, evidence_id).content == png(shade=40)
    swept = run_intake("evidence", "sweep", environment=environment_for(mine.app.state.settings))
    assert swept.returncode == 0 and "MISSING" not in swept.stderr  # looked up on its own, found
    assert present(store, older)
    store.delete(older)  # as retention erases it: the row names it, so it is this deployment's
    assert not present(store, older)

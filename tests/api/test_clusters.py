"""Offender networks: cases joined by shared identifiers or matching images, kept up to date at intake,
listed with their harm for an analyst's force scope, and alerted through the webhook outbox."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from devsupport.images import encoded, synthetic_picture
from devsupport.postgres import free_port
from service.app import create_app, object_store
from service.domain.clusters import money_sum
from service.settings import Settings
from service.storage.clusters import list_clusters, rebuild_clusters
from service.storage.database import session_scope
from service.storage.models import Case, Cluster, ClusterMember, WebhookDelivery, utc_now
from service.storage.retention import Expired, erase_case
from tests.support.apps import BACKENDS, app_client, fresh_database_url
from tests.support.cases import MINIMAL_CASE, unique_force, unique_mtcn
from tests.support.cli import run_intake
from tests.support.clusters import assert_stored_totals_are_a_count_from_scratch, counted_from_scratch
from tests.support.database import make_keys
from tests.support.http import bearer


def case_cluster(client, key: str, reference: str) -> dict:
    response = client.get(f"/v1/cases/{reference}/cluster", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


def upload_image(client, case: dict, image: bytes) -> None:
    response = client.post(
        f"/v1/cases/{case['reference']}/evidence",
        headers=bearer(case["reporter_token"]),
        files=[("file", ("bait.jpg", image, "image/jpeg"))],
    )
    assert response.status_code == 201, response.text


def test_identifiers_and_images_join_cases_into_one_cluster_with_its_harm_added_up(client, keys, new_case):
    mtcn = unique_mtcn()
    picture = synthetic_picture(random.SystemRandom().randrange(10**9))
    first = new_case(identifiers=[{"type": "mtcn", "value": mtcn}], payments=[{"amount": "100.00", "currency": "GBP"}])
    second = new_case(
        identifiers=[{"type": "mtcn", "value": mtcn}],
        payments=[{"amount": "50.50", "currency": "GBP"}, {"amount": "20", "currency": "USD"}],
    )
    third = new_case(victim={"age": 15})
    unrelated = new_case()
    upload_image(client, second, encoded(picture))
    upload_image(client, third, encoded(picture, quality=70))

    answer = case_cluster(client, keys.analyst, first["reference"])
    cluster = answer["cluster"]
    assert [case["reference"] for case in answer["cases"]] == [
        first["reference"],
        second["reference"],
        third["reference"],
    ]
    assert (cluster["cases"], cluster["hidden_cases"], cluster["victims"], cluster["child_victims"]) == (3, 0, 3, 1)
    assert cluster["money"] == {"GBP": "150.50", "USD": "20"}
    assert cluster["joining_identifiers"] == [{"type": "mtcn", "normalized": mtcn, "cases": 2}]
    assert cluster["image_links"] == 1
    assert cluster["first_seen"] <= cluster["last_seen"]
    kinds = {(link["case"], link["other_case"], link["kind"]) for link in answer["links"]}
    assert kinds == {
        (first["reference"], second["reference"], "identifier"),
        (second["reference"], third["reference"], "image"),
    }
    assert case_cluster(client, keys.analyst, third["reference"])["cluster"]["id"] == cluster["id"]
    alone = case_cluster(client, keys.analyst, unrelated["reference"])
    assert alone["cluster"]["cases"] == 1 and alone["cluster"]["id"] != cluster["id"] and alone["links"] == []


def test_a_case_that_bridges_two_clusters_merges_them_keeping_the_larger_ones_id(client, keys, new_case):
    left, right = unique_mtcn(), unique_mtcn()
    a = new_case(identifiers=[{"type": "mtcn", "value": left}])
    new_case(identifiers=[{"type": "mtcn", "value": left}])
    new_case(identifiers=[{"type": "mtcn", "value": left}])
    d = new_case(identifiers=[{"type": "mtcn", "value": right}])
    new_case(identifiers=[{"type": "mtcn", "value": right}])
    larger = case_cluster(client, keys.analyst, a["reference"])["cluster"]["id"]
    smaller = case_cluster(client, keys.analyst, d["reference"])["cluster"]["id"]
    assert larger != smaller
    bridge = new_case()
    client.post(
        f"/v1/cases/{bridge['reference']}/identifiers",
        headers=bearer(bridge["reporter_token"]),
        json=[{"type": "mtcn", "value": left}, {"type": "mtcn", "value": right}],
    )
    merged = case_cluster(client, keys.analyst, d["reference"])["cluster"]
    assert merged["id"] == larger and merged["cases"] == 6
    assert {item["normalized"] for item in merged["joining_identifiers"]} == {left, right}


def cluster_rows_of(app, reference: str) -> tuple[list[int], int]:
    """The case's member rows' clusters, and how many clusters have no member at all."""
    with session_scope(app.state.engine) as session:
        case_id = session.exec(sa.select(Case.id).where(Case.reference == reference)).scalar_one()
        clusters = list(session.exec(sa.select(ClusterMember.cluster_id).where(ClusterMember.case_id == case_id)))
        orphans = session.exec(
            sa.select(sa.func.count())
            .select_from(Cluster)
            .where(~sa.exists().where(ClusterMember.cluster_id == Cluster.id))
        ).scalar_one()
    return [row[0] for row in clusters], orphans


def test_a_case_linked_to_no_other_case_is_kept_with_no_cluster_rows_on_every_intake_path(client, keys, new_case):
    by_json = new_case(identifiers=[{"type": "mtcn", "value": unique_mtcn()}])  # PostgreSQL: the one statement
    with_a_file = client.post(  # a report with files: the explicit transaction, and its join
        "/v1/cases",
        headers=bearer(keys.submitter),
        data={"reporter.relationship": "self", "account": "Synthetic report with a screenshot"},
        files=[
            ("evidence", ("bait.jpg", encoded(synthetic_picture(random.SystemRandom().randrange(10**9))), "image/jpeg"))
        ],
    )
    assert with_a_file.status_code == 201, with_a_file.text
    later_identifier = new_case()
    added = client.post(  # an identifier no other case holds: a join that finds nothing
        f"/v1/cases/{later_identifier['reference']}/identifiers",
        headers=bearer(later_identifier["reporter_token"]),
        json={"type": "mtcn", "value": unique_mtcn()},
    )
    assert added.status_code == 201, added.text
    for case in (by_json, with_a_file.json(), later_identifier):
        assert cluster_rows_of(client.app, case["reference"]) == ([], 0)


def test_a_lone_cases_cluster_of_one_is_answered_as_before_and_keeps_its_id_when_the_case_is_linked(
    client, keys, new_case
):
    mtcn = unique_mtcn()
    lone = new_case(
        identifiers=[{"type": "mtcn", "value": mtcn}],
        victim={"age": 15},
        payments=[{"amount": "40", "currency": "GBP"}],
    )
    answer = case_cluster(client, keys.analyst, lone["reference"])
    cluster = answer["cluster"]
    assert isinstance(cluster["id"], int) and cluster["id"] > 0
    assert (cluster["cases"], cluster["hidden_cases"], cluster["victims"], cluster["child_victims"]) == (1, 0, 1, 1)
    assert cluster["money"] == {"GBP": "40"} and cluster["first_seen"] == cluster["last_seen"]
    assert cluster["joining_identifiers"] == [] and cluster["image_links"] == 0
    assert [case["reference"] for case in answer["cases"]] == [lone["reference"]] and answer["links"] == []
    assert cluster_rows_of(client.app, lone["reference"]) == ([cluster["id"]], 0)  # made by the first read
    assert case_cluster(client, keys.analyst, lone["reference"]) == answer
    listed = client.get("/v1/clusters", params={"limit": 200}, headers=bearer(keys.analyst)).json()["clusters"]
    assert cluster["id"] not in {c["id"] for c in listed}  # a cluster of one is never listed

    new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    joined = case_cluster(client, keys.analyst, lone["reference"])["cluster"]
    assert (joined["id"], joined["cases"], joined["victims"], joined["child_victims"]) == (cluster["id"], 2, 2, 1)
    assert cluster["id"] in {
        c["id"]
        for c in client.get("/v1/clusters", params={"limit": 200}, headers=bearer(keys.analyst)).json()["clusters"]
    }


def test_an_identifier_linking_two_lone_cases_makes_their_cluster_with_its_harm_added_up(client, keys, new_case):
    mtcn = unique_mtcn()
    first = new_case(identifiers=[{"type": "mtcn", "value": mtcn}], payments=[{"amount": "30", "currency": "GBP"}])
    second = new_case(victim={"age": 14}, payments=[{"amount": "12", "currency": "GBP"}])
    added = client.post(
        f"/v1/cases/{second['reference']}/identifiers",
        headers=bearer(second["reporter_token"]),
        json={"type": "mtcn", "value": mtcn},
    )
    assert added.status_code == 201, added.text
    (cluster_id,), orphans = cluster_rows_of(client.app, first["reference"])
    assert cluster_rows_of(client.app, second["reference"]) == ([cluster_id], 0) and orphans == 0
    cluster = case_cluster(client, keys.analyst, second["reference"])["cluster"]
    assert (cluster["id"], cluster["cases"], cluster["victims"], cluster["child_victims"]) == (cluster_id, 2, 2, 1)
    assert cluster["money"] == {"GBP": "42"}
    listed = client.get("/v1/clusters", params={"limit": 200}, headers=bearer(keys.analyst)).json()["clusters"]
    assert cluster_id in {c["id"] for c in listed}


def test_clusters_are_listed_most_harm_first_and_paged(client, keys, new_case):
    mtcn = unique_mtcn()
    for age in (14, 30):
        new_case(victim={"age": age}, identifiers=[{"type": "mtcn", "value": mtcn}])
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/clusters", params=params, headers=bearer(keys.analyst))
        assert page.status_code == 200, page.text
        seen += page.json()["clusters"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len({cluster["id"] for cluster in seen}) == len(seen)
    keys_in_order = [(-c["child_victims"], -c["victims"]) for c in seen]
    assert keys_in_order == sorted(keys_in_order)
    assert all(cluster["cases"] >= 2 for cluster in seen)
    assert any(cluster["joining_identifiers"] == [{"type": "mtcn", "normalized": mtcn, "cases": 2}] for cluster in seen)
    by_victims = client.get("/v1/clusters", params={"sort": "victims"}, headers=bearer(keys.analyst)).json()
    counts = [cluster["victims"] for cluster in by_victims["clusters"]]
    assert counts == sorted(counts, reverse=True)
    bad = client.get("/v1/clusters", params={"cursor": cursor or "bm9wZQ"}, headers=bearer(keys.analyst))
    assert bad.status_code == 422


def test_a_scoped_key_sees_its_own_forces_cases_and_only_a_count_of_the_rest(client, keys, new_case, scoped_key):
    mine, theirs, elsewhere = unique_force(), unique_force(), unique_force()
    mtcn = unique_mtcn()
    own = new_case(police_force=mine, identifiers=[{"type": "mtcn", "value": mtcn}])
    other = new_case(
        police_force=theirs,
        victim={"age": 12},
        identifiers=[{"type": "mtcn", "value": mtcn}],
        payments=[{"amount": "999", "currency": "EUR"}],
    )
    seen = case_cluster(client, scoped_key(mine), own["reference"])
    assert [case["reference"] for case in seen["cases"]] == [own["reference"]]
    cluster = seen["cluster"]
    assert (cluster["cases"], cluster["hidden_cases"], cluster["child_victims"]) == (1, 1, 0)
    assert cluster["forces"] == [mine] and cluster["money"] == {} and seen["links"] == []
    listed = client.get("/v1/clusters", params={"limit": 200}, headers=bearer(scoped_key(elsewhere))).json()
    assert cluster["id"] not in {c["id"] for c in listed["clusters"]}
    denied = client.get(f"/v1/cases/{other['reference']}/cluster", headers=bearer(scoped_key(mine)))
    assert denied.status_code == 404


def test_clusters_are_for_analysts_and_every_read_is_audited(client, keys, new_case):
    case = new_case()
    for token in (case["reporter_token"], keys.submitter, keys.admin):
        assert client.get("/v1/clusters", headers=bearer(token)).status_code == 403
        assert client.get(f"/v1/cases/{case['reference']}/cluster", headers=bearer(token)).status_code in (403, 404)
    client.get("/v1/clusters", headers={**bearer(keys.analyst), "X-Access-Reason": "network review"})
    case_cluster(client, keys.analyst, case["reference"])
    events = client.get("/v1/audit", params={"limit": 10}, headers=bearer(keys.admin)).json()["events"]
    actions = {event["action"] for event in events}
    assert {"clusters.list", "case.cluster"} <= actions
    assert any(e["action"] == "clusters.list" and e["reason"] == "network review" for e in events)


@pytest.fixture
def alerting(settings, tmp_path):
    """An app with the webhook on and a cluster alert from 3 victims; the outbox is read directly."""
    alerting = Settings(
        data_dir=tmp_path,
        database_url=settings.resolved_database_url,
        webhook_url=f"http://127.0.0.1:{free_port()}/hook",
        webhook_secret="synthetic-webhook-secret",
        webhook_poll_seconds=60,
        cluster_alert_min_victims=3,
    )
    with app_client(alerting, migrate=False) as client:
        yield client.app, client


def cluster_alerts(app, cluster_id: int) -> list[dict]:
    with session_scope(app.state.engine) as session:
        rows = session.exec(
            sa.select(WebhookDelivery).where(WebhookDelivery.event == "cluster.joined").order_by(WebhookDelivery.id)
        ).scalars()
        return [row.payload for row in rows if row.payload["cluster_id"] == cluster_id]


def test_joining_a_cluster_with_a_child_victim_or_enough_victims_queues_an_alert_without_personal_data(
    alerting, keys, client
):
    app, alerting_client = alerting

    def report(**fields) -> dict:
        sent = alerting_client.post("/v1/cases", json={**MINIMAL_CASE, **fields}, headers=bearer(keys.submitter))
        assert sent.status_code == 201, sent.text
        return sent.json()

    adults, children = unique_mtcn(), unique_mtcn()
    first = report(identifiers=[{"type": "mtcn", "value": adults}], reporter={"relationship": "self", "name": "Syn"})
    report(identifiers=[{"type": "mtcn", "value": adults}])
    adult_cluster = case_cluster(client, keys.analyst, first["reference"])["cluster"]["id"]
    assert cluster_alerts(app, adult_cluster) == []  # two adult victims: below the threshold of 3
    third = report(identifiers=[{"type": "mtcn", "value": adults}])
    (alert,) = cluster_alerts(app, adult_cluster)
    assert set(alert) == {"cluster_id", "joined_by", "victims", "child_victims", "forces", "created_at"}
    assert (alert["joined_by"], alert["victims"], alert["child_victims"]) == (third["reference"], 3, 0)
    assert "Syn" not in str(alert)

    child = report(victim={"age": 13}, identifiers=[{"type": "mtcn", "value": children}])
    joining = report(identifiers=[{"type": "mtcn", "value": children}])
    child_cluster = case_cluster(client, keys.analyst, child["reference"])["cluster"]["id"]
    (alert,) = cluster_alerts(app, child_cluster)
    assert (alert["joined_by"], alert["victims"], alert["child_victims"]) == (joining["reference"], 2, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clusters_kept_at_intake_are_the_components_a_rebuild_finds(backend, request, tmp_path_factory, tmp_path):
    url = fresh_database_url(backend, request, tmp_path_factory)
    app = create_app(
        Settings(
            data_dir=tmp_path, database_url=url, rate_case_creation_per_key="off", rate_case_creation_per_address="off"
        )
    )
    own_keys = make_keys(url)
    rng = random.Random(7)
    pool = [unique_mtcn() for _ in range(12)]
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(30):
            chosen = rng.sample(pool, rng.choice([0, 1, 1, 2]))
            sent = client.post(
                "/v1/cases",
                json={**MINIMAL_CASE, "identifiers": [{"type": "mtcn", "value": value} for value in chosen]},
                headers=bearer(own_keys.submitter),
            )
            assert sent.status_code == 201, sent.text
            if rng.random() < 0.3:
                client.post(
                    f"/v1/cases/{sent.json()['reference']}/identifiers",
                    headers=bearer(sent.json()["reporter_token"]),
                    json={"type": "mtcn", "value": rng.choice(pool)},
                )

    def partition() -> set[frozenset[int]]:
        with session_scope(app.state.engine) as session:
            groups: dict[int, set[int]] = {}
            for member in session.exec(sa.select(ClusterMember)).scalars():
                groups.setdefault(member.cluster_id, set()).add(member.case_id)
            return {frozenset(group) for group in groups.values()}

    incremental = partition()
    with session_scope(app.state.engine) as session:
        rebuild_clusters(session, now=utc_now(), max_image_distance=31)
        session.commit()
    assert partition() == incremental
    assert any(len(group) > 2 for group in incremental)
    app.state.engine.dispose()


def test_intake_clusters_rebuild_puts_cases_from_before_clusters_into_theirs(tmp_path):
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    app = create_app(Settings(data_dir=tmp_path, database_url=url))
    run_intake("db", "upgrade", database_url=url)
    own_keys = make_keys(url)
    mtcn = unique_mtcn()
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(3):
            sent = client.post(
                "/v1/cases",
                json={**MINIMAL_CASE, "identifiers": [{"type": "mtcn", "value": mtcn}]},
                headers=bearer(own_keys.submitter),
            )
            assert sent.status_code == 201
        with app.state.engine.begin() as connection:  # as a database upgraded from before clusters has it
            connection.execute(sa.text("DELETE FROM cluster_member"))
            connection.execute(sa.text("DELETE FROM cluster"))
        assert client.get("/v1/clusters", headers=bearer(own_keys.analyst)).json()["clusters"] == []
        rebuilt = run_intake("clusters", "rebuild", database_url=url)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "1 cluster(s)" in rebuilt.stdout
        (cluster,) = client.get("/v1/clusters", headers=bearer(own_keys.analyst)).json()["clusters"]
        assert cluster["victims"] == 3
    app.state.engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_stored_cluster_totals_equal_a_count_from_scratch_after_joins_merges_corrections_and_erasure(
    backend, request, tmp_path_factory, tmp_path
):
    url = fresh_database_url(backend, request, tmp_path_factory)
    settings = Settings(
        data_dir=tmp_path, database_url=url, rate_case_creation_per_key="off", rate_case_creation_per_address="off"
    )
    own_keys = make_keys(url)
    rng = random.Random(14)
    pool = [unique_mtcn() for _ in range(16)]
    with app_client(settings, migrate=False) as client:
        app = client.app
        cases: list[dict] = []
        for _ in range(36):
            chosen = rng.sample(pool, rng.choice([0, 1, 1, 2]))
            payments = [{"amount": str(rng.randrange(1, 900)), "currency": rng.choice(["GBP", "USD"])}] * rng.randint(
                0, 2
            )
            force = rng.choice(["north-yorkshire", "west-yorkshire", "cleveland", None])
            sent = client.post(
                "/v1/cases",
                json={
                    **MINIMAL_CASE,
                    "identifiers": [{"type": "mtcn", "value": value} for value in chosen],
                    "victim": {"age": rng.choice([13, 16, 25, 40])},
                    "payments": payments,
                    **({"police_force": force} if force else {}),
                },
                headers=bearer(own_keys.submitter),
            )
            assert sent.status_code == 201, sent.text
            cases.append(sent.json())
            if rng.random() < 0.3:  # a later identifier: may merge two clusters
                client.post(
                    f"/v1/cases/{rng.choice(cases)['reference']}/identifiers",
                    headers=bearer(rng.choice(cases)["reporter_token"]),
                    json={"type": "mtcn", "value": rng.choice(pool)},
                )
        assert_stored_totals_are_a_count_from_scratch(app.state.engine)

        def correct(**body) -> int:
            made = client.post("/v1/link-corrections", headers=bearer(own_keys.analyst), json={"reason": "x", **body})
            assert made.status_code in (201, 409), made.text
            return made.json().get("id", 0)

        made = []
        for _ in range(10):
            first, second = (case["reference"] for case in rng.sample(cases, 2))
            kind = rng.choice(["false_link", "manual_link", "duplicate"])
            made.append(correct(kind=kind, case=first, other_case=second))
            assert_stored_totals_are_a_count_from_scratch(app.state.engine)
        made.append(correct(kind="identifier_not_linking", identifier=pool[0]))
        assert_stored_totals_are_a_count_from_scratch(app.state.engine)
        for correction in rng.sample([number for number in made if number], 4):
            revoked = client.post(
                f"/v1/link-corrections/{correction}/revoke", headers=bearer(own_keys.analyst), json={"reason": "y"}
            )
            assert revoked.status_code == 200, revoked.text
            assert_stored_totals_are_a_count_from_scratch(app.state.engine)

        with session_scope(app.state.engine) as session:  # a closed case erased after its retention period
            largest = max(counted_from_scratch(session)[0].items(), key=lambda item: (item[1].cases, item[0]))[0]
            member = (
                session.exec(sa.select(ClusterMember.case_id).where(ClusterMember.cluster_id == largest))
                .scalars()
                .first()
            )
            erase_case(
                session,
                object_store(settings, app.state.engine),
                Expired(member, "ERASED", utc_now(), 0),
                actor="test",
                max_image_distance=31,
            )
        assert_stored_totals_are_a_count_from_scratch(app.state.engine)

        # What each key is shown is the stored totals: the same as counting the cases it may see.
        for forces in (None, ("cleveland",), ("cleveland", "west-yorkshire")):
            with session_scope(app.state.engine) as session:
                listed = list_clusters(session, forces=forces, sort="harm", offset=0, limit=500)
                members = session.exec(sa.select(ClusterMember)).scalars().all()
            assert listed, forces
            for view in listed:
                mine = [m for m in members if m.cluster_id == view.cluster_id]
                seen = [m for m in mine if forces is None or m.police_force in forces]
                counted = [m for m in seen if not m.duplicate]
                assert (view.cases, view.hidden_cases) == (len(seen), len(mine) - len(seen))
                assert view.victims == len(counted)
                assert view.child_victims == sum(m.child_victim for m in counted)
                assert view.forces == sorted({m.police_force for m in seen if m.police_force})
                assert view.money == money_sum(*(m.money for m in counted))
                assert view.last_seen == max(m.reported_at for m in seen)
            order = [(-view.child_victims, -view.victims, -view.last_seen.timestamp()) for view in listed]
            assert order == sorted(order)


def test_when_a_correction_splits_a_cluster_the_larger_part_keeps_its_id(client, keys, new_case):
    shared, bridge = unique_mtcn(), unique_mtcn()
    larger = [new_case(identifiers=[{"type": "mtcn", "value": shared}]) for _ in range(3)]
    smaller = new_case(identifiers=[{"type": "mtcn", "value": bridge}])
    client.post(
        f"/v1/cases/{larger[2]['reference']}/identifiers",
        headers=bearer(larger[2]["reporter_token"]),
        json={"type": "mtcn", "value": bridge},
    )
    before = case_cluster(client, keys.analyst, smaller["reference"])["cluster"]
    assert before["cases"] == 4
    split = client.post(
        "/v1/link-corrections",
        headers=bearer(keys.analyst),
        json={"kind": "false_link", "case": larger[2]["reference"], "other_case": smaller["reference"], "reason": "x"},
    )
    assert split.status_code == 201, split.text
    kept = case_cluster(client, keys.analyst, larger[0]["reference"])["cluster"]
    alone = case_cluster(client, keys.analyst, smaller["reference"])["cluster"]
    assert (kept["id"], kept["cases"]) == (before["id"], 3)
    assert alone["id"] != before["id"] and alone["cases"] == 1


def test_a_cursor_one_list_gave_out_is_refused_by_the_others(client, keys, new_case):
    for mtcn in (unique_mtcn(), unique_mtcn()):  # two clusters: a second page of one
        for _ in range(2):
            new_case(identifiers=[{"type": "mtcn", "value": mtcn}])
    lists = {"/v1/clusters": keys.analyst, "/v1/cases": keys.analyst, "/v1/audit": keys.admin}
    cursors = {}
    for path, key in lists.items():
        page = client.get(path, params={"limit": 1}, headers=bearer(key))
        assert page.status_code == 200, page.text
        cursors[path] = page.json()["next_cursor"]
        assert cursors[path] is not None
    for path, key in lists.items():
        for other, cursor in cursors.items():
            answer = client.get(path, params={"limit": 1, "cursor": cursor}, headers=bearer(key))
            if other == path:
                assert answer.status_code == 200, answer.text
            else:
                assert answer.status_code == 422, (path, other, answer.text)
                assert answer.json()["errors"][0]["field"] == "cursor"
    other_order = {"sort": "victims", "cursor": cursors["/v1/clusters"]}
    assert client.get("/v1/clusters", params=other_order, headers=bearer(keys.analyst)).status_code == 422

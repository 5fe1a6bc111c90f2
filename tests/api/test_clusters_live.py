"""Clusters kept by two `intake serve` processes on one database at once (both databases): cases that
join and merge the same clusters concurrently leave each cluster's stored totals equal to a count of
its members, and the clusters equal the connected components of the links, found from scratch."""

from __future__ import annotations

import random
import threading

import httpx
import sqlalchemy as sa

from service.domain.clusters import connected_components
from service.storage.database import create_database_engine, session_scope
from service.storage.models import ClusterMember, Identifier
from tests.support.apps import running_service
from tests.support.cases import MINIMAL_CASE, unique_mtcn
from tests.support.clusters import assert_stored_totals_are_a_count_from_scratch
from tests.support.http import bearer

SENDERS = 8
CASES_PER_SENDER = 8


def test_cases_joining_and_merging_the_same_clusters_through_two_processes_at_once_keep_true_totals(
    database_url, tmp_path
):
    pool = [unique_mtcn() for _ in range(6)]  # few identifiers, many cases: most join or merge a cluster
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_service(database_url, tmp_path / "a") as (first, keys),
        running_service(database_url, tmp_path / "b") as (second, _),
    ):
        start = threading.Barrier(SENDERS)
        statuses: list[int | str] = []

        def send(number: int) -> None:
            rng = random.Random(number)
            base = (first, second)[number % 2]
            with httpx.Client(base_url=base, timeout=60) as client:
                start.wait(30)
                for _ in range(CASES_PER_SENDER):
                    chosen = rng.sample(pool, rng.choice([1, 1, 2]))
                    try:
                        sent = send_one(client, chosen, rng)
                    except httpx.TransportError as error:  # kept as an outcome, so the failure says what happened
                        statuses.append(type(error).__name__)
                    else:
                        statuses.append(sent.status_code)

        def send_one(client: httpx.Client, chosen: list[str], rng: random.Random) -> httpx.Response:
            return client.post(
                "/v1/cases",
                json={
                    **MINIMAL_CASE,
                    "identifiers": [{"type": "mtcn", "value": value} for value in chosen],
                    "victim": {"age": rng.choice([14, 30])},
                    "payments": [{"amount": str(rng.randrange(1, 500)), "currency": "GBP"}],
                    "police_force": rng.choice(["cleveland", "north-yorkshire"]),
                },
                headers=bearer(keys.submitter),
            )

        senders = [threading.Thread(target=send, args=(number,)) for number in range(SENDERS)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(120)

    logs = {name: (tmp_path / name / "server.log").read_text(errors="replace") for name in ("a", "b")}
    troubles = "\n".join(f"--- server {name}:\n{_troubles(log)}" for name, log in logs.items())
    assert statuses == [201] * SENDERS * CASES_PER_SENDER, troubles
    assert "Traceback" not in troubles, troubles
    engine = create_database_engine(database_url)
    try:
        assert_stored_totals_are_a_count_from_scratch(engine)
        with session_scope(engine) as session:
            ours = set(
                session.exec(sa.select(Identifier.case_id).where(Identifier.normalized.in_(pool)).distinct()).scalars()
            )
            holders: dict[str, set[int]] = {}
            for case_id, normalized in session.exec(
                sa.select(Identifier.case_id, Identifier.normalized).where(Identifier.case_id.in_(ours))
            ).all():
                holders.setdefault(normalized, set()).add(case_id)
            edges = [(min(cases), case) for cases in holders.values() for case in cases]
            expected = {frozenset(component) for component in connected_components(ours, edges)}
            clusters: dict[int, set[int]] = {}
            for case_id, cluster_id in session.exec(
                sa.select(ClusterMember.case_id, ClusterMember.cluster_id).where(ClusterMember.case_id.in_(ours))
            ).all():
                clusters.setdefault(cluster_id, set()).add(case_id)
            assert len(ours) == SENDERS * CASES_PER_SENDER
        assert {frozenset(cases) for cases in clusters.values()} == expected
    finally:
        engine.dispose()


def _troubles(log: str) -> str:
    """A server log's tracebacks and the requests it answered with a 5xx, for the failure message."""
    lines = log.splitlines()
    kept = [line for line in lines if '"status": 5' in line or "Error" in line or "Traceback" in line]
    starts = [number for number, line in enumerate(lines) if line.startswith("Traceback")]
    tracebacks = ["\n".join(lines[start : start + 60]) for start in starts[:3]]
    return "\n".join([*kept[:40], *tracebacks]) or "(nothing)"

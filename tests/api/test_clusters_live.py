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
from service.storage.models import Cluster, ClusterMember, Identifier
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

    troubles = _servers_troubles(tmp_path)
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
            components = connected_components(ours, edges)  # a case linked to none is in no cluster
            expected = {frozenset(component) for component in components if len(component) >= 2}
            clusters: dict[int, set[int]] = {}
            for case_id, cluster_id in session.exec(
                sa.select(ClusterMember.case_id, ClusterMember.cluster_id).where(ClusterMember.case_id.in_(ours))
            ).all():
                clusters.setdefault(cluster_id, set()).add(case_id)
            assert len(ours) == SENDERS * CASES_PER_SENDER
        assert {frozenset(cases) for cases in clusters.values()} == expected
    finally:
        engine.dispose()


LONE_CASES = 6
LINKERS = 6  # reports linking one lone case at once, half through each process
READERS = 4  # reads of its cluster at the same moment, half through each process


def test_reports_and_reads_meeting_on_one_lone_case_through_two_processes_end_in_one_cluster(database_url, tmp_path):
    """A case linked to no other case has no cluster rows (service.storage.clusters): reports that link
    it at once wait on its case row, and reads of its cluster make its cluster of one once. The even lone
    cases are read before any link, the odd ones while reports link them."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_service(database_url, tmp_path / "a") as (first, keys),
        running_service(database_url, tmp_path / "b") as (second, _),
    ):
        meeting = _Meeting((first, second), keys)
        lone = [meeting.lone_case() for _ in range(LONE_CASES)]
        for number, (reference, mtcn) in enumerate(lone):
            reads = [(meeting.read, reference)] * READERS
            links = [(meeting.link, mtcn)] * LINKERS
            if number % 2 == 0:
                meeting.at_once(reads)
                meeting.at_once(links)
            else:
                meeting.at_once(reads + links)

    troubles = _servers_troubles(tmp_path)
    expected = sorted([200] * LONE_CASES * READERS + [201] * LONE_CASES * LINKERS)
    assert sorted(meeting.outcomes, key=str) == expected, troubles
    engine = create_database_engine(database_url)
    try:
        assert_stored_totals_are_a_count_from_scratch(engine)
        with session_scope(engine) as session:
            for reference, mtcn in lone:
                cluster_id = _one_cluster_of_every_holder(session, mtcn)
                assert meeting.read_ids[reference] == {cluster_id}  # every read answered the id it kept
    finally:
        engine.dispose()


class _Meeting:
    """Requests sent at one moment through both processes, their outcomes kept."""

    def __init__(self, bases: tuple[str, str], keys) -> None:
        self.bases, self.keys = bases, keys
        self.outcomes: list[int | str] = []
        self.read_ids: dict[str, set[int]] = {}

    def lone_case(self) -> tuple[str, str]:
        mtcn = unique_mtcn()
        with httpx.Client(base_url=self.bases[0], timeout=60) as client:
            sent = client.post(
                "/v1/cases",
                json={**MINIMAL_CASE, "identifiers": [{"type": "mtcn", "value": mtcn}], "victim": {"age": 15}},
                headers=bearer(self.keys.submitter),
            )
        assert sent.status_code == 201, sent.text
        return sent.json()["reference"], mtcn

    def at_once(self, requests: list) -> None:
        start = threading.Barrier(len(requests))

        def run(number: int, send, argument) -> None:
            with httpx.Client(base_url=self.bases[number % 2], timeout=60) as client:
                start.wait(30)
                try:
                    send(client, argument)
                except httpx.TransportError as error:  # kept as an outcome, so the failure says what happened
                    self.outcomes.append(type(error).__name__)

        threads = [threading.Thread(target=run, args=(n, *request)) for n, request in enumerate(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    def link(self, client: httpx.Client, mtcn: str) -> None:
        sent = client.post(
            "/v1/cases",
            json={
                **MINIMAL_CASE,
                "identifiers": [{"type": "mtcn", "value": mtcn}],
                "payments": [{"amount": "10", "currency": "GBP"}],
            },
            headers=bearer(self.keys.submitter),
        )
        self.outcomes.append(sent.status_code)

    def read(self, client: httpx.Client, reference: str) -> None:
        answer = client.get(f"/v1/cases/{reference}/cluster", headers=bearer(self.keys.analyst))
        self.outcomes.append(answer.status_code)
        if answer.status_code == 200:
            self.read_ids.setdefault(reference, set()).add(answer.json()["cluster"]["id"])


def _one_cluster_of_every_holder(session, mtcn: str) -> int:
    """The one cluster every case holding the identifier is in, its totals checked."""
    holders = set(session.exec(sa.select(Identifier.case_id).where(Identifier.normalized == mtcn)).scalars())
    assert len(holders) == 1 + LINKERS
    ((cluster_id, members),) = session.exec(
        sa.select(ClusterMember.cluster_id, sa.func.count())
        .where(ClusterMember.case_id.in_(holders))
        .group_by(ClusterMember.cluster_id)
    ).all()
    assert members == 1 + LINKERS
    totals = session.exec(
        sa.select(Cluster.size, Cluster.victims, Cluster.child_victims, Cluster.money).where(Cluster.id == cluster_id)
    ).one()
    assert tuple(totals) == (1 + LINKERS, 1 + LINKERS, 1, {"GBP": str(10 * LINKERS)})
    return cluster_id


def _servers_troubles(tmp_path) -> str:
    """Both servers' troubles (their logs are in tmp_path/a and tmp_path/b), for a failure message."""
    logs = {name: (tmp_path / name / "server.log").read_text(errors="replace") for name in ("a", "b")}
    return "\n".join(f"--- server {name}:\n{_troubles(log)}" for name, log in logs.items())


def _troubles(log: str) -> str:
    """A server log's tracebacks and the requests it answered with a 5xx, for the failure message."""
    lines = log.splitlines()
    kept = [line for line in lines if '"status": 5' in line or "Error" in line or "Traceback" in line]
    starts = [number for number, line in enumerate(lines) if line.startswith("Traceback")]
    tracebacks = ["\n".join(lines[start : start + 60]) for start in starts[:3]]
    return "\n".join([*kept[:40], *tracebacks]) or "(nothing)"

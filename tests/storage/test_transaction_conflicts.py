"""Two transactions that deadlock on PostgreSQL: the one PostgreSQL ends is run again, so a good report
is never a 500 because another report locked the same rows in the other order."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from service.storage.database import AsyncDatabase, retrying_on_conflict, write_transaction


@pytest.fixture
def database(postgres_server):
    url = postgres_server.create_database(f"conflicts_{uuid.uuid4().hex[:12]}")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE tally (id int PRIMARY KEY, n int NOT NULL)"))
        connection.execute(sa.text("INSERT INTO tally VALUES (1, 0), (2, 0)"))
    engine.dispose()
    return url


async def _both_orders(url: str, runner) -> tuple[list, int, list]:
    """Two transactions, each adding one to both rows in the opposite order: the first time, each waits
    until the other holds its first row, which makes a real deadlock."""
    database = AsyncDatabase(url)
    both_hold_one = asyncio.Barrier(2)
    attempts = {"count": 0}

    def add(first: int, second: int):
        async def work(connection):
            attempts["count"] += 1
            async with write_transaction(connection):
                await connection.execute(sa.text("UPDATE tally SET n = n + 1 WHERE id = :id"), {"id": first})
                if attempts["count"] <= 2:
                    await both_hold_one.wait()
                await connection.execute(sa.text("UPDATE tally SET n = n + 1 WHERE id = :id"), {"id": second})
            return first

        return work

    try:
        outcomes = await asyncio.gather(
            runner(database, add(1, 2)), runner(database, add(2, 1)), return_exceptions=True
        )
        async with database.engine.connect() as connection:
            tallies = (await connection.execute(sa.text("SELECT n FROM tally ORDER BY id"))).scalars().all()
    finally:
        await database.stop_serving()
    return outcomes, attempts["count"], tallies


def test_the_transaction_postgresql_ends_in_a_deadlock_runs_again_and_both_are_kept(database):
    outcomes, attempts, tallies = asyncio.run(_both_orders(database, retrying_on_conflict))
    assert sorted(outcomes) == [1, 2]
    assert attempts == 3  # each once, and the one PostgreSQL chose to end once more
    assert tallies == [2, 2]


def test_without_running_it_again_the_deadlock_loser_fails(database):
    async def once(database, work):
        async with database.engine.connect() as connection:
            return await work(connection)

    outcomes, attempts, tallies = asyncio.run(_both_orders(database, once))
    assert attempts == 2
    assert sorted(str(type(outcome).__name__) for outcome in outcomes if isinstance(outcome, Exception)) == [
        "DBAPIError"
    ]
    assert tallies == [1, 1]

"""Two transactions that deadlock on PostgreSQL: the one PostgreSQL ends is run again, so a good report
is never a 500 because another report locked the same rows in the other order."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from service.storage.database import (
    AsyncDatabase,
    DatabaseBusy,
    is_transaction_conflict,
    retrying_on_conflict,
    write_transaction,
)
from tests.support.conflicts import a_real_deadlock_error, both_orders, tally_database


@pytest.fixture
def database(postgres_server):
    return tally_database(postgres_server)


def test_the_transaction_postgresql_ends_in_a_deadlock_runs_again_and_both_are_kept(database):
    outcomes, attempts, tallies = asyncio.run(both_orders(database, retrying_on_conflict))
    assert sorted(outcomes) == [1, 2]
    assert attempts == 3  # each once, and the one PostgreSQL chose to end once more
    assert tallies == [2, 2]


def test_without_running_it_again_the_deadlock_loser_fails(database):
    async def once(database, work):
        async with database.engine.connect() as connection:
            return await work(connection)

    outcomes, attempts, tallies = asyncio.run(both_orders(database, once))
    assert attempts == 2
    assert sorted(str(type(outcome).__name__) for outcome in outcomes if isinstance(outcome, Exception)) == [
        "DBAPIError"
    ]
    assert tallies == [1, 1]


def test_a_transaction_ended_every_time_it_runs_is_database_busy_not_a_driver_error(database):
    deadlock = a_real_deadlock_error(database)
    assert is_transaction_conflict(deadlock)
    attempts = {"count": 0}

    async def always_ended(connection):
        attempts["count"] += 1
        async with write_transaction(connection):
            await connection.execute(sa.text("UPDATE tally SET n = n + 100 WHERE id = 1"))
            raise deadlock

    async def run() -> list[int]:
        async_database = AsyncDatabase(database)
        try:
            with pytest.raises(DatabaseBusy) as raised:
                await retrying_on_conflict(async_database, always_ended)
            assert raised.value.__cause__ is deadlock
            async with async_database.engine.connect() as connection:
                return (await connection.execute(sa.text("SELECT n FROM tally ORDER BY id"))).scalars().all()
        finally:
            await async_database.stop_serving()

    tallies = asyncio.run(run())
    assert attempts["count"] == 3
    assert tallies == [1, 1]  # the deadlock's winner's one, and nothing of the three ended attempts


def test_an_error_that_is_not_a_conflict_is_not_run_again(database):
    attempts = {"count": 0}

    async def broken(connection):
        attempts["count"] += 1
        await connection.execute(sa.text("SELECT no_such_column FROM tally"))

    async def run() -> None:
        async_database = AsyncDatabase(database)
        try:
            with pytest.raises(sa.exc.DBAPIError) as raised:
                await retrying_on_conflict(async_database, broken)
            assert not is_transaction_conflict(raised.value)
        finally:
            await async_database.stop_serving()

    asyncio.run(run())
    assert attempts["count"] == 1

"""Real transaction conflicts on PostgreSQL, for the tests of what follows one."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from devsupport.postgres import PostgresServer
from service.storage.database import AsyncDatabase, write_transaction


def tally_database(server: PostgresServer) -> str:
    """A new database with a table of two rows that two transactions can lock in opposite orders."""
    url = server.create_database(f"conflicts_{uuid.uuid4().hex[:12]}")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE tally (id int PRIMARY KEY, n int NOT NULL)"))
        connection.execute(sa.text("INSERT INTO tally VALUES (1, 0), (2, 0)"))
    engine.dispose()
    return url


async def both_orders(url: str, runner) -> tuple[list, int, list]:
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


def a_real_deadlock_error(url: str) -> Exception:
    """What the async driver raises, through SQLAlchemy, in the transaction PostgreSQL ends to settle a
    deadlock (the database at `url` needs the table `tally` with rows 1 and 2)."""

    async def once(database, work):
        async with database.engine.connect() as connection:
            return await work(connection)

    outcomes, _, _ = asyncio.run(both_orders(url, once))
    return next(outcome for outcome in outcomes if isinstance(outcome, Exception))

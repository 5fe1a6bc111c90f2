"""Engines and sessions. One engine per app; one session per request, closed when it ends.

Two engines reach the same database: a blocking one for the routes that run in worker threads, and an
asyncio one for the hot path (reporting a case, identifying the caller), which runs on the event loop.
The asyncio one never pings a connection before lending it (a round trip per request): a connection
found dead is thrown away and the work retried on a fresh one (see `retrying_once_on_disconnect`).
On PostgreSQL the one statement that keeps a new case runs on the driver's own pool (asyncpg), without
SQLAlchemy's checkout, greenlet hops and reset-on-return between it and the socket (see `driver_pool`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel import Session

# orjson reads and writes the JSON columns several times faster than the standard library.
_JSON = {"json_serializer": lambda value: orjson.dumps(value).decode(), "json_deserializer": orjson.loads}


def create_database_engine(url: str, pool_size: int = 5, max_overflow: int = 5) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            _owner_only_sqlite_files(Path(database))
        # hide_parameters: SQL errors must never carry what a victim typed into the logs.
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True, **_JSON
        )
        sa.event.listen(engine, "connect", _configure_sqlite)
        return engine
    # pre-ping: after a database restart the pool hands out live connections, not dead ones. The async
    # engine, which serves the hot path, retries on a fresh connection instead.
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_timeout=10,
        hide_parameters=True,
        **_JSON,
    )


def _owner_only_sqlite_files(database: Path) -> None:
    """The database holds victims' accounts: only the service's own user may read it.

    SQLite creates the -wal and -shm files with the database file's permissions, so making the
    database owner-only before the first connection covers them too; files an older version left
    readable by others are narrowed as well.
    """
    if not database.parent.exists():
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Only ever create, never open an existing file: closing any descriptor of a database file drops
    # every POSIX lock this process holds on it, which would break SQLite's locking under live connections.
    with suppress(FileExistsError):
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")):
        with suppress(FileNotFoundError):
            os.chmod(path, 0o600)


class AsyncDatabase:
    """The asyncio engine, whose pooled connections belong to one event loop: the loop that serves the
    app (set by `serve_from_this_loop` in the app's lifespan). Code running on any other loop (a test
    client without a lifespan) gets a connection of its own each time, closed after use."""

    def __init__(self, url: str, pool_size: int = 5, max_overflow: int = 5) -> None:
        self.pooled = create_async_database_engine(url, pool_size, max_overflow)
        self.unpooled = create_async_database_engine(url, pooled=False)
        self.dialect_name = self.pooled.dialect.name
        self._serving_loop: asyncio.AbstractEventLoop | None = None
        self._driver = DriverPool(url, pool_size, max_overflow) if self.dialect_name == "postgresql" else None

    @property
    def engine(self) -> AsyncEngine:
        return self.pooled if asyncio.get_running_loop() is self._serving_loop else self.unpooled

    def serve_from_this_loop(self) -> bool:
        """Pool connections for the running loop, unless another loop already serves; True if this one does."""
        if self._serving_loop is not None:
            return False
        self._serving_loop = asyncio.get_running_loop()
        return True

    async def stop_serving(self) -> None:
        await self.pooled.dispose()
        if self._driver is not None:
            await self._driver.close()
        self._serving_loop = None

    def driver_connection(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """PostgreSQL only: an asyncpg connection, pooled on the serving loop, its own one elsewhere."""
        assert self._driver is not None, "the driver's pool is for PostgreSQL"
        if asyncio.get_running_loop() is self._serving_loop:
            return self._driver.acquire()
        return self._driver.unpooled()


class DriverPool:
    """The driver's own connections, for the one statement that keeps a new case.

    A statement that is its own transaction leaves nothing on its connection to reset, so a connection
    goes back as it is (asyncpg's pool resets each one with a query, a round trip per request) and keeps
    its prepared statements for its life. A connection that saw any error, a cancellation included,
    is closed rather than lent again; one that was found dead also closes every idle one (a database
    restart killed them all), as SQLAlchemy's pool does. Up to `pool_size` idle connections are kept;
    those beyond it (`max_overflow`) are closed once they have been idle for a minute.
    """

    ACQUIRE_TIMEOUT_SECONDS = 10  # as the SQLAlchemy pools' pool_timeout
    OVERFLOW_IDLE_SECONDS = 60

    def __init__(self, url: str, pool_size: int, max_overflow: int) -> None:
        self.dsn = driver_dsn(url)
        self.pool_size = pool_size
        self.max_size = pool_size + max_overflow
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # most recently returned last
        self._slots: asyncio.Semaphore | None = None

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        slots = self._slots or self._make_slots()
        if slots.locked():  # every connection is lent: wait for one, but not forever
            async with asyncio.timeout(self.ACQUIRE_TIMEOUT_SECONDS):
                await slots.acquire()
        else:
            await slots.acquire()  # free at once: no suspension
        try:
            connection = self._idle.pop()[0] if self._idle else await asyncpg.connect(self.dsn)
            try:
                yield connection
            except BaseException as error:
                connection.terminate()
                if _is_disconnect(error):
                    self._close_idle()
                raise
            if connection.is_closed() or connection.is_in_transaction():
                connection.terminate()
            else:
                self._keep_idle(connection)
        finally:
            slots.release()

    @asynccontextmanager
    async def unpooled(self) -> AsyncIterator[asyncpg.Connection]:
        connection = await asyncpg.connect(self.dsn)
        try:
            yield connection
        finally:
            connection.terminate()

    def _make_slots(self) -> asyncio.Semaphore:
        self._slots = asyncio.Semaphore(self.max_size)
        return self._slots

    def _keep_idle(self, connection: asyncpg.Connection) -> None:
        now = time.monotonic()
        self._idle.append((connection, now))
        if len(self._idle) > self.pool_size and now - self._idle[0][1] > self.OVERFLOW_IDLE_SECONDS:
            self._idle.pop(0)[0].terminate()

    def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.terminate()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            with suppress(Exception):
                await connection.close(timeout=2)
        self._slots = None


def driver_dsn(url: str) -> str:
    """The database URL as asyncpg reads it."""
    parsed = sa.engine.make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_async_database_engine(
    url: str, pool_size: int = 5, max_overflow: int = 5, *, pooled: bool = True
) -> AsyncEngine:
    """The asyncio engine: asyncpg for PostgreSQL, aiosqlite for SQLite (the same database file)."""
    pooling = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": 10} if pooled else {}
    if not pooled:
        pooling["poolclass"] = sa.pool.NullPool
    if url.startswith("sqlite"):
        engine = create_async_engine(
            async_url(url), connect_args={"timeout": 30}, hide_parameters=True, **pooling, **_JSON
        )
        sa.event.listen(engine.sync_engine, "connect", _configure_sqlite)
        sa.event.listen(engine.sync_engine, "connect", _sqlite_transactions_begun_by_us)
        sa.event.listen(engine.sync_engine, "begin", _begin_sqlite_transaction)
        return engine
    return create_async_engine(async_url(url), hide_parameters=True, **pooling, **_JSON)


def async_url(url: str) -> str:
    """The same database through its asyncio driver."""
    parsed = sa.engine.make_url(url)
    driver = "sqlite+aiosqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+asyncpg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


# SQLite: a transaction that writes takes the write lock when it begins (BEGIN IMMEDIATE), waiting its
# turn under the busy timeout; a deferred one that reads first can only fail when it comes to write.
WRITE_TRANSACTION = {"sqlite_begin": "IMMEDIATE"}


def _sqlite_transactions_begun_by_us(connection, _record) -> None:
    connection.isolation_level = None  # the driver's own implicit BEGIN off; _begin_sqlite_transaction's on


def _begin_sqlite_transaction(connection) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


class DatabaseUnreachable(Exception):
    """The database did not answer on a fresh connection either."""


class DatabaseBusy(DatabaseUnreachable):
    """PostgreSQL ended the transaction to settle a conflict with another, every time it was run: nothing
    it did was kept, and the caller may send it again (met where an outage is, the form's page too)."""


# What the asyncio drivers raise when a connection is dead or cannot be had (the server restarted, is
# starting up or shutting down, the network dropped), raw or wrapped by SQLAlchemy.
def _causes(error: BaseException | None) -> Iterator[BaseException]:
    """The error and what it wraps (SQLAlchemy's `orig`, else `__cause__`), at most five deep."""
    for _ in range(5):
        if error is None:
            return
        yield error
        error = getattr(error, "orig", None) or error.__cause__


def _is_disconnect(error: BaseException | None) -> bool:
    return any(
        (
            isinstance(cause, sa.exc.DBAPIError)
            and (cause.connection_invalidated or isinstance(cause, sa.exc.OperationalError | sa.exc.InterfaceError))
        )
        or isinstance(cause, OSError | ConnectionError)
        or (type(cause).__module__.startswith("asyncpg") and type(cause).__name__ in _ASYNCPG_DISCONNECTS)
        for cause in _causes(error)
    )


_ASYNCPG_DISCONNECTS = {
    "ConnectionDoesNotExistError",
    "InterfaceError",
    "CannotConnectNowError",
    "ConnectionFailureError",
    "AdminShutdownError",
    "CrashShutdownError",
    "TooManyConnectionsError",
    # A connection whose server went away mid-operation can be left in a state where the next statement
    # is refused before it is sent ("another operation is in progress"): the connection is unusable.
    "InternalClientError",
}

T = TypeVar("T")


async def retrying_once_on_disconnect(database: AsyncDatabase, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `work` on a pooled connection; if that connection turns out dead, drop it and run `work` once
    more on a new one. `work` must be safe to run twice: one transaction, rolled back when it fails."""
    for attempt in (1, 2):
        try:
            async with database.engine.connect() as connection:
                try:
                    return await work(connection)
                except BaseException as error:
                    if _is_disconnect(error):
                        await connection.invalidate()
                    raise
        except Exception as error:  # noqa: BLE001 - sorted below: only a dead connection is retried
            if not _is_disconnect(error):
                raise
            if attempt == 2:
                raise DatabaseUnreachable() from error
    raise AssertionError("unreachable")


async def on_driver_retrying_once_on_disconnect(
    database: AsyncDatabase, work: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """As `retrying_once_on_disconnect`, on the driver's own connection (PostgreSQL only)."""
    for attempt in (1, 2):
        try:
            async with database.driver_connection() as connection:
                return await work(connection)
        except Exception as error:  # noqa: BLE001 - sorted below: only a dead connection is retried
            if not _is_disconnect(error):
                raise
            if attempt == 2:
                raise DatabaseUnreachable() from error
    raise AssertionError("unreachable")


# PostgreSQL ends one of two transactions that wait on each other (a deadlock, 40P01) or that could not
# both be run one after the other (40001), and says to run it again: nothing it did was kept.
_TRANSACTION_CONFLICT_ATTEMPTS = 3


def is_transaction_conflict(error: BaseException | None) -> bool:
    """A deadlock or serialization failure PostgreSQL settled by ending this transaction (asyncpg's, as
    SQLAlchemy wraps it; psycopg's are OperationalError, answered as an outage)."""
    return any(isinstance(cause, asyncpg.exceptions.TransactionRollbackError) for cause in _causes(error))


async def retrying_on_conflict(database: AsyncDatabase, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """As `retrying_once_on_disconnect`, and `work` runs again (up to three times in all) when PostgreSQL
    ended its transaction to settle a conflict with another: concurrent reports that link the same cases
    and merge the same clusters take row locks in an order no one statement can fix, and the loser of a
    deadlock would otherwise be a 500 for a report that is perfectly good. Ended every time: DatabaseBusy."""
    for attempt in range(1, _TRANSACTION_CONFLICT_ATTEMPTS + 1):
        try:
            return await retrying_once_on_disconnect(database, work)
        except Exception as error:  # noqa: BLE001 - sorted below: only a transaction conflict is retried
            if not is_transaction_conflict(error):
                raise
            if attempt == _TRANSACTION_CONFLICT_ATTEMPTS:
                raise DatabaseBusy() from error
    raise AssertionError("unreachable")


@asynccontextmanager
async def write_transaction(connection: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """One transaction that writes: committed when the block ends, rolled back if it raises."""
    await connection.execution_options(**WRITE_TRANSACTION)
    async with connection.begin():
        yield connection


def _configure_sqlite(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def is_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False

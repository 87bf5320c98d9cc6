"""Database plumbing: the declarative base, one engine per process, units of work."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    SessionTransaction,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so Alembic migrations are reproducible on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that reads back as UTC on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite stores no offset; we only ever write UTC
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time in UTC, with microseconds (both databases keep them)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Base class of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class UUIDPrimaryKey:
    """Mixin: a UUID primary key generated in Python."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the process's engine, with SQLite tuned for a small multi-threaded server."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


#: Name of the SQL function (SQLite) that lower-cases every letter, not only ASCII ones.
UNICODE_LOWER = "eakte_lower"


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _strings(parameters: Any) -> Iterator[str]:
    """The text values among a statement's parameters: one set (a dict or a sequence) or
    many (a sequence of them, as executemany and multi-row inserts pass them)."""
    if isinstance(parameters, str):
        yield parameters
    elif isinstance(parameters, dict):
        for value in parameters.values():
            yield from _strings(value)
    elif isinstance(parameters, (list, tuple)):
        for value in parameters:
            yield from _strings(value)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so we can issue BEGIN IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # SQLite's lower() folds ASCII letters only; searches that ignore case use this one,
        # so that "özdemir" finds "Özdemir" as PostgreSQL's ILIKE does.
        dbapi_connection.create_function(UNICODE_LOWER, 1, _lower, deterministic=True)

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_nul(
        _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        # PostgreSQL refuses a NUL character in any text value; SQLite would store it. Refused
        # here too, the embedded database takes what the production one takes (the API answers
        # 422 for either, as a DataError).
        if any("\x00" in value for value in _strings(parameters)):
            raise sqlite3.DataError("a text value contains a NUL character")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # SQLite allows one writer. A deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY when another writer got there first;
        # taking the write lock at BEGIN makes writers queue (busy_timeout) instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


SessionFactory = Callable[[], Session]


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(engine: Engine) -> None:
    """Raise if the database does not answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


#: Names of lists in `session.info` that belong to the session's transaction (audit events
#: waiting for the commit, callbacks to run after it). What a savepoint added to them goes
#: when the savepoint is rolled back; everything goes when the transaction is.
_TRANSACTION_LISTS: set[str] = set()
_SAVEPOINT_MARKS = "savepoint_marks"
_AFTER_COMMIT = "after_commit"


def transaction_list(session: Session, name: str) -> list[Any]:
    """The list `name` of the session's transaction (see _TRANSACTION_LISTS)."""
    _TRANSACTION_LISTS.add(name)
    items: list[Any] = session.info.setdefault(name, [])
    return items


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (never on rollback).

    Side effects others can observe (pushes, jobs) go through here, so a
    rolled-back change is never announced.
    """
    transaction_list(session, _AFTER_COMMIT).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    # SQLAlchemy fires this when a savepoint is released too; the transaction may still
    # roll back then, so the callbacks wait for the real commit.
    if session.in_nested_transaction():
        return
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        marks: dict[SessionTransaction, dict[str, int]] = session.info.setdefault(
            _SAVEPOINT_MARKS, {}
        )
        marks[transaction] = {n: len(session.info.get(n, ())) for n in _TRANSACTION_LISTS}


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    # Also fired when only a savepoint is rolled back (a lost insert race caught with
    # begin_nested): the transaction goes on and may commit, so only what was added since
    # that savepoint began is dropped.
    savepoint = session.get_nested_transaction()
    marks = session.info.get(_SAVEPOINT_MARKS, {}).get(savepoint) if savepoint else None
    for name in _TRANSACTION_LISTS:
        if marks is None:
            session.info.pop(name, None)
        else:
            del session.info.get(name, [])[marks.get(name, 0) :]


def first_lock(session: Session, table: str, row_id: object) -> bool:
    """True unless the session's transaction has locked this row already (then False).

    For code that locks a row (SELECT ... FOR UPDATE) and may run twice in one transaction,
    as an upload is authorised before its content is stored and then recorded: the second
    time the row needs no second trip to the database.
    """
    locked: set[tuple[str, object]] = session.info.setdefault(_LOCKED_ROWS, set())
    if (table, row_id) in locked:
        return False
    locked.add((table, row_id))
    return True


_LOCKED_ROWS = "locked_rows"


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    # Also at the end of a savepoint: rolling back to one releases the locks taken in it.
    session.info.pop(_LOCKED_ROWS, None)
    if transaction.nested:
        session.info.get(_SAVEPOINT_MARKS, {}).pop(transaction, None)

"""The one-statement audit appender of PostgreSQL, racing the locking commit-time path."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from eakte.audit.models import AuditEvent
from eakte.audit.postgres import PostgresAppender
from eakte.audit.service import pending_event, record, verify_chain
from eakte.db import make_engine, make_session_factory, unit_of_work
from tests.support.db import _libpq, fresh_pg_database


@pytest.fixture
def pg_engines(pg_server: str) -> Iterator[tuple[Engine, Engine]]:
    """A fresh database: (the app's engine, an autocommit engine for the appender)."""
    with fresh_pg_database(pg_server) as url:
        app = make_engine(url)
        own = make_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
        try:
            yield app, own
        finally:
            app.dispose()
            own.dispose()


def _events(prefix: str, n: int) -> list[dict[str, object]]:
    return [
        pending_event("cti:webhook", "cti.call_popped", "contact", f"{prefix}-{i}", call_id=i)
        for i in range(n)
    ]


def _verified_chain(engine: Engine) -> list[AuditEvent]:
    """Every audit event in chain order, after checking that the chain verifies."""
    with unit_of_work(make_session_factory(engine)) as session:
        report = verify_chain(session)
        assert report.ok, report.problems
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_batches_are_chained_and_verify(pg_engines: tuple[Engine, Engine]) -> None:
    app, own = pg_engines
    appender = PostgresAppender(own)
    appender.append(_events("a", 3))
    appender.append(_events("b", 1))
    rows = _verified_chain(app)
    assert [r.object_id for r in rows] == ["a-0", "a-1", "a-2", "b-0"]
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert rows[0].details == {"call_id": 0}


def test_a_stale_head_is_read_again_instead_of_forking_the_chain(
    pg_engines: tuple[Engine, Engine],
) -> None:
    app, own = pg_engines
    appender = PostgresAppender(own)
    appender.append(_events("first", 1))  # the appender now remembers head 1
    factory = make_session_factory(app)
    with unit_of_work(factory) as session:  # the locking path moves the head to 2
        record(session, "someone", "file.created", "file", "x")
    appender.append(_events("second", 2))
    rows = _verified_chain(app)
    assert [r.object_id for r in rows] == ["first-0", "x", "second-0", "second-1"]


def test_concurrent_appenders_and_locking_writers_leave_one_unbroken_chain(
    pg_engines: tuple[Engine, Engine],
) -> None:
    app, own = pg_engines
    factory = make_session_factory(app)
    errors: list[BaseException] = []

    def fast(name: str) -> None:
        appender = PostgresAppender(own)
        try:
            for i in range(40):
                appender.append(_events(f"{name}.{i}", 1 + i % 3))
        except BaseException as exc:  # collected, then the test fails below
            errors.append(exc)

    def locking(name: str) -> None:
        try:
            for i in range(40):
                with unit_of_work(factory) as session:
                    record(session, name, "file.updated", "file", f"{name}.{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fast, args=(f"f{n}",)) for n in range(3)]
    threads += [threading.Thread(target=locking, args=(f"l{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = 3 * sum(1 + i % 3 for i in range(40)) + 2 * 40
    assert len(_verified_chain(app)) == expected


def test_a_dropped_connection_fails_the_attempt_and_the_next_one_reconnects(
    pg_engines: tuple[Engine, Engine],
) -> None:
    app, own = pg_engines
    appender = PostgresAppender(own)
    appender.append(_events("before", 1))
    url = own.url
    with psycopg.connect(_libpq(url.render_as_string(hide_password=False))) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        )
    with pytest.raises(psycopg.OperationalError):
        appender.append(_events("lost", 1))
    appender.append(_events("after", 1))
    assert [r.object_id for r in _verified_chain(app)] == ["before-0", "after-0"]


def test_verifying_a_chain_that_grows_meanwhile_finds_no_problem(
    pg_engines: tuple[Engine, Engine],
) -> None:
    # `eakte audit verify` runs against a live database: events appended while it reads the
    # chain are no sign of tampering.
    app, own = pg_engines
    appender = PostgresAppender(own)
    appender.append(_events("before", 3))
    stop = threading.Event()

    def keep_appending() -> None:
        writer = PostgresAppender(own)
        while not stop.is_set():
            writer.append(_events("during", 2))

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        factory = make_session_factory(app)
        for _ in range(20):
            with unit_of_work(factory) as session:
                report = verify_chain(session)
            assert report.ok, report.problems
    finally:
        stop.set()
        writer.join()
    _verified_chain(app)

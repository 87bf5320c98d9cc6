"""Work that waits for the commit (`on_commit`) and savepoints inside a transaction.

SQLAlchemy reports the release of a savepoint as a commit and the rollback of one as a
rollback. A side effect announced at a savepoint's release could belong to a transaction
that then rolls back; one dropped at a savepoint's rollback could belong to work that stays.
"""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from eakte.db import make_session_factory, on_commit, unit_of_work


def test_callbacks_wait_for_the_real_commit_and_go_with_their_savepoint(engine: Engine) -> None:
    ran: list[str] = []
    with unit_of_work(make_session_factory(engine)) as session:
        session.execute(text("SELECT 1"))
        on_commit(session, lambda: ran.append("before"))
        with session.begin_nested():
            on_commit(session, lambda: ran.append("released savepoint"))
        assert ran == []  # released, but the transaction can still roll back
        with contextlib.suppress(RuntimeError), session.begin_nested():
            on_commit(session, lambda: ran.append("rolled-back savepoint"))
            raise RuntimeError("a lost race")
        on_commit(session, lambda: ran.append("after"))
        assert ran == []
    assert ran == ["before", "released savepoint", "after"]


def test_no_callback_runs_when_the_transaction_rolls_back(engine: Engine) -> None:
    ran: list[str] = []
    with pytest.raises(RuntimeError), unit_of_work(make_session_factory(engine)) as session:
        session.execute(text("SELECT 1"))
        on_commit(session, lambda: ran.append("outer"))
        with session.begin_nested():
            on_commit(session, lambda: ran.append("released savepoint"))
        raise RuntimeError("the request failed")
    assert ran == []

"""The directory of known principals: entered on first use, also by parallel first requests."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session

from eakte.auth.principal import Principal, Role
from eakte.worklist.models import KnownPrincipal
from eakte.worklist.service import remember
from tests import factories
from tests.conftest import Api


def test_two_first_requests_of_one_principal_both_succeed(pg_api: Api) -> None:
    principal = Principal(factories.unique("neu-"), frozenset({Role.CLERK}), frozenset({"32"}))
    second_done = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with Session(pg_api.engine) as session, session.begin():
                remember(session, principal)  # waits on the first one's uncommitted row
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
        finally:
            second_done.set()

    with Session(pg_api.engine) as first:
        with first.begin():
            remember(first, principal)
            first.flush()
            waiting = threading.Thread(target=second)
            waiting.start()
            time.sleep(0.5)  # the second insert now waits on the unique key
            assert not second_done.is_set()
        waiting.join(10)
    assert errors == []
    with Session(pg_api.engine) as session:
        row = session.get(KnownPrincipal, principal.subject)
        assert row is not None and row.units == ["32"]

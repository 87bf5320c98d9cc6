"""Security tests: the audit chain of the session's databases is verified once the run ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eakte.audit.service import verify_chain
from eakte.db import make_engine, make_session_factory, unit_of_work


@pytest.fixture(scope="session", autouse=True)
def audit_chain_intact_after_the_run(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the last test of the session, every shared database's audit chain still verifies.

    Session fixtures are finalised when the whole run is over, in reverse order of setup; this
    one asks for the databases, so it runs after every test (of every package) and before they
    are dropped. Tests that tamper with the chain on purpose use databases of their own.
    """
    urls: list[str] = []
    for name in ("pg_url", "sqlite_url"):
        try:
            urls.append(str(request.getfixturevalue(name)))
        except (Exception, pytest.skip.Exception) as exc:
            # The tests that need this database report why it is missing; nothing to verify.
            print(f"audit chain check: no {name} database ({type(exc).__name__})")
    yield
    problems: list[str] = []
    for url in urls:
        engine = make_engine(url)
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                report = verify_chain(session)
        finally:
            engine.dispose()
        if not report.ok:
            problems.append(f"{url.split('@')[-1]}: {report.problems[:5]}")
    assert not problems, f"audit chain broken after the test run: {problems}"

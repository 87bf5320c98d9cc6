"""The statements a small upload sends: its file is read once, under the lock.

An upload authorises (locking the file's row) before its content is stored, and records
its rows after: both need the file, which the second step must take from the session,
not select again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event

from tests import factories
from tests.conftest import Api


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements the engine sends meanwhile."""
    sent: list[str] = []

    def remember(conn: object, cursor: object, statement: str, *args: object) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", remember)


def test_a_small_upload_reads_its_file_once(pg_api: Api) -> None:
    api = pg_api
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])

    with statements(api.engine) as sent:
        r = factories.upload(api, unit.clerk, f["id"], b"%PDF-1.4 " + b"x" * 100_000)
    assert r.status_code == 201, r.text

    reads = [s for s in sent if s.startswith("SELECT") and " FROM files " in s]
    assert len(reads) == 1, reads
    assert reads[0].endswith("FOR UPDATE OF files"), reads[0]
    assert any(s.startswith("INSERT INTO document_versions") for s in sent), sent

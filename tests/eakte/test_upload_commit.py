"""A failed COMMIT of an upload: its blob is left for the orphan sweeper, never deleted at once.

The client cannot tell a COMMIT that failed from one that was made durable before the
connection broke (a primary crashing as its synchronous standby takes over). A blob deleted
in that case would leave a committed row without its content, so the upload keeps it, and
the sweeper removes it later only if no row names it. A deferred constraint trigger makes
PostgreSQL refuse the COMMIT itself here, after every statement of the transaction worked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.sweeper import document_keys, sweep_orphans
from storage import S3Store
from tests import factories
from tests.conftest import Api, api_for
from tests.support.db import fresh_pg_database

REFUSE_AT_COMMIT = """
CREATE FUNCTION refuse_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.original_name = 'refused-at-commit.pdf' THEN
        RAISE EXCEPTION 'refused at commit';
    END IF;
    RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER refuse_version AFTER INSERT ON document_versions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_version();
"""


@pytest.fixture
def own_pg_api(pg_server: str, s3_store: S3Store) -> Iterator[Api]:
    with fresh_pg_database(pg_server) as url:
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(REFUSE_AT_COMMIT)
        try:
            yield from api_for(url, engine, s3_store)
        finally:
            engine.dispose()


@pytest.mark.parametrize("size", [1000, 5 * 1024 * 1024], ids=["whole", "streamed"])
def test_a_blob_whose_commit_failed_is_left_to_the_sweeper(own_pg_api: Api, size: int) -> None:
    api = own_pg_api
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    before = {b.key for b in api.store.list("docs/")}

    r = factories.upload(api, unit.clerk, f["id"], b"%PDF-1.4 " + b"x" * size,
                         name="refused-at-commit.pdf")  # fmt: skip
    assert r.status_code >= 400, r.text
    left = {b.key for b in api.store.list("docs/")} - before
    assert len(left) == 1  # kept: the failed commit might have been made durable
    with api.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM document_versions")) == 0

    time.sleep(1.1)  # older than a grace time of one second
    with unit_of_work(make_session_factory(api.engine)) as session:
        assert sweep_orphans(session, api.store, 1, referenced={"docs/": document_keys}) \
            == sorted(left)
    assert not api.store.exists(left.pop())

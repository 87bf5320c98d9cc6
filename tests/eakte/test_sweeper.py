"""Blobs that no row names are removed after the grace time; named ones never are."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from eakte.db import make_session_factory, unit_of_work
from eakte.sweeper import document_keys, sweep_orphans
from inbox.repository import blob_keys_in_use
from tests import factories
from tests.conftest import Api
from tests.support.server import eakte


def test_orphans_go_after_the_grace_time_and_referenced_blobs_stay(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    f = factories.file(api, unit, item["code"])
    doc = factories.upload(api, unit.clerk, str(f["id"]), b"kept").json()
    orphan = f"docs/{doc['id']}/00000000-0000-0000-0000-00000000dead"
    api.store.put(orphan, io.BytesIO(b"left behind by a crash"))
    referenced = {"docs/": document_keys, "inbox/": blob_keys_in_use}
    factory = make_session_factory(api.engine)

    with unit_of_work(factory) as session:
        assert sweep_orphans(session, api.store, 3600, referenced=referenced) == []
    assert api.store.exists(orphan)

    time.sleep(1.1)  # stores keep modification times to the second
    with unit_of_work(factory) as session:
        listed = sweep_orphans(session, api.store, 1, referenced=referenced, dry_run=True)
        assert orphan in listed and api.store.exists(orphan)
        removed = sweep_orphans(session, api.store, 1, referenced=referenced)
    assert orphan in removed
    assert not api.store.exists(orphan)
    content = api.client.get(f"/api/v1/documents/{doc['id']}/versions/1/content",
                             headers=unit.clerk)
    assert content.content == b"kept"


def test_sweep_command_reports_what_it_removed(tmp_path: Path) -> None:
    eakte(tmp_path, "db", "upgrade")
    stray = tmp_path / "var" / "blobs" / "inbox" / "0000" / "original"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    result = eakte(tmp_path, "sweep", "--grace", "0")
    assert "removed inbox/0000/original" in result.stdout
    assert not stray.exists()


def _orphans(api: Api, n: int) -> list[str]:
    keys = [f"docs/{uuid.uuid4()}/{uuid.uuid4()}" for _ in range(n)]
    for key in keys:
        api.store.put(key, io.BytesIO(b"left behind"))
    time.sleep(1.1)  # older than a grace time of one second
    return keys


def test_a_locked_orphan_is_kept_and_the_sweep_goes_on(api: Api) -> None:
    held, free = _orphans(api, 2)
    api.store.set_legal_hold(held, True)
    try:
        with unit_of_work(make_session_factory(api.engine)) as session:
            removed = sweep_orphans(session, api.store, 1)
        assert free in removed and held not in removed
        assert api.store.exists(held) and not api.store.exists(free)
    finally:
        api.store.set_legal_hold(held, False)


def test_a_blob_written_again_since_the_listing_is_kept(api: Api) -> None:
    (key,) = _orphans(api, 1)

    def keys_of(session: Session) -> set[str]:
        # Between the listing and the deletes: a retried step writes the same key again.
        api.store.put(key, io.BytesIO(b"written again"))
        return document_keys(session)

    with unit_of_work(make_session_factory(api.engine)) as session:
        assert sweep_orphans(session, api.store, 1, referenced={"docs/": keys_of}) == []
    assert api.store.exists(key)


def test_the_sweep_holds_no_transaction_while_it_deletes(api: Api) -> None:
    # On SQLite every transaction holds the database's write lock (BEGIN IMMEDIATE).
    _orphans(api, 1)
    writes: list[str] = []

    def inbox_keys(session: Session) -> set[str]:
        # Runs after the docs/ prefix was read and swept: another writer must get in.
        with api.engine.connect() as other:
            if api.engine.dialect.name == "sqlite":
                other.exec_driver_sql("PRAGMA busy_timeout = 500")
            other.execute(text("UPDATE audit_head SET seq = seq WHERE id = 1"))
            other.commit()
        writes.append("done")
        return blob_keys_in_use(session)

    with unit_of_work(make_session_factory(api.engine)) as session:
        sweep_orphans(session, api.store, 1,
                      referenced={"docs/": document_keys, "inbox/": inbox_keys})  # fmt: skip
    assert writes == ["done"]

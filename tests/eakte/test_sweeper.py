"""Blobs that no row names are removed after the grace time; named ones never are."""

from __future__ import annotations

import io
import time
from pathlib import Path

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

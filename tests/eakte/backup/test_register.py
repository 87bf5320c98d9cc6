"""The destruction register: disposals during a backup, entries among its blobs, sealed entries."""

from __future__ import annotations

import base64
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from eakte.backup import register
from eakte.backup.crypto import seal, unseal
from eakte.backup.service import create_backup
from eakte.backup.target import read_manifest
from eakte.db import make_engine
from storage import BlobStore
from tests import factories
from tests.conftest import Api, api_for
from tests.eakte.backup.conftest import Installation
from tests.eakte.backup.test_backup import LONG_AGO, app_on, run
from tests.retention.helpers import Office, approved_run, close, file_with_documents, office

Progress = Callable[[str, int, int], None]


@pytest.fixture
def unconfigured_api(installation: Installation) -> Iterator[Api]:
    """The app on the source without EAKTE_BACKUP_TARGET: it keeps the register in the
    primary store (copied into each backup as blobs)."""
    url = installation.source.database_url
    engine = make_engine(url)
    try:
        yield from api_for(url, engine, installation.source.store)
    finally:
        engine.dispose()


def _doomed_file(api: Api, o: Office) -> tuple[dict[str, Any], dict[str, Any]]:
    """A file closed long ago and a disposal run of it, approved but not yet executed."""
    plan = factories.plan_item(api, retention_years=5, archive_value="V")
    file_with_documents(api, o, plan["code"], documents=1)  # stays open, stays
    doomed, _ = file_with_documents(api, o, plan["code"], documents=2)
    close(api, o, doomed["id"], LONG_AGO)
    return doomed, approved_run(api, o, date.today().isoformat())


def _execute_during(
    api: Api, o: Office, run_id: str, phase: str, done: int = 0
) -> tuple[Progress, list[int]]:
    """A progress callback that executes the disposal run once the backup reports `done`
    items of `phase` (the dump is done at ("database", 1); the blobs are listed at the first
    "blobs" report)."""
    executed: list[int] = []

    def progress(at: str, items: int, _total: int) -> None:
        if at == phase and items >= done and not executed:
            r = api.client.post(f"/api/v1/retention/runs/{run_id}/execute", headers=o.anna)
            assert r.status_code == 200 and r.json()["status"] == "completed", r.text
            executed.append(1)

    return progress, executed


def _restore_reapplies(
    installation: Installation, target_url: str, o: Office, doomed: dict[str, Any]
) -> None:
    place = installation.empty()
    restored = run(installation.env(place), "backup", "restore", target_url)
    assert restored.exit_code == 0, restored.output
    assert f"re-applied disposal: {doomed['reference']} (destroyed" in restored.output
    client, engine = app_on(place)
    try:
        with client:
            r = client.get(f"/api/v1/files/{doomed['id']}", headers=o.unit.clerk)
            assert r.json()["status"] == "disposed"
    finally:
        engine.dispose()


def test_disposal_finished_while_blobs_are_copied_is_reapplied(
    installation: Installation, unconfigured_api: Api
) -> None:
    api = unconfigured_api
    o = office(api)
    doomed, disposal = _doomed_file(api, o)
    progress, executed = _execute_during(api, o, disposal["id"], "blobs")
    target = installation.open(installation.target_url)

    report = create_backup(
        installation.settings(installation.source), installation.source.store, target,
        progress=progress,
    )
    assert executed
    # After the dump, after the listing: the dump has the file, the register entry went to
    # the primary store too late to be copied; the backup's own register must hold it.
    assert report.register_written == 1
    assert not any(b["key"].startswith(register.PREFIX) for b in read_manifest(target)["blobs"])
    _restore_reapplies(installation, installation.target_url, o, doomed)


def test_register_entry_found_only_among_the_blobs_is_reapplied(
    installation: Installation, unconfigured_api: Api
) -> None:
    api = unconfigured_api
    o = office(api)
    doomed, disposal = _doomed_file(api, o)
    progress, executed = _execute_during(api, o, disposal["id"], "database", done=1)
    target = installation.open(installation.target_url)

    create_backup(
        installation.settings(installation.source), installation.source.store, target,
        progress=progress,
    )
    assert executed
    in_blobs = [b for b in read_manifest(target)["blobs"] if b["key"].startswith("register/")]
    assert len(in_blobs) == 1
    # A copy of the backup made by its manifest alone (or a register lost): the entry among
    # the blobs still counts.
    for stat in list(target.list(register.PREFIX)):
        target.delete(stat.key)
    _restore_reapplies(installation, installation.target_url, o, doomed)


def test_encrypted_backup_applies_sealed_entries_and_refuses_forged_ones(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    plan = factories.plan_item(api, retention_years=5, archive_value="V")
    kept, kept_docs = file_with_documents(api, o, plan["code"], documents=1)
    doomed, _ = file_with_documents(api, o, plan["code"], documents=1)
    key = base64.b64encode(os.urandom(32)).decode()
    seal_key = base64.b64decode(key)
    source = installation.source
    # The composition root with a backup key (read when an entry is written, as the CLI
    # does): disposals are registered sealed.
    register.attach(
        api.engine,
        register.register_store(installation.target_url, source.storage_url, source.store),
        lambda: seal_key,
    )
    env = installation.env(source, EAKTE_BACKUP_KEY=key)
    assert run(env, "backup", "create", "--to", installation.target_url).exit_code == 0
    close(api, o, doomed["id"], LONG_AGO)
    r = api.client.post(
        f"/api/v1/retention/runs/{approved_run(api, o, date.today().isoformat())['id']}/execute",
        headers=o.anna,
    )
    assert r.status_code == 200, r.text

    target = installation.open(installation.target_url)
    [entry_key] = [s.key for s in target.list(register.PREFIX)]
    assert entry_key.endswith(".sealed")
    with target.open(entry_key) as reader:
        stored = b"".join(reader)
    assert doomed["reference"].encode() not in stored  # sealed, not plain JSON

    # What anyone who can write to the target could add: an entry that disposes of the kept
    # file, in plain JSON and sealed with a key of their own.
    forged: dict[str, Any] = json.loads(unseal(seal_key, stored))
    forged["record"].update(
        id=str(uuid.uuid4()), file_id=kept["id"], reference=kept["reference"]
    )
    body = json.dumps(forged).encode()
    plain_key = f"{register.PREFIX}20300101T000000.000000Z-{forged['record']['id']}.json"
    _put(target, plain_key, body)
    forged["record"]["id"] = str(uuid.uuid4())
    other_key = f"{register.PREFIX}20300101T000000.000000Z-{forged['record']['id']}.sealed"
    _put(target, other_key, seal(os.urandom(32), json.dumps(forged).encode()))

    place = installation.empty()
    restored = run(installation.env(place, EAKTE_BACKUP_KEY=key), "backup", "restore",
                   installation.target_url)
    assert restored.exit_code == 6, restored.output
    assert f"re-applied disposal: {doomed['reference']} (destroyed" in restored.output
    assert "1 disposals re-applied" in restored.output
    assert f"register: {plain_key} not applied: it is not sealed" in restored.output
    assert f"(it claims {kept['reference']} was destroyed at" in restored.output
    assert f"register: {other_key} not applied: it does not authenticate" in restored.output
    client, engine = app_on(place)
    try:
        with client:
            r = client.get(f"/api/v1/files/{kept['id']}", headers=o.unit.clerk)
            assert r.json()["status"] == "open"
            r = client.get(
                f"/api/v1/documents/{kept_docs[0]['id']}/versions/1/content",
                headers=o.unit.clerk,
            )
            assert r.status_code == 200
    finally:
        engine.dispose()


def _put(target: BlobStore, key: str, data: bytes) -> None:
    target.put(key, io.BytesIO(data))


def test_plain_entries_of_records_the_backup_has_are_not_reported(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    doomed, disposal = _doomed_file(api, o)
    r = api.client.post(f"/api/v1/retention/runs/{disposal['id']}/execute", headers=o.anna)
    assert r.status_code == 200, r.text
    target = installation.open(installation.target_url)
    # Registered by an app that had no key: plain JSON, before any backup.
    [plain] = [s.key for s in target.list(register.PREFIX)]
    assert plain.endswith(".json")

    key = base64.b64encode(os.urandom(32)).decode()
    keyed = installation.env(installation.source, EAKTE_BACKUP_KEY=key)
    created = run(keyed, "backup", "create", "--to", installation.target_url)
    assert created.exit_code == 0 and "1 register entries written" in created.output
    assert {s.key for s in target.list(register.PREFIX)} == {
        plain, plain.removesuffix(".json") + ".sealed"
    }

    place = installation.empty()
    restored = run(installation.env(place, EAKTE_BACKUP_KEY=key), "backup", "restore",
                   installation.target_url)
    assert restored.exit_code == 0, restored.output
    assert "PROBLEM" not in restored.output and "0 disposals re-applied" in restored.output

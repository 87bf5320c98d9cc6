"""Backups end to end through the CLI: create, verify, restore, re-applied disposals."""

from __future__ import annotations

import base64
import io
import os
from datetime import date
from hashlib import sha256
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from eakte import models
from eakte.app import create_app
from eakte.audit.models import AuditEvent
from eakte.backup import repository, service
from eakte.backup.service import BLOBS
from eakte.backup.target import open_target, read_manifest
from eakte.cli import app as cli
from eakte.db import make_engine, make_session_factory, unit_of_work
from storage import BlobLocked
from tests import factories
from tests.conftest import Api, make_settings
from tests.eakte.backup.conftest import Installation, Place
from tests.retention.helpers import approved_run, close, file_with_documents, office

LONG_AGO = "2012-06-01T10:00:00+02:00"
runner = CliRunner()


def run(env: dict[str, str], *args: str) -> Result:
    """Run the eakte CLI with the given EAKTE_ environment."""
    return runner.invoke(cli, list(args), env=env)


def counts(database_url: str) -> dict[str, int]:
    """Rows per table of a database."""
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            tables = [getattr(models, n) for n in models.__all__ if n != "Base"]
            return repository.row_counts(session, tables)
    finally:
        engine.dispose()


def contents(api: Api, headers: dict[str, str], docs: list[dict[str, Any]]) -> dict[str, bytes]:
    """Every version's content of the documents, by `document/number`."""
    out: dict[str, bytes] = {}
    for d in docs:
        listing = api.client.get(f"/api/v1/documents/{d['id']}/versions", headers=headers)
        assert listing.status_code == 200, listing.text
        for v in listing.json():
            r = api.client.get(
                f"/api/v1/documents/{d['id']}/versions/{v['number']}/content", headers=headers
            )
            assert r.status_code == 200, r.text
            out[f"{d['id']}/{v['number']}"] = r.content
    return out


def app_on(place: Place) -> tuple[TestClient, Engine]:
    """A test client on a restored installation."""
    engine = make_engine(place.database_url)
    app = create_app(make_settings(place.database_url), engine=engine, store=place.store)
    return TestClient(app, raise_server_exceptions=False), engine


def dispose(api: Api, o: Any, file_id: str) -> None:
    """Close a file long ago and run its disposal to the end."""
    close(api, o, file_id, LONG_AGO)
    run_ = approved_run(api, o, date.today().isoformat())
    r = api.client.post(f"/api/v1/retention/runs/{run_['id']}/execute", headers=o.anna)
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text


def test_restore_brings_back_every_version_byte_identical(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    plan = factories.plan_item(api, retention_years=5, archive_value="V")
    kept, docs = file_with_documents(api, o, plan["code"], documents=3, versions=2)
    gone, _ = file_with_documents(api, o, plan["code"], documents=1)
    dispose(api, o, gone["id"])  # a disposal run before the backup
    before = contents(api, o.unit.clerk, docs)
    source_counts = counts(installation.source.database_url)
    env = installation.env(installation.source)

    created = run(env, "backup", "create", "--to", installation.target_url)
    assert created.exit_code == 0, created.output
    assert "6 blobs, 6 copied" in created.output, created.output

    place = installation.empty()
    restored = run(installation.env(place), "backup", "restore", installation.target_url)
    assert restored.exit_code == 0, restored.output
    assert "0 disposals re-applied" in restored.output
    assert "audit chain ok" in restored.output

    restored_counts = counts(place.database_url)  # before reading: reads are audited
    client, engine = app_on(place)
    try:
        with client:
            after = contents(
                Api(client, api.settings, engine, place.store), o.unit.clerk, docs
            )
            r = client.get(f"/api/v1/files/{gone['id']}", headers=o.unit.clerk)
            assert r.json()["status"] == "disposed"
    finally:
        engine.dispose()
    assert after == before and len(after) == 6
    # The restore adds exactly one audit event of its own.
    assert restored_counts.pop("audit_events") == source_counts.pop("audit_events") + 1
    assert restored_counts == source_counts
    assert restored_counts["disposal_records"] == 1 and restored_counts["document_versions"] == 7
    verified = run(installation.env(place), "audit", "verify")
    assert verified.exit_code == 0, verified.output


def test_file_disposed_after_the_backup_stays_gone(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    plan = factories.plan_item(api, retention_years=5, archive_value="V")
    kept, kept_docs = file_with_documents(api, o, plan["code"], documents=1)
    doomed, doomed_docs = file_with_documents(api, o, plan["code"], documents=2)
    doomed_keys = {
        s.key for d in doomed_docs for s in installation.source.store.list(f"docs/{d['id']}/")
    }
    assert doomed_keys
    env = installation.env(installation.source)
    assert run(env, "backup", "create", "--to", installation.target_url).exit_code == 0

    dispose(api, o, doomed["id"])  # after the backup: goes to the destruction register
    target = open_target(installation.target_url, installation.source.storage_url)
    assert len(list(target.list("register/"))) == 1

    place = installation.empty()
    restored = run(installation.env(place), "backup", "restore", installation.target_url)
    assert restored.exit_code == 0, restored.output
    assert f"re-applied disposal: {doomed['reference']} (destroyed" in restored.output
    assert "1 disposals re-applied" in restored.output
    assert not {s.key for s in place.store.list("docs/")} & doomed_keys
    client, engine = app_on(place)
    try:
        with client:
            r = client.get(f"/api/v1/files/{doomed['id']}", headers=o.unit.clerk)
            assert r.json()["status"] == "disposed"
            r = client.get(
                f"/api/v1/documents/{doomed_docs[0]['id']}/versions/1/content",
                headers=o.unit.clerk,
            )
            assert r.status_code in (404, 409, 410)
            r = client.get(
                f"/api/v1/documents/{kept_docs[0]['id']}/versions/1/content",
                headers=o.unit.clerk,
            )
            assert r.status_code == 200
    finally:
        engine.dispose()
    assert counts(place.database_url)["disposal_records"] == 1
    assert run(installation.env(place), "audit", "verify").exit_code == 0


def test_verify_reports_a_flipped_byte_and_a_deleted_blob(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    plan = factories.plan_item(api)
    file_with_documents(api, o, plan["code"], documents=3)
    env = installation.env(installation.source)
    assert run(env, "backup", "create", "--to", installation.target_url).exit_code == 0
    ok = run(env, "backup", "verify", installation.target_url)
    assert ok.exit_code == 0 and " ok: 4 objects" in ok.output, ok.output

    target = open_target(installation.target_url, installation.source.storage_url)
    first, second = sorted(s.key for s in target.list(BLOBS))[:2]
    with target.open(first) as reader:
        data = bytearray(b"".join(reader))
    data[len(data) // 2] ^= 0x01
    target.put(first, io.BytesIO(bytes(data)))
    target.delete(second)

    damaged = run(env, "backup", "verify", installation.target_url)
    assert damaged.exit_code == 6, damaged.output
    assert f"CORRUPT {first}" in damaged.output
    assert f"MISSING {second}" in damaged.output
    assert "1 missing, 1 corrupt of 4 objects" in damaged.output

    place = installation.empty()
    restored = run(installation.env(place), "backup", "restore", installation.target_url)
    assert restored.exit_code == 6, restored.output
    assert f"{first} is corrupt" in restored.output and f"{second} is missing" in restored.output
    assert len(list(place.store.list())) == 1  # nothing that looks restored but is not


def test_encrypted_backup_is_incremental_and_restores(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    plan = factories.plan_item(api)
    _, docs = file_with_documents(api, o, plan["code"], documents=2, versions=2)
    before = contents(api, o.unit.clerk, docs)
    key = base64.b64encode(os.urandom(32)).decode()
    env = installation.env(installation.source, EAKTE_BACKUP_KEY=key)
    target_url = installation.new_target()

    first = run(env, "backup", "create", "--to", target_url)
    assert first.exit_code == 0 and "4 blobs, 4 copied" in first.output, first.output
    second = run(env, "backup", "create", "--to", target_url)
    assert second.exit_code == 0 and "4 blobs, 0 copied" in second.output, second.output

    target = open_target(target_url, installation.source.storage_url)
    manifest = read_manifest(target)
    assert manifest["encrypted"] is True
    for stat in target.list(BLOBS):
        with target.open(stat.key) as reader:
            stored = b"".join(reader)
        assert b"%PDF" not in stored  # the content never reaches the target in clear

    unkeyed = installation.env(installation.source)
    refused = run(unkeyed, "backup", "verify", target_url)
    assert refused.exit_code == 2 and "EAKTE_BACKUP_KEY" in refused.output
    assert run(env, "backup", "verify", target_url).exit_code == 0

    place = installation.empty()
    restored = run(installation.env(place, EAKTE_BACKUP_KEY=key), "backup", "restore", target_url)
    assert restored.exit_code == 0, restored.output
    client, engine = app_on(place)
    try:
        with client:
            after = contents(Api(client, api.settings, engine, place.store), o.unit.clerk, docs)
    finally:
        engine.dispose()
    assert after == before


def test_restore_refuses_a_database_that_is_not_empty(
    installation: Installation, source_api: Api
) -> None:
    env = installation.env(installation.source)
    assert run(env, "backup", "create", "--to", installation.target_url).exit_code == 0
    before = counts(installation.source.database_url)
    refused = run(env, "backup", "restore", installation.target_url)
    assert refused.exit_code == 4, refused.output
    assert "database is not empty" in refused.output
    assert counts(installation.source.database_url) == before


def test_backup_target_must_not_be_the_primary_store(installation: Installation) -> None:
    env = installation.env(installation.source)
    refused = run(env, "backup", "create", "--to", installation.source.storage_url)
    assert refused.exit_code == 2, refused.output
    assert "primary store" in refused.output


def test_disposal_by_the_command_line_is_registered_and_reapplied(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    plan = factories.plan_item(api, retention_years=5, archive_value="V")
    doomed, _ = file_with_documents(api, o, plan["code"], documents=1)
    close(api, o, doomed["id"], LONG_AGO)
    env = installation.env(installation.source, EAKTE_BACKUP_TARGET=installation.target_url)
    assert run(env, "backup", "create").exit_code == 0

    proposed = run(env, "retention", "run", "--as-of", date.today().isoformat(), "--actor", "anna")
    assert proposed.exit_code == 0, proposed.output
    run_id = proposed.output.split()[1]
    assert run(env, "retention", "approve", run_id, "--actor", "bert").exit_code == 0
    executed = run(env, "retention", "execute", run_id, "--actor", "anna")
    assert executed.exit_code == 0, executed.output

    place = installation.empty()
    restored = run(installation.env(place), "backup", "restore", installation.target_url)
    assert restored.exit_code == 0, restored.output
    assert f"re-applied disposal: {doomed['reference']} (destroyed" in restored.output


def test_restored_blobs_of_closed_and_held_files_are_locked_again(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    plan = factories.plan_item(api, retention_years=5, archive_value="V")
    closed, closed_docs = file_with_documents(api, o, plan["code"], documents=1)
    close(api, o, closed["id"])  # due in five years and some months
    held, held_docs = file_with_documents(api, o, plan["code"], documents=1)
    r = api.client.post(f"/api/v1/retention/files/{held['id']}/holds",
                        json={"reason": "Prüfung", "owner": "Rechnungsprüfung"}, headers=o.anna)
    assert r.status_code == 201, r.text
    created = run(installation.env(installation.source), "backup", "create", "--to",
                  installation.target_url)
    assert created.exit_code == 0, created.output

    place = installation.empty()
    restored = run(installation.env(place), "backup", "restore", installation.target_url)
    assert restored.exit_code == 0, restored.output
    assert "2 closed or held files locked again" in restored.output

    stats = {b.key.split("/")[1]: place.store.stat(b.key) for b in place.store.list("docs/")}
    closed_blob = stats[closed_docs[0]["id"]]
    assert closed_blob.retain_until is not None
    assert closed_blob.retain_until.year >= date.today().year + 5
    assert stats[held_docs[0]["id"]].legal_hold
    with pytest.raises(BlobLocked):
        place.store.delete(next(b.key for b in place.store.list(f"docs/{closed_docs[0]['id']}/")))


def test_restore_with_a_blob_of_a_closed_file_missing_keeps_disposals_and_audit(
    installation: Installation, source_api: Api
) -> None:
    api = source_api
    o = office(api)
    plan = factories.plan_item(api, retention_years=5, archive_value="V")
    closed, closed_docs = file_with_documents(api, o, plan["code"], documents=2)
    close(api, o, closed["id"])
    doomed, _ = file_with_documents(api, o, plan["code"], documents=1)
    env = installation.env(installation.source)
    assert run(env, "backup", "create", "--to", installation.target_url).exit_code == 0
    dispose(api, o, doomed["id"])  # after the backup: re-applied in the restore's last step
    source_counts = counts(installation.source.database_url)

    target = open_target(installation.target_url, installation.source.storage_url)
    lost_key = next(s.key for s in installation.source.store.list(f"docs/{closed_docs[0]['id']}/"))
    [lost_sha] = [b["sha256"] for b in read_manifest(target)["blobs"] if b["key"] == lost_key]
    target.delete(BLOBS + lost_sha)

    place = installation.empty()
    restored = run(installation.env(place), "backup", "restore", installation.target_url)
    assert restored.exit_code == 6, restored.output
    assert f"{lost_key}: {BLOBS}{lost_sha} is missing from the backup" in restored.output
    assert f"lock: {lost_key} of file {closed['reference']} is not in the store" in (
        restored.output
    )
    assert f"re-applied disposal: {doomed['reference']} (destroyed" in restored.output
    assert "1 closed or held files locked again, audit chain ok" in restored.output
    # The restore's last transaction committed: the disposal, its record and audit events.
    restored_counts = counts(place.database_url)
    assert restored_counts["disposal_records"] == source_counts["disposal_records"] == 1
    kept_key = next(s.key for s in place.store.list(f"docs/{closed_docs[1]['id']}/"))
    assert place.store.stat(kept_key).retain_until is not None  # the rest is locked
    engine = make_engine(place.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            actions = set(session.scalars(select(AuditEvent.action)).all())
    finally:
        engine.dispose()
    assert {"backup.restored", "file.disposal_reapplied"} <= actions
    rerun = run(installation.env(place), "backup", "restore", installation.target_url)
    assert rerun.exit_code == 4 and "not empty" in rerun.output


@pytest.mark.parametrize("through", ["spool", "staging"])
def test_corrupt_blob_with_a_shared_checksum_leaves_the_good_copy(
    installation: Installation, source_api: Api, monkeypatch: pytest.MonkeyPatch, through: str
) -> None:
    if through == "staging":  # as every blob above the spool's limit goes
        monkeypatch.setattr(service, "SPOOL_MAX", 0)
    api = source_api
    o = office(api)
    f = factories.file(api, o.unit, factories.plan_item(api)["code"])
    content = b"%PDF-1.4\n" + os.urandom(3000)
    for name in ("original.pdf", "copy.pdf"):  # the same content twice: one checksum
        r = factories.upload(api, o.unit.clerk, f["id"], content, name=name)
        assert r.status_code == 201, r.text
    store = installation.source.store
    good, bad = sorted(s.key for s in store.list("docs/"))
    # The later key is copied second (one worker, in key order), after the good copy.
    damaged = bytearray(content)
    damaged[100] ^= 0x01
    store.put(bad, io.BytesIO(bytes(damaged)))
    env = installation.env(installation.source, EAKTE_BACKUP_WORKERS="1")

    created = run(env, "backup", "create", "--to", installation.target_url)
    verified = run(env, "backup", "verify", installation.target_url)
    assert verified.exit_code == 0, verified.output  # the good copy was not replaced
    # The backup is whole, but the store's damage is reported (and fails the command).
    assert created.exit_code == 6, created.output
    assert f"PROBLEM: {bad}: its content has sha256 {sha256(damaged).hexdigest()}" in (
        created.output
    )
    target = open_target(installation.target_url, installation.source.storage_url)
    by_key = {b["key"]: b["sha256"] for b in read_manifest(target)["blobs"]}
    assert by_key[good] == sha256(content).hexdigest()
    assert by_key[bad] == sha256(damaged).hexdigest()
    with target.open(BLOBS + by_key[good]) as reader:
        assert b"".join(reader) == content
    assert list(target.list("staging/")) == []

    place = installation.empty()
    restored = run(installation.env(place), "backup", "restore", installation.target_url)
    assert restored.exit_code == 0, restored.output
    with place.store.open(good) as reader:
        assert b"".join(reader) == content

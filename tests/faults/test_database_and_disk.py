"""PostgreSQL connections dropped under the app, and a filesystem store whose disk is full."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from eakte.db import make_engine, make_session_factory
from inbox.pipeline import Worker
from storage import FilesystemStore
from tests import factories
from tests.conftest import Api, api_for
from tests.faults.conftest import in_ci
from tests.inbox import corpus
from tests.inbox.conftest import numeric_plan_code
from tests.support.db import fresh_pg_database

pytestmark = pytest.mark.faults


@pytest.fixture
def own_pg_api(pg_server: str, tmp_path: Path) -> Iterator[tuple[Api, str]]:
    """The app on a PostgreSQL database of this test's own, whose backends it may kill."""
    with fresh_pg_database(pg_server) as url:
        engine = make_engine(url)
        try:
            for api in api_for(url, engine, FilesystemStore(tmp_path / "blobs")):
                yield api, url
        finally:
            engine.dispose()


def _terminate_backends(url: str) -> int:
    """pg_terminate_backend on every other connection to the database; returns how many."""
    u = make_url(url)
    dsn = f"host={u.host} port={u.port or 5432} user={u.username} dbname=postgres"
    if u.password:
        dsn += f" password={u.password}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (u.database,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def test_pool_recovers_after_postgresql_drops_every_connection(
    own_pg_api: tuple[Api, str],
) -> None:
    api, url = own_pg_api
    unit = factories.org_unit(api)
    item = factories.plan_item(api, code=numeric_plan_code())
    file = factories.file(api, unit, item["code"])
    mailroom = api.auth(["mailroom"], [unit.code])
    raw = corpus.simple(f"Antwort zu {file['reference']}", "Text.\n")
    queued = api.client.post("/api/v1/inbox", files={"file": ("a.eml", raw)}, headers=mailroom)
    assert queued.status_code == 202
    worker = Worker(make_session_factory(api.engine), api.store, api.settings)

    for _ in range(3):  # every pooled connection dies, three times over
        assert _terminate_backends(url) >= 1
        r = api.client.get(f"/api/v1/files/{file['id']}", headers=unit.clerk)
        assert r.status_code == 200, r.text
        r = factories.upload(api, unit.clerk, file["id"], b"written after the drop")
        assert r.status_code == 201, r.text
        assert api.client.get("/health").json()["database"] == "ok"
    _terminate_backends(url)
    worker.run_until_idle()
    shown = api.client.get(f"/api/v1/inbox/{queued.json()['id']}", headers=mailroom).json()
    assert shown["state"] == "filed", shown
    docs = api.client.get(f"/api/v1/files/{file['id']}/documents", headers=unit.clerk).json()
    assert len(docs) == 3 + 2  # three uploads, the mail's body and its original


@contextlib.contextmanager
def tiny_filesystem(size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted for the test; skipped (failed under CI) if mounting is refused."""
    mount_point = Path(tempfile.mkdtemp(prefix="eakte-full-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        mount_point.rmdir()
        reason = f"cannot mount a tmpfs for the disk-full test: {result.stderr.strip()}"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], timeout=30, check=True)
        mount_point.rmdir()


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_full_disk_gives_a_clear_error_and_leaves_no_partial_blob(
    pg_url: str, tmp_path: Path
) -> None:
    with tiny_filesystem("1m") as disk:
        store = FilesystemStore(disk / "blobs")
        engine = make_engine(pg_url)
        try:
            for api in api_for(pg_url, engine, store):
                unit = factories.org_unit(api)
                file = factories.file(api, unit, factories.plan_item(api)["code"])
                small = factories.upload(api, unit.clerk, file["id"], b"fits" * 100)
                assert small.status_code == 201, small.text
                before = _files_under(disk)

                r = factories.upload(api, unit.clerk, file["id"], b"\1" * (3 * 1024 * 1024))
                assert r.status_code == 507, r.text
                problem = r.json()
                assert r.headers["content-type"] == "application/problem+json"
                assert "space" in problem["detail"].lower()

                # No partial blob, no temporary file, no document row.
                assert _files_under(disk) == before
                docs = api.client.get(
                    f"/api/v1/files/{file['id']}/documents", headers=unit.clerk
                ).json()
                assert [d["id"] for d in docs] == [small.json()["id"]]
                assert shutil.disk_usage(disk).used < 512 * 1024
                # The store still works for what fits.
                again = factories.upload(api, unit.clerk, file["id"], b"still fits")
                assert again.status_code == 201, again.text
        finally:
            engine.dispose()

"""Fixity checks that meet disposals, receipts and a store that goes away mid-run."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from eakte.db import make_session_factory, unit_of_work
from eakte.documents.models import Document, DocumentVersion
from retention.fixity import run_fixity
from retention.models import FixityReport
from storage import BlobReader, BlobStore, FilesystemStore, RetentionMode, StorageUnavailable
from tests import factories
from tests.conftest import Api
from tests.retention.helpers import (
    Office,
    approved_run,
    blob_keys,
    close,
    file_with_documents,
    office,
)

LONG_AGO = "2012-06-01T10:00:00+02:00"


class StopsAfter:
    """The real store, except that it is unreachable from the `fail_at`-th read on."""

    def __init__(self, inner: BlobStore, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open(self, key: str, start: int = 0, end: int | None = None) -> BlobReader:
        self.reads += 1
        if self.reads >= self.fail_at:
            raise StorageUnavailable("S3 at 127.0.0.1:8333 is unreachable (read)")
        return self.inner.open(key, start, end)


def _flip_a_byte(store: BlobStore, key: str) -> None:
    if isinstance(store, FilesystemStore):
        path = store.root / key
        data = bytearray(path.read_bytes())
        data[10] ^= 0x01
        path.write_bytes(bytes(data))
        return
    client, bucket = store.client, store.bucket  # type: ignore[attr-defined]
    blob = client.get_object(bucket, key).read()
    flipped = blob[:10] + bytes([blob[10] ^ 1]) + blob[11:]
    client.put_object(bucket, key, io.BytesIO(flipped), len(flipped))


def _latest_report(api: Api) -> FixityReport:
    with unit_of_work(make_session_factory(api.engine)) as session:
        return session.scalars(
            select(FixityReport).order_by(FixityReport.started_at.desc()).limit(1)
        ).one()


def test_a_check_the_store_breaks_off_keeps_what_it_had_found(isolated_api: Api) -> None:
    api = isolated_api
    o = office(api)
    item = factories.plan_item(api)
    f, _ = file_with_documents(api, o, item["code"], documents=3)
    first, second, _third = blob_keys(api, f["id"])
    _flip_a_byte(api.store, first)

    with pytest.raises(StorageUnavailable):
        run_fixity(make_session_factory(api.engine), StopsAfter(api.store, 2), "test")  # type: ignore[arg-type]

    report = _latest_report(api)
    assert report.finished_at is None  # unfinished, not a clean bill of health
    assert (report.checked, report.mismatches, report.missing) == (1, 1, 0)
    assert [p["blob_key"] for p in report.problems] == [first]
    assert second not in {p["blob_key"] for p in report.problems}


def _received_with_one_blob_locked(api: Api, o: Office) -> dict[str, Any]:
    """A file the archive has received, one of whose blobs an Object Lock still keeps."""
    item = factories.plan_item(api, retention_years=5, archive_value="A")
    f, _ = file_with_documents(api, o, item["code"], documents=2)
    close(api, o, f["id"], LONG_AGO)
    run = approved_run(api, o, date.today().isoformat())
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/execute", headers=o.anna)
    assert r.status_code == 200, r.text
    assert api.client.get(
        f"/api/v1/retention/runs/{run['id']}/package", headers=o.anna
    ).status_code == 200
    # Deleted in document order: the first document's blob goes, the second's is kept.
    keys = [
        b.key
        for d in api.client.get(f"/api/v1/files/{f['id']}/documents", headers=o.anna).json()
        for b in api.store.list(f"docs/{d['id']}/")
    ]
    assert len(keys) == 2
    with unit_of_work(make_session_factory(api.engine)) as session:
        ordered = list(
            session.scalars(
                select(DocumentVersion.blob_key)
                .join(Document, Document.id == DocumentVersion.document_id)
                .where(Document.file_id == uuid.UUID(f["id"]))
                .order_by(Document.created_at, Document.id)
            )
        )
    api.store.set_retention(
        ordered[1], datetime.now(UTC) + timedelta(days=1), RetentionMode.GOVERNANCE
    )
    r = api.client.post(
        f"/api/v1/retention/runs/{run['id']}/receipt",
        json={"archive_reference": "StadtA 7"},
        headers=o.bert,
    )
    assert r.status_code == 200 and r.json()["items"] == {"received": 1}, r.text
    assert not api.store.exists(ordered[0]) and api.store.exists(ordered[1])
    return f


def test_content_deleted_after_the_archives_receipt_is_not_missing(isolated_api: Api) -> None:
    api = isolated_api
    o = office(api)
    f = _received_with_one_blob_locked(api, o)

    report = run_fixity(make_session_factory(api.engine), api.store, "test")

    assert report.problems == [], f["reference"]
    assert (report.mismatches, report.missing) == (0, 0)


def test_progress_counts_only_the_versions_that_are_read(isolated_api: Api) -> None:
    api = isolated_api
    o = office(api)
    kept = factories.plan_item(api, retention_years=50, archive_value="V")
    gone = factories.plan_item(api, retention_years=5, archive_value="V")
    file_with_documents(api, o, kept["code"], documents=1)
    disposed, _ = file_with_documents(api, o, gone["code"], documents=2)
    close(api, o, disposed["id"], LONG_AGO)
    run = approved_run(api, o, date.today().isoformat())
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/execute", headers=o.anna)
    assert r.status_code == 200 and r.json()["items"] == {"done": 1}, r.text

    seen: list[tuple[int, int]] = []
    report = run_fixity(
        make_session_factory(api.engine), api.store, "test", lambda n, t: seen.append((n, t))
    )

    assert report.checked == 1
    assert seen == [(1, 1)]

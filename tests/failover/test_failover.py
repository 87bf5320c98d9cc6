"""Failover without data loss: a promoted standby, a killed app node, retried uploads."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from eakte.auth.tokens import issue_token
from eakte.migrate import upgrade
from storage import S3Store, store_from_url
from tests.conftest import TEST_SECRET, make_settings
from tests.failover.clusters import Cluster
from tests.support.s3 import S3Server, remove_bucket
from tests.support.server import clean_env, serve

pytestmark = pytest.mark.slow

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary with a synchronous streaming standby (so no acknowledged commit is lost)."""
    primary, standby = Cluster(), Cluster()
    try:
        primary.start()
        primary.sql("CREATE DATABASE eakte")
        standby.start_standby_of(primary)
        primary.wait_for_standby()
        primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.sql("SELECT pg_reload_conf()")
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()


class Uploader:
    """Clients that upload until told to stop, retrying each upload on the other node."""

    def __init__(self, bases: list[str], token: str, file_id: str) -> None:
        self.bases = bases
        self.headers = {"Authorization": f"Bearer {token}"}
        self.url = f"/api/v1/files/{file_id}/documents"
        self.acked: dict[str, tuple[str, str]] = {}  # key -> (document id, sha256)
        self.retries = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def upload(self, key: str, content: bytes) -> httpx.Response:
        """One upload, retried against alternating nodes until one acknowledges it."""
        attempt = 0
        deadline = time.monotonic() + 45
        while True:
            base = self.bases[attempt % len(self.bases)]
            try:
                r = httpx.post(
                    base + self.url,
                    files={"file": ("brief.pdf", content)},
                    headers={**self.headers, "Idempotency-Key": key},
                    timeout=10,
                )
                if r.status_code < 500:
                    return r
            except httpx.TransportError:
                pass
            attempt += 1
            with self.lock:
                self.retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"upload {key} found no node for 45 s")
            time.sleep(0.1)

    def run(self) -> None:
        """Upload documents until stopped."""
        while not self.stop.is_set():
            key = uuid.uuid4().hex
            content = PDF + os.urandom(300)
            r = self.upload(key, content)
            assert r.status_code == 201, r.text
            with self.lock:
                self.acked[key] = (r.json()["id"], hashlib.sha256(content).hexdigest())

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Wait until `count` uploads are acknowledged."""
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} uploads acknowledged"
            time.sleep(0.05)


def test_failover_to_promoted_standby_and_other_node_loses_nothing(
    clusters: tuple[Cluster, Cluster], s3_server: S3Server, tmp_path: Path
) -> None:
    primary, standby = clusters
    database_url = (
        f"postgresql+psycopg://postgres@/eakte?host=127.0.0.1:{primary.port}"
        f"&host=127.0.0.1:{standby.port}&target_session_attrs=read-write"
    )
    upgrade(database_url)
    bucket = f"eakte-failover-{uuid.uuid4().hex[:12]}"
    store = store_from_url(s3_server.url(bucket))
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    env = clean_env(
        EAKTE_DATABASE_URL=database_url,
        EAKTE_STORAGE_URL=s3_server.url(bucket),
        EAKTE_JWT_SECRET=TEST_SECRET,
        EAKTE_CTI_EMBEDDED="false",
    )
    settings = make_settings(database_url)
    admin = {"Authorization": f"Bearer {issue_token(settings, 'admin', ['admin'], [])}"}
    clerk_token = issue_token(settings, "clerk", ["clerk"], ["FO1"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        with ExitStack() as stack:
            a, proc_a = stack.enter_context(serve(tmp_path / "a", env))
            b, _ = stack.enter_context(serve(tmp_path / "b", env))
            assert httpx.post(a + "/api/v1/org-units", json={"code": "FO1", "name": "Amt"},
                              headers=admin).status_code == 201
            plan = {"code": "10.01", "title": "Akten", "retention_years": 5,
                    "archive_value": "V"}
            assert httpx.post(b + "/api/v1/plan-items", json=plan,
                              headers=admin).status_code == 201
            r = httpx.post(a + "/api/v1/files", headers={"Authorization": f"Bearer {clerk_token}"},
                           json={"title": "Bauantrag", "plan_code": "10.01", "org_unit": "FO1"})
            assert r.status_code == 201, r.text
            file_id = r.json()["id"]

            uploader = Uploader([a, b], clerk_token, file_id)
            threads = [threading.Thread(target=uploader.run) for _ in range(2)]
            for t in threads:
                t.start()
            try:
                uploader.wait_for(10)
                primary.crash()  # under load
                time.sleep(0.5)
                standby.promote()
                after_failover = len(uploader.acked)
                uploader.wait_for(after_failover + 10)
                # An answer lost on the way back: the client retries on the other node,
                # which replays the first node's response instead of storing a duplicate.
                content = PDF + os.urandom(300)
                headers = {**uploader.headers, "Idempotency-Key": "lost-answer"}
                first = httpx.post(a + uploader.url, files={"file": ("x.pdf", content)},
                                   headers=headers, timeout=10)
                retry = httpx.post(b + uploader.url, files={"file": ("x.pdf", content)},
                                   headers=headers, timeout=10)
                assert first.status_code == retry.status_code == 201, retry.text
                assert retry.json()["id"] == first.json()["id"]
                assert retry.headers["Idempotent-Replayed"] == "true"
                with uploader.lock:
                    uploader.acked["lost-answer"] = (
                        first.json()["id"], hashlib.sha256(content).hexdigest()
                    )
                proc_a.kill()  # one app node dies mid-request
                after_kill = len(uploader.acked)
                uploader.wait_for(after_kill + 10)
            finally:
                uploader.stop.set()
                for t in threads:
                    t.join(timeout=60)
            assert uploader.retries > 0  # the failovers were felt, and retried

            # A key reused (as a client bug would) for another body is refused, not replayed.
            key = next(iter(uploader.acked))
            reused = uploader.upload(key, PDF + b"other")
            assert reused.status_code == 422
            headers = {"Authorization": f"Bearer {clerk_token}"}
            listing = httpx.get(f"{b}/api/v1/files/{file_id}/documents?limit=1000",
                                headers=headers, timeout=10)
            assert listing.status_code == 200
            stored = {d["id"]: d["latest"]["sha256"] for d in listing.json()}
            expected = dict(uploader.acked.values())
            assert stored == expected  # every acknowledged upload, each exactly once
            for document_id, sha in expected.items():
                content = httpx.get(
                    f"{b}/api/v1/documents/{document_id}/versions/1/content",
                    headers=headers, timeout=10,
                )
                assert hashlib.sha256(content.content).hexdigest() == sha
    finally:
        remove_bucket(s3_server.client(), bucket)

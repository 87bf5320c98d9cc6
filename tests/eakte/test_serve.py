"""`eakte serve` with the embedded defaults: what `make run` starts."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.db import fresh_pg_database
from tests.support.server import child_processes, clean_env, eakte, serve


@pytest.mark.slow
def test_embedded_server_is_healthy_and_serves_documents(tmp_path: Path) -> None:
    with serve(tmp_path) as (base, _):
        health = httpx.get(base + "/health").json()
        assert health["database"] == "ok" and health["storage"] == "ok"
        assert httpx.get(base + "/openapi.json").json()["info"]["title"] == "eakte"

        eakte(tmp_path, "orgunit", "add", "10", "Hauptamt")
        eakte(tmp_path, "plan", "add", "01.02", "Organisation")
        token = eakte(
            tmp_path, "token", "--sub", "anna", "--role", "clerk", "--unit", "10"
        ).stdout.strip()
        h = {"Authorization": f"Bearer {token}"}
        f = httpx.post(
            base + "/api/v1/files", json={"title": "Test", "plan_code": "01.02"}, headers=h
        ).json()
        content = os.urandom(200_000)
        r = httpx.post(
            f"{base}/api/v1/files/{f['id']}/documents",
            files={"file": ("a.bin", content)},
            headers=h,
        )
        assert r.status_code == 201, r.text
        doc = r.json()
        got = httpx.get(f"{base}/api/v1/documents/{doc['id']}/versions/1/content", headers=h)
        assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(content).hexdigest()
    assert any((tmp_path / "var" / "blobs").rglob("*"))


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_large_upload_streams_without_buffering(tmp_path: Path) -> None:
    size = 512 * 1024 * 1024
    with serve(tmp_path) as (base, proc):
        eakte(tmp_path, "orgunit", "add", "10", "Hauptamt")
        eakte(tmp_path, "plan", "add", "01.02", "Organisation")
        token = eakte(
            tmp_path, "token", "--sub", "anna", "--role", "clerk", "--unit", "10"
        ).stdout.strip()
        h = {"Authorization": f"Bearer {token}"}
        f = httpx.post(
            base + "/api/v1/files", json={"title": "Groß", "plan_code": "01.02"}, headers=h
        ).json()
        before = _peak_rss_kib(proc.pid)
        digest = hashlib.sha256()
        boundary = "eakteboundary"

        def body():  # type: ignore[no-untyped-def]
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="big.bin"\r\n\r\n'
            ).encode()
            block = os.urandom(1024 * 1024)
            for _ in range(size // len(block)):
                digest.update(block)
                yield block
            yield f"\r\n--{boundary}--\r\n".encode()

        r = httpx.post(
            f"{base}/api/v1/files/{f['id']}/documents",
            content=body(),
            headers={**h, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=300,
        )
        assert r.status_code == 201, r.text
        assert r.json()["latest"]["sha256"] == digest.hexdigest()
        assert r.json()["latest"]["size"] == size
        grown_mib = (_peak_rss_kib(proc.pid) - before) / 1024
        # Buffering would grow the server by the upload's size (512 MiB).
        assert grown_mib < 100, f"server grew by {grown_mib:.0f} MiB during a 512 MiB upload"


@pytest.mark.slow
def test_several_server_processes_share_the_port(tmp_path: Path, pg_server: str) -> None:
    with fresh_pg_database(pg_server) as url:
        env = clean_env(
            EAKTE_DATABASE_URL=url, EAKTE_STORAGE_URL=f"file://{tmp_path}/blobs",
            EAKTE_JWT_SECRET="a-secret-the-processes-share-0123456789",
            EAKTE_WORKER_IN_SERVE="false", EAKTE_CTI_EMBEDDED="false",
        )  # fmt: skip
        eakte(tmp_path, "orgunit", "add", "10", "Hauptamt", env=env)
        eakte(tmp_path, "plan", "add", "01.02", "Organisation", env=env)
        token = eakte(
            tmp_path, "token", "--sub", "anna", "--role", "clerk", "--unit", "10", env=env
        ).stdout.strip()
        h = {"Authorization": f"Bearer {token}"}
        with serve(tmp_path, env, args=("--workers", "2")) as (base, proc):
            servers = [c for c in child_processes(proc.pid)
                       if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
            assert len(servers) == 2
            f = httpx.post(
                base + "/api/v1/files", json={"title": "Test", "plan_code": "01.02"}, headers=h
            ).json()
            contents = [os.urandom(50_000 + i) for i in range(12)]

            def upload(content: bytes) -> str:
                with httpx.Client(base_url=base, headers=h) as client:  # a connection each
                    r = client.post(f"/api/v1/files/{f['id']}/documents",
                                    files={"file": ("a.bin", content)})
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

            with ThreadPoolExecutor(6) as pool:
                ids = list(pool.map(upload, contents))
            for document_id, content in zip(ids, contents, strict=True):
                got = httpx.get(
                    f"{base}/api/v1/documents/{document_id}/versions/1/content", headers=h
                )
                assert got.content == content


def test_several_server_processes_need_postgresql(tmp_path: Path) -> None:
    result = eakte(tmp_path, "serve", "--workers", "2", check=False)

    assert result.returncode == 2
    assert "several server processes need PostgreSQL" in result.stderr

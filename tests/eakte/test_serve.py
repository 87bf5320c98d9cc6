"""`eakte serve` with the embedded defaults: what `make run` starts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from tests.support.server import eakte, serve


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

"""FilesystemStore: atomic writes, clean failures, and lock state kept beside the blobs."""

from __future__ import annotations

import contextlib
import io
import json
import resource
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import (
    BlobLocked,
    BlobNotFound,
    FilesystemStore,
    InvalidKey,
    RetentionMode,
    StorageError,
)
from tests.storage.streams import GeneratedStream

MiB = 1024 * 1024


def new_key() -> str:
    return f"docs/{uuid.uuid4()}/{uuid.uuid4()}"


def files_under(root: Path) -> list[str]:
    """Every file below root, hidden ones included, relative to root."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_failed_put_leaves_no_temp_file_and_no_blob(fs_store: FilesystemStore) -> None:
    key = new_key()
    stream = GeneratedStream(4 * MiB, fail_at=3 * MiB, error=ConnectionResetError("gone"))

    with pytest.raises(ConnectionResetError, match="gone"):
        fs_store.put(key, stream)  # type: ignore[arg-type]

    assert set(files_under(fs_store.root)) <= {".lock"}
    assert list((fs_store.root / ".tmp").iterdir()) == []
    assert not fs_store.exists(key)
    assert list(fs_store.list()) == []


def test_failed_overwrite_keeps_the_previous_content(fs_store: FilesystemStore) -> None:
    key = new_key()
    fs_store.put(key, io.BytesIO(b"version 1"))

    with pytest.raises(ValueError, match="broken"):
        fs_store.put(
            key,
            GeneratedStream(2 * MiB, fail_at=MiB, error=ValueError("broken")),  # type: ignore[arg-type]
        )

    with fs_store.open(key) as reader:
        assert b"".join(reader) == b"version 1"


@contextlib.contextmanager
def file_size_limited(limit: int) -> Iterator[None]:
    """Limit file size for this process, as a nearly full disk would: writes fail past it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


def test_write_error_raises_storage_error_and_cleans_up(fs_store: FilesystemStore) -> None:
    key = new_key()

    with file_size_limited(2 * MiB), pytest.raises(StorageError, match="file size limit") as raised:
        fs_store.put(key, GeneratedStream(3 * MiB))  # type: ignore[arg-type]

    assert "nothing was stored" in str(raised.value)
    assert list((fs_store.root / ".tmp").iterdir()) == []
    assert not fs_store.exists(key)


def test_list_shows_neither_lock_sidecars_nor_temp_files(fs_store: FilesystemStore) -> None:
    held, plain = "docs/a/held", "docs/a/plain"
    fs_store.put(held, io.BytesIO(b"x"))
    fs_store.put(plain, io.BytesIO(b"y"))
    fs_store.set_legal_hold(held, True)
    fs_store.set_retention(plain, datetime.now(UTC) + timedelta(days=1), RetentionMode.GOVERNANCE)
    (fs_store.root / ".tmp" / "put-stale").write_bytes(b"left by a crash")

    assert [stat.key for stat in fs_store.list()] == [held, plain]
    assert ".tmp/put-stale" in files_under(fs_store.root)
    assert "docs/a/.held.lock.json" in files_under(fs_store.root)


def test_lock_state_survives_a_new_store_on_the_same_root(fs_store: FilesystemStore) -> None:
    key = new_key()
    fs_store.put(key, io.BytesIO(b"x"))
    fs_store.set_retention(key, datetime.now(UTC) + timedelta(days=1), RetentionMode.COMPLIANCE)

    again = FilesystemStore(fs_store.root)

    with pytest.raises(BlobLocked, match="COMPLIANCE"):
        again.delete(key)


def test_unreadable_lock_state_refuses_deletion(fs_store: FilesystemStore) -> None:
    key = "docs/a/b"
    fs_store.put(key, io.BytesIO(b"x"))
    fs_store.set_legal_hold(key, True)
    (fs_store.root / "docs" / "a" / ".b.lock.json").write_text("{not json")

    with pytest.raises(StorageError, match="unreadable"):
        fs_store.delete(key)

    assert (fs_store.root / "docs" / "a" / "b").exists()


def test_sidecar_records_retention_and_hold(fs_store: FilesystemStore) -> None:
    key = "docs/a/b"
    fs_store.put(key, io.BytesIO(b"x"))
    fs_store.set_retention(
        key, datetime(2099, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC), RetentionMode.COMPLIANCE
    )
    fs_store.set_legal_hold(key, True)

    recorded = json.loads((fs_store.root / "docs" / "a" / ".b.lock.json").read_text())

    # Rounded up to a whole second, as S3 stores it.
    assert recorded == {
        "retain_until": "2099-01-01T12:00:01+00:00",
        "mode": "COMPLIANCE",
        "legal_hold": True,
    }


def test_delete_removes_directories_left_empty(fs_store: FilesystemStore) -> None:
    key = "docs/d1/d2/blob"
    fs_store.put(key, io.BytesIO(b"x"))
    fs_store.put("docs/keep", io.BytesIO(b"y"))

    fs_store.delete(key)

    assert not (fs_store.root / "docs" / "d1").exists()
    assert (fs_store.root / "docs" / "keep").exists()


def test_a_key_cannot_be_both_a_blob_and_a_prefix(fs_store: FilesystemStore) -> None:
    # S3 allows "docs/a" and "docs/a/b" side by side; a directory tree cannot. Application
    # keys (docs/<uuid>/<uuid>) never collide like this.
    fs_store.put("docs/a", io.BytesIO(b"x"))

    with pytest.raises(InvalidKey, match="prefix"):
        fs_store.put("docs/a/b", io.BytesIO(b"y"))
    with pytest.raises(InvalidKey, match="prefix"):
        fs_store.put("docs", io.BytesIO(b"z"))
    with pytest.raises(BlobNotFound):
        fs_store.stat("docs")
    assert list((fs_store.root / ".tmp").iterdir()) == []


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = FilesystemStore("var/blobs")
    monkeypatch.chdir("/")

    store.put("docs/a/b", io.BytesIO(b"x"))

    assert (tmp_path / "var" / "blobs" / "docs" / "a" / "b").read_bytes() == b"x"


def test_check_reports_an_unusable_root(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "blobs")
    (store.root / ".tmp").rmdir()
    (store.root / ".tmp").write_text("not a directory")

    with pytest.raises(StorageError, match="not usable"):
        store.check()

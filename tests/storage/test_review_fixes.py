"""Regressions found in a review of the storage package."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import BlobReader, FilesystemStore, StorageError, download, mask_url, parse_s3_url

SECRET = "wJalr/XUtnFEMI+K7MDENG"


@pytest.mark.parametrize("secret", [SECRET, "ab?cd", "ab#cd"])
def test_mask_url_hides_a_secret_with_unencoded_url_delimiters(secret: str) -> None:
    # AWS-style secrets often contain "/", which ends urlsplit's host part early.
    url = f"s3://AKIA:{secret}@s3.example.org:9000/blobs"
    masked = mask_url(url)
    assert secret not in masked
    assert masked.startswith("s3://AKIA:***@")


def test_parse_s3_url_error_does_not_leak_an_unencoded_secret() -> None:
    with pytest.raises(ValueError) as info:
        parse_s3_url(f"s3://AKIA:{SECRET}@s3.example.org:9000/blobs")
    assert SECRET not in str(info.value)


def test_s3_location_repr_hides_the_secret_key() -> None:
    location = parse_s3_url("s3://AKIA:topsecret@s3.example.org:9000/blobs")
    assert location.secret_key == "topsecret"
    assert "topsecret" not in repr(location)


class _FailingStore:
    """Yields one chunk of a blob, then fails as a dropped connection would."""

    def open(self, key: str, start: int = 0, end: int | None = None) -> BlobReader:
        def chunks() -> Iterator[bytes]:
            yield b"first half"
            raise StorageError("connection lost")

        return BlobReader(chunks(), lambda: None, start=0, end=19, size=20)


def test_download_failure_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(StorageError):
        download(_FailingStore(), "docs/a/b", target)  # type: ignore[arg-type]
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_download_failure_keeps_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous")
    with pytest.raises(StorageError):
        download(_FailingStore(), "docs/a/b", target)  # type: ignore[arg-type]
    assert target.read_bytes() == b"previous"


def test_download_writes_the_blob(fs_store: FilesystemStore, tmp_path: Path) -> None:
    fs_store.put("docs/a/b", io.BytesIO(b"content"))
    target = tmp_path / "out.bin"
    assert download(fs_store, "docs/a/b", target) == 7
    assert target.read_bytes() == b"content"
    assert [p.name for p in tmp_path.iterdir() if p.name != fs_store.root.name] == ["out.bin"]

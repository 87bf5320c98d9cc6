"""Moving blob content around without holding it in memory: copy, download, stream adapters."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from storage.base import BlobStore, PutResult


class ChunkStream(io.RawIOBase):
    """A readable file object over an iterator of byte chunks (e.g. a BlobReader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._pos >= len(self._pending):
            try:
                self._pending, self._pos = next(self._chunks), 0
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending) - self._pos)
        buffer[:n] = self._pending[self._pos : self._pos + n]
        self._pos += n
        return n


def copy_blob(
    source: BlobStore, key: str, target: BlobStore, target_key: str, *, max_size: int | None = None
) -> PutResult:
    """Stream a blob from one key (or store) to another; returns what was written."""
    with source.open(key) as reader:
        return target.put(target_key, io.BufferedReader(ChunkStream(reader), 1024 * 1024),
                          max_size=max_size)


def download(store: BlobStore, key: str, path: Path) -> int:
    """Write a blob to a local file; returns its size.

    The bytes go to a temporary file next to `path` that is renamed into place once
    complete, so a failed read never leaves a truncated file under `path`.
    """
    size = 0
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out, store.open(key) as reader:
            for chunk in reader:
                out.write(chunk)
                size += len(chunk)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return size

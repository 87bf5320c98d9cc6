"""File-like test inputs that generate their bytes on the fly instead of holding them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

BLOCK = 64 * 1024


def generated_blocks(size: int, seed: int = 0) -> Iterator[bytes]:
    """Deterministic blocks that differ from each other, so reordering or loss shows."""
    index = 0
    remaining = size
    while remaining > 0:
        block = hashlib.sha256(f"{seed}:{index}".encode()).digest() * (BLOCK // 32)
        yield block[: min(BLOCK, remaining)]
        remaining -= BLOCK
        index += 1


def generated_sha256(size: int, seed: int = 0) -> str:
    """The SHA-256 of what `GeneratedStream(size, seed)` yields."""
    digest = hashlib.sha256()
    for block in generated_blocks(size, seed):
        digest.update(block)
    return digest.hexdigest()


def generated_bytes(size: int, seed: int = 0) -> bytes:
    """All of `GeneratedStream(size, seed)` at once, for small sizes."""
    return b"".join(generated_blocks(size, seed))


class GeneratedStream:
    """A read-only binary stream backed by a generator; it never holds more than a block.

    `read(n)` returns at most one block, as a socket would, so callers must loop. If `fail_at`
    is given, reading past that many bytes raises `error` (a client that went away).
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        *,
        fail_at: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        self._blocks = generated_blocks(size, seed)
        self._pending = b""
        self._fail_at = fail_at
        self._error = error or ConnectionResetError("client went away")
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        if self._fail_at is not None and self.position >= self._fail_at:
            raise self._error
        if not self._pending:
            self._pending = next(self._blocks, b"")
        limit = len(self._pending) if size is None or size < 0 else size
        data, self._pending = self._pending[:limit], self._pending[limit:]
        self.position += len(data)
        return data

    def readable(self) -> bool:
        return True

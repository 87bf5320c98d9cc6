"""The BlobStore protocol, its result types, key rules and the streamed reader."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import BinaryIO, Protocol, runtime_checkable

from storage.errors import InvalidKey, InvalidRange

#: Size of the chunks that `BlobStore.open` yields.
CHUNK_SIZE = 64 * 1024

#: S3 allows object names of up to 1024 bytes (UTF-8).
MAX_KEY_BYTES = 1024
#: Most filesystems allow names of up to 255 bytes; S3 keys obey the same rule so both stores
#: accept exactly the same keys.
MAX_SEGMENT_BYTES = 255

# C0 and C1 control characters and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class PutResult:
    """What `put` stored: the key, its size in bytes and the hex SHA-256 of its content."""

    key: str
    size: int
    sha256: str


class RetentionMode(StrEnum):
    """Object Lock retention modes, with S3's meaning.

    GOVERNANCE: deletion is refused unless the caller explicitly bypasses it.
    COMPLIANCE: nobody can delete the blob or shorten the retention before it ends.
    """

    GOVERNANCE = "GOVERNANCE"
    COMPLIANCE = "COMPLIANCE"


@dataclass(frozen=True)
class BlobStat:
    """Metadata of a stored blob; `retain_until` is kept even after the date has passed."""

    key: str
    size: int
    last_modified: datetime
    retain_until: datetime | None
    legal_hold: bool
    retention_mode: RetentionMode | None = None


class BlobReader:
    """A streamed read of one byte range of a blob: an iterator of chunks that must be closed.

    `BlobStore.open()` performs the request itself, so `BlobNotFound` and `InvalidRange` are
    raised by `open()`, before the first byte reaches a client. Use it as a context manager::

        with store.open(key, start=0, end=99) as reader:
            for chunk in reader:  # bytes chunks of about CHUNK_SIZE
                ...

    or hand it to a streaming response and call `close()` when the response ends. Reading to
    the end closes it as well; `close()` may be called more than once.

    `start` and `end` are the resolved, inclusive byte positions (HTTP `Content-Range`); for an
    empty blob `end == start - 1`. `size` is the size of the whole blob and `length` the
    number of bytes this reader yields.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        close: Callable[[], None],
        *,
        start: int,
        end: int,
        size: int,
    ) -> None:
        self._chunks = iter(chunks)
        self._close = close
        self._closed = False
        self.start = start
        self.end = end
        self.size = size

    @property
    def length(self) -> int:
        """Number of bytes this reader yields."""
        return self.end - self.start + 1

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            return next(self._chunks)
        except BaseException:
            # StopIteration included: the end of the data releases the file or connection.
            self.close()
            raise

    def close(self) -> None:
        """Release the file handle or HTTP connection."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class BlobStore(Protocol):
    """Where document content lives: an S3 bucket or a directory tree.

    Keys are made by the application (`docs/<uuid>/<uuid>`, `inbox/<uuid>/original`), never
    taken from user input, and checked by `validate_key`.
    """

    @property
    def supports_object_lock(self) -> bool:
        """True if retention and legal hold are enforced (S3 Object Lock or in code)."""
        ...

    def put(
        self,
        key: str,
        stream: BinaryIO,
        *,
        max_size: int | None = None,
        content_type: str = "application/octet-stream",
        new_key: bool = False,
    ) -> PutResult:
        """Store the stream under key, chunk by chunk, and return its size and SHA-256.

        Raises BlobTooLarge (and stores nothing) past `max_size` bytes, and BlobLocked if the
        key exists and is under retention or legal hold. `new_key=True` is the caller's
        word that the key was never used (it names a UUID made for this content), so the
        store need not look for content to replace.
        """
        ...

    def put_bytes(
        self,
        key: str,
        data: bytes,
        sha256: str,
        *,
        content_type: str = "application/octet-stream",
        new_key: bool = False,
    ) -> PutResult:
        """Store content the caller holds in memory and has hashed (`sha256`, hex).

        As `put`, without a size limit; a store may use `sha256` instead of hashing the
        bytes again.
        """
        ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> BlobReader:
        """Open bytes `start`..`end` (inclusive, `end=None` for the rest) for a streamed read.

        An `end` past the blob is cut to its last byte; a `start` past it raises InvalidRange
        (except the default full read, which also works on an empty blob).
        """
        ...

    def stat(self, key: str) -> BlobStat:
        """Return size, time and lock state of the blob; BlobNotFound if missing."""
        ...

    def exists(self, key: str) -> bool:
        """True if a blob is stored under key."""
        ...

    def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        """Delete the blob for good (all versions); a missing key is not an error.

        Raises BlobLocked while a COMPLIANCE retention runs, while a GOVERNANCE retention runs
        and `bypass_governance` is false, or while a legal hold is on.
        """
        ...

    def list(self, prefix: str = "") -> Iterator[BlobStat]:
        """Yield the blobs whose key starts with prefix, in key order."""
        ...

    def set_retention(self, key: str, until: datetime, mode: RetentionMode) -> None:
        """Protect the blob until `until` (timezone-aware, rounded up to a whole second).

        A running retention can only be extended in the same mode; shortening it or changing
        its mode raises BlobLocked (S3 semantics without the governance bypass).
        """
        ...

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Switch the legal hold of the blob on or off."""
        ...

    def check(self) -> None:
        """Raise StorageUnavailable with a readable reason unless the store is usable."""
        ...


def validate_key(key: str) -> str:
    """Return key unchanged if it is a valid blob key, else raise InvalidKey.

    A key is a `/`-separated relative path of non-empty segments; no segment may be `.`,
    `..` or start with a dot (dot names are reserved for the stores' own files), and no
    backslashes or control characters are allowed.
    """
    if not isinstance(key, str):
        raise InvalidKey(repr(key), "a key must be a string")
    if not key:
        raise InvalidKey(key, "the key is empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(key, f"longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(key):
        raise InvalidKey(key, "contains a control character")
    if "\\" in key:
        raise InvalidKey(key, "contains a backslash")
    if key.startswith("/"):
        raise InvalidKey(key, "is an absolute path")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey(key, "is not valid Unicode") from None
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(key, "has an empty path segment")
        if segment in (".", ".."):
            raise InvalidKey(key, f"has a {segment!r} path segment")
        if segment.startswith("."):
            raise InvalidKey(key, "has a path segment starting with '.'")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(key, f"has a path segment longer than {MAX_SEGMENT_BYTES} bytes")
    return key


def validate_prefix(prefix: str) -> str:
    """Return prefix unchanged if it is empty or the start of a valid key, else InvalidKey."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def resolve_range(key: str, start: int, end: int | None, size: int) -> tuple[int, int]:
    """Turn a requested inclusive range into the bytes to send, with HTTP Range rules."""
    if start < 0:
        raise ValueError(f"range start must not be negative, got {start}")
    if end is not None and end < start:
        raise ValueError(f"range end {end} is before its start {start}")
    if start == 0 and end is None:
        return 0, size - 1
    if start >= size:
        raise InvalidRange(key, start, end, size)
    return start, size - 1 if end is None else min(end, size - 1)

"""Exceptions raised by blob stores; every one is a StorageError."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class StorageError(Exception):
    """A blob store operation failed; the message says what and why."""


class InvalidKey(StorageError, ValueError):
    """A blob key that is not allowed (empty, absolute, `..`, control characters, ...)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid blob key {key!r}: {reason}")
        self.key = key
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.reason))


class BlobNotFound(StorageError):
    """No blob exists under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"blob {key!r} does not exist")
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key,))


class BlobLocked(StorageError):
    """The blob is protected by a retention period or a legal hold, so the change is refused."""

    def __init__(
        self,
        key: str,
        reason: str,
        *,
        retain_until: datetime | None = None,
        legal_hold: bool = False,
    ) -> None:
        super().__init__(f"blob {key!r} is locked: {reason}")
        self.key = key
        self.reason = reason
        self.retain_until = retain_until
        self.legal_hold = legal_hold

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments cannot travel through the default pickling of exceptions.
        return (_rebuild_blob_locked, (self.key, self.reason, self.retain_until, self.legal_hold))


def _rebuild_blob_locked(
    key: str, reason: str, retain_until: datetime | None, legal_hold: bool
) -> BlobLocked:
    return BlobLocked(key, reason, retain_until=retain_until, legal_hold=legal_hold)


class BlobTooLarge(StorageError):
    """The stream given to `put` was longer than `max_size`; nothing was stored."""

    def __init__(self, key: str, max_size: int) -> None:
        super().__init__(f"blob {key!r} exceeds the maximum size of {max_size} bytes")
        self.key = key
        self.max_size = max_size

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.max_size))


class StorageFull(StorageError):
    """The store has no space left (disk full or quota exceeded); nothing was stored."""


class InvalidRange(StorageError):
    """A byte range that does not overlap the blob (HTTP 416)."""

    def __init__(self, key: str, start: int, end: int | None, size: int | None) -> None:
        wanted = f"{start}-{'' if end is None else end}"
        of = "" if size is None else f" of a {size}-byte blob"
        super().__init__(f"range {wanted} is not satisfiable for blob {key!r}{of}")
        self.key = key
        self.start = start
        self.end = end
        self.size = size

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.start, self.end, self.size))


class StorageUnavailable(StorageError):
    """The store cannot serve requests now (unreachable, timeout, 5xx, refused credentials).

    Callers may retry later; the API answers 503.
    """

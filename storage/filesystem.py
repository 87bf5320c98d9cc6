"""FilesystemStore: blobs as files in a directory tree, with Object Lock rules enforced in code."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from storage._locking import (
    normalize_until,
    now_utc,
    refuse_delete,
    refuse_overwrite,
    refuse_retention_change,
)
from storage.base import (
    CHUNK_SIZE,
    BlobReader,
    BlobStat,
    PutResult,
    RetentionMode,
    resolve_range,
    validate_key,
    validate_prefix,
)
from storage.errors import (
    BlobNotFound,
    BlobTooLarge,
    InvalidKey,
    StorageError,
    StorageFull,
    StorageUnavailable,
)

logger = logging.getLogger(__name__)

# Bytes read from the caller's stream per write; large enough for few syscalls, small enough
# that a 2 GB upload never sits in memory.
_WRITE_CHUNK = 1024 * 1024

# Names under the root that keys can never take, since no key segment may start with a dot.
_TEMP_DIR = ".tmp"
_LOCK_FILE = ".lock"
_SIDECAR_SUFFIX = ".lock.json"


class FilesystemStore:
    """Blobs as files under `root`, for the embedded default and for tests.

    Layout: the blob of key `docs/a/b` is the file `root/docs/a/b`; its retention and legal
    hold live in the sidecar `root/docs/a/.b.lock.json`. Uploads go to `root/.tmp/` first, are
    fsynced and renamed into place, so a half-written blob is never visible under its key.
    Changes of lock state, deletions and the final rename of a put take an exclusive `flock`
    on `root/.lock`, so several processes (API, workers) can share one root on a local disk.
    """

    def __init__(self, root: Path | str) -> None:
        """Use (and create if missing) the directory `root`; a relative one is made absolute."""
        self.root = Path(root).absolute()
        self._temp_dir = self.root / _TEMP_DIR
        try:
            self._temp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot create the blob directory {self.root}: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"FilesystemStore(root={str(self.root)!r})"

    @property
    def supports_object_lock(self) -> bool:
        """Always true: retention and legal hold are enforced in code."""
        return True

    # --- writing -------------------------------------------------------------------------

    def put(
        self,
        key: str,
        stream: BinaryIO,
        *,
        max_size: int | None = None,
        content_type: str = "application/octet-stream",
        new_key: bool = False,
    ) -> PutResult:
        """Store the stream under key via a fsynced temp file and an atomic rename.

        `content_type` is accepted for the protocol and not stored: files carry no type.
        `new_key` changes nothing here: the check for an existing file costs no round trip.
        """
        validate_key(key)
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must not be negative, got {max_size}")
        target = self._path(key)
        # Refuse early, before reading a possibly large stream; checked again under the lock.
        self._check_overwrite(key, target)

        try:
            fd, temp_name = tempfile.mkstemp(dir=self._temp_dir, prefix="put-")
        except OSError as exc:
            raise _write_error(key, self.root, exc) from exc
        temp = Path(temp_name)
        try:
            digest, size = self._write_temp(key, fd, stream, max_size)
            try:
                with self._exclusive():
                    self._check_overwrite(key, target)
                    self._make_parents(target)
                    try:
                        os.replace(temp, target)
                    except IsADirectoryError:
                        raise InvalidKey(key, "a blob key cannot also be a key prefix") from None
                    except NotADirectoryError:
                        raise InvalidKey(
                            key, "a blob already exists under a prefix of this key"
                        ) from None
                    # The new content starts without a lock, as a new S3 object version does.
                    self._sidecar(target).unlink(missing_ok=True)
                    _fsync_dir(target.parent)
            except OSError as exc:
                raise _write_error(key, self.root, exc) from exc
        finally:
            temp.unlink(missing_ok=True)
        return PutResult(key=key, size=size, sha256=digest)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        sha256: str,
        *,
        content_type: str = "application/octet-stream",
        new_key: bool = False,
    ) -> PutResult:
        """As `put`: the bytes are hashed while they are written, which costs little beside
        the fsync, and the result says what reached the disk."""
        return self.put(key, io.BytesIO(data), content_type=content_type, new_key=new_key)

    def _write_temp(
        self, key: str, fd: int, stream: BinaryIO, max_size: int | None
    ) -> tuple[str, int]:
        """Copy the stream into the open temp file fd, fsync and close it.

        Errors raised by the caller's stream pass through unchanged; errors of our own writes
        become a StorageError that says what happened (disk full, ...).
        """
        digest = hashlib.sha256()
        size = 0
        # Unbuffered writes on the raw descriptor: an error surfaces at the write that caused
        # it, never again later from a buffer flushed while closing.
        try:
            while True:
                chunk = stream.read(_WRITE_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise BlobTooLarge(key, max_size)
                digest.update(chunk)
                try:
                    _write_all(fd, chunk)
                except OSError as exc:
                    raise _write_error(key, self.root, exc) from exc
            try:
                os.fsync(fd)
            except OSError as exc:
                raise _write_error(key, self.root, exc) from exc
        finally:
            os.close(fd)
        return digest.hexdigest(), size

    def _check_overwrite(self, key: str, target: Path) -> None:
        try:
            current = self._stat_path(key, target)
        except BlobNotFound:
            return
        refusal = refuse_overwrite(current, now_utc())
        if refusal is not None:
            raise refusal

    def _make_parents(self, target: Path) -> None:
        """Create the directories above target, fsyncing each parent that gained an entry."""
        missing: list[Path] = []
        parent = target.parent
        while parent != self.root and not parent.is_dir():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                directory.mkdir()
            _fsync_dir(directory.parent)

    # --- reading -------------------------------------------------------------------------

    def open(self, key: str, start: int = 0, end: int | None = None) -> BlobReader:
        """Open a byte range of the blob for a streamed read (see `BlobReader`)."""
        validate_key(key)
        path = self._path(key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise StorageError(f"could not read blob {key!r} under {self.root}: {exc}") from exc
        try:
            size = os.fstat(handle.fileno()).st_size
            first, last = resolve_range(key, start, end, size)
            handle.seek(first)
        except BaseException:
            handle.close()
            raise

        def chunks() -> Generator[bytes, None, None]:
            remaining = last - first + 1
            while remaining > 0:
                chunk = handle.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    raise StorageError(f"blob {key!r} was truncated while it was read")
                remaining -= len(chunk)
                yield chunk

        generator = chunks()

        def close() -> None:
            generator.close()
            handle.close()

        return BlobReader(generator, close, start=first, end=last, size=size)

    def stat(self, key: str) -> BlobStat:
        """Return size, modification time and lock state of the blob."""
        validate_key(key)
        with self._os_errors("stat", key):
            return self._stat_path(key, self._path(key))

    def exists(self, key: str) -> bool:
        """True if a blob file exists under key."""
        validate_key(key)
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[BlobStat]:
        """Yield the blobs whose key starts with prefix, in key order."""
        validate_prefix(prefix)
        base = prefix[: prefix.rfind("/") + 1]  # the directory part, "" or ending in "/"
        with self._os_errors("list", prefix):
            yield from self._walk(self.root / base if base else self.root, base, prefix)

    def _walk(self, directory: Path, dir_key: str, prefix: str) -> Iterator[BlobStat]:
        try:
            with os.scandir(directory) as scan:
                entries = [entry for entry in scan if not entry.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return
        # Sorting a directory as name + "/" yields the keys below it in plain key order.
        entries.sort(key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)
        for entry in entries:
            key = dir_key + entry.name
            if entry.is_dir(follow_symlinks=False):
                sub = key + "/"
                if sub.startswith(prefix) or prefix.startswith(sub):
                    yield from self._walk(Path(entry.path), sub, prefix)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                try:
                    yield self._stat_path(key, Path(entry.path))
                except BlobNotFound:
                    continue  # deleted while we walked

    # --- deleting and locking ------------------------------------------------------------

    def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        """Delete the blob and its lock sidecar unless it is locked."""
        validate_key(key)
        target = self._path(key)
        with self._os_errors("delete", key), self._exclusive():
            try:
                current = self._stat_path(key, target)
            except BlobNotFound:
                return
            refusal = refuse_delete(current, now_utc(), bypass_governance=bypass_governance)
            if refusal is not None:
                raise refusal
            target.unlink()
            self._sidecar(target).unlink(missing_ok=True)
            _fsync_dir(target.parent)
            self._prune(target.parent)

    def set_retention(self, key: str, until: datetime, mode: RetentionMode) -> None:
        """Protect the blob until `until`; a running retention can only be extended."""
        validate_key(key)
        until = normalize_until(until)
        mode = RetentionMode(mode)
        now = now_utc()
        if until <= now:
            raise ValueError(f"the retention date {until.isoformat()} is not in the future")
        target = self._path(key)
        with self._os_errors("set the retention of", key), self._exclusive():
            current = self._stat_path(key, target)
            refusal = refuse_retention_change(current, until, mode, now)
            if refusal is not None:
                raise refusal
            self._write_sidecar(
                target, retain_until=until, mode=mode, legal_hold=current.legal_hold
            )

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Switch the legal hold of the blob on or off."""
        validate_key(key)
        target = self._path(key)
        with self._os_errors("set the legal hold of", key), self._exclusive():
            current = self._stat_path(key, target)
            self._write_sidecar(
                target,
                retain_until=current.retain_until,
                mode=current.retention_mode,
                legal_hold=on,
            )

    def check(self) -> None:
        """Raise StorageUnavailable unless the root can be written and locked."""
        try:
            with self._exclusive():
                fd, name = tempfile.mkstemp(dir=self._temp_dir, prefix="check-")
                os.close(fd)
                os.unlink(name)
        except OSError as exc:
            raise StorageUnavailable(
                f"filesystem store at {self.root} is not usable: {exc}"
            ) from exc

    # --- helpers -------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    @staticmethod
    def _sidecar(target: Path) -> Path:
        return target.with_name(f".{target.name}{_SIDECAR_SUFFIX}")

    def _stat_path(self, key: str, path: Path) -> BlobStat:
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(key) from None
        if not path.is_file():
            raise BlobNotFound(key)
        retain_until, mode, legal_hold = self._read_sidecar(key, path)
        return BlobStat(
            key=key,
            size=info.st_size,
            last_modified=datetime.fromtimestamp(info.st_mtime, UTC),
            retain_until=retain_until,
            legal_hold=legal_hold,
            retention_mode=mode,
        )

    def _read_sidecar(
        self, key: str, target: Path
    ) -> tuple[datetime | None, RetentionMode | None, bool]:
        sidecar = self._sidecar(target)
        try:
            raw = sidecar.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, None, False
        try:
            data = json.loads(raw)
            until = data.get("retain_until")
            mode = data.get("mode")
            return (
                datetime.fromisoformat(until) if until else None,
                RetentionMode(mode) if mode else None,
                bool(data.get("legal_hold", False)),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            # Unreadable lock state must not make a blob deletable: refuse instead.
            raise StorageError(
                f"lock metadata of blob {key!r} at {sidecar} is unreadable: {exc}"
            ) from exc

    def _write_sidecar(
        self,
        target: Path,
        *,
        retain_until: datetime | None,
        mode: RetentionMode | None,
        legal_hold: bool,
    ) -> None:
        sidecar = self._sidecar(target)
        if retain_until is None and not legal_hold:
            sidecar.unlink(missing_ok=True)
            _fsync_dir(target.parent)
            return
        payload = json.dumps(
            {
                "retain_until": retain_until.isoformat() if retain_until else None,
                "mode": mode.value if mode else None,
                "legal_hold": legal_hold,
            }
        ).encode()
        fd, temp_name = tempfile.mkstemp(dir=self._temp_dir, prefix="meta-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp_name, sidecar)
            _fsync_dir(target.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)

    def _prune(self, directory: Path) -> None:
        """Remove directories left empty by a deletion, up to (not including) the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (or already gone): stop here
            _fsync_dir(directory.parent)
            directory = directory.parent

    @contextlib.contextmanager
    def _os_errors(self, action: str, key: str) -> Iterator[None]:
        """Report failures of the filesystem itself as StorageError."""
        try:
            yield
        except OSError as exc:
            raise StorageError(f"could not {action} {key!r} under {self.root}: {exc}") from exc

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the store-wide lock, across threads and processes."""
        with open(self.root / _LOCK_FILE, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_error(key: str, root: Path, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(
            f"could not store blob {key!r} under {root}: no space left on the device "
            "(disk full or quota exceeded); nothing was stored"
        )
    if exc.errno == errno.EFBIG:
        reason = "the file size limit was reached"
    else:
        reason = exc.strerror or str(exc)
    return StorageError(f"could not store blob {key!r} under {root}: {reason}; nothing was stored")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in the directory durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

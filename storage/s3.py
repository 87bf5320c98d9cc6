"""S3Store: blobs in an S3 bucket with versioning and Object Lock, through the minio SDK."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import io
import logging
import mmap
import re
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, cast

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.datatypes import Object, Part
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import MIN_PART_SIZE, DictType
from minio.retention import Retention
from urllib3.exceptions import MaxRetryError
from urllib3.util import Retry, Timeout

from storage._locking import (
    format_time,
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
    validate_key,
    validate_prefix,
)
from storage.errors import (
    BlobLocked,
    BlobNotFound,
    BlobTooLarge,
    InvalidRange,
    StorageError,
    StorageUnavailable,
)

logger = logging.getLogger(__name__)

#: Multipart part size used by `put`: the least S3 allows (10,000 parts make 48 GiB), since
#: memory per upload is a few parts (see `S3Store._send`).
DEFAULT_PART_SIZE = MIN_PART_SIZE
#: Parts of one upload sent at once while the next is read. A 1 GiB upload through the API
#: (SeaweedFS on the same 2 cores) went at 85 MB/s with one, 114 with two, 109 with three;
#: the server's peak RSS was 169, 175 and 180 MiB (147 idle); two parts of 8 MiB: 94 MB/s,
#: 183 MiB.
DEFAULT_PARALLEL_PARTS = 2
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024

#: Bytes taken from the caller's stream at a time while a part buffer fills.
_FILL_PIECE = 1024 * 1024


def _part_buffer(size: int) -> mmap.mmap:
    """A buffer for one part: anonymous memory, mapped by pages as they are written.

    Not from malloc, which would keep freed blocks of this size in its heaps (see
    `release_free_memory`); a small upload touches only the pages it fills.
    """
    return mmap.mmap(-1, size)


def _body(buffer: mmap.mmap, size: int) -> bytes:
    """The first `size` bytes of a part buffer, as a request body without a copy."""
    # Typed as bytes by the SDK, which (like urllib3 under it) takes any bytes-like body.
    return cast(bytes, memoryview(buffer)[:size])

_CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Give memory freed by a multipart upload back to the operating system (glibc).

    The parts themselves sit in memory maps (`_part_buffer`), but the body still passes
    through the receiving side's buffers of a megabyte or two in the upload's threads.
    glibc serves such blocks from its per-thread heaps once they have been freed a few
    times, and keeps the freed memory: when the parts too came from malloc, a server held
    213 MiB instead of 156 MiB after four 100 MB uploads at once, and a 2 GiB upload then
    peaked at 236 MiB. Returning it after each large upload costs a few milliseconds.
    """
    if _TRIM is not None:
        _TRIM(0)


@dataclass(frozen=True)
class _Version:
    version_id: str | None
    is_delete_marker: bool


# S3Store.list shadows the builtin inside the class body.
_Versions = list[_Version]


class S3Store:
    """Blobs in one S3 bucket (SeaweedFS, MinIO, ...), with versioning and Object Lock.

    `put` streams as a multipart upload, a few parts in memory at a time, hashing on the way.
    Since the bucket is versioned, `put` over an existing key and `delete` remove every
    version of the key, so replaced or deleted content is really gone; Object Lock keeps a
    locked version, and then the call raises BlobLocked.

    The HTTP client fails fast (minio's default waits 5 minutes and retries 5 times): 3 s to
    connect, 2 retries of refused connections and 5xx answers, 30 s for an answer, so a down
    server is reported as StorageUnavailable in seconds. No network call happens before the
    first operation. The `client` attribute is the minio client, for tools and tests that
    need raw S3 calls.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        parallel_parts: int = DEFAULT_PARALLEL_PARTS,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        retries: int = 2,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}")
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self.region = region
        if parallel_parts < 1:
            raise ValueError(f"parallel_parts must be at least 1, got {parallel_parts}")
        self.part_size = part_size
        self.parallel_parts = parallel_parts
        http = urllib3.PoolManager(
            timeout=Timeout(connect=connect_timeout, read=read_timeout),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            # Retry refused connections and 5xx a few times, but not a server that stopped
            # answering: a read timeout is reported at once, not after `retries` more waits.
            retries=Retry(
                total=retries,
                read=0,
                backoff_factor=0.2,
                status_forcelist=[500, 502, 503, 504],
            ),
        )
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        self._object_lock: bool | None = None

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"S3Store({scheme}://{self.endpoint}/{self.bucket})"

    # --- bucket --------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock (and so versioning) unless it exists."""
        with self._errors(None, "create the bucket"):
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket, object_lock=True)
                except S3Error as exc:
                    # Another process may have created it in the meantime.
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
        self._object_lock = self._query_object_lock()
        if not self._object_lock:
            logger.warning(
                "bucket %r at %s has no Object Lock: retention and legal hold cannot be set",
                self.bucket,
                self.endpoint,
            )

    @property
    def supports_object_lock(self) -> bool:
        """True if the bucket has Object Lock enabled (asked once, then cached)."""
        if self._object_lock is None:
            self._object_lock = self._query_object_lock()
        return self._object_lock

    def _query_object_lock(self) -> bool:
        with self._errors(None, "read the Object Lock configuration"):
            try:
                self.client.get_object_lock_config(self.bucket)
            except S3Error as exc:
                if exc.code == "ObjectLockConfigurationNotFoundError":
                    return False
                raise
        return True

    def check(self) -> None:
        """Raise StorageUnavailable unless the bucket answers with our credentials."""
        try:
            with self._errors(None, "check the bucket"):
                exists = self.client.bucket_exists(self.bucket)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            raise StorageUnavailable(str(exc)) from exc
        if not exists:
            raise StorageUnavailable(f"bucket {self.bucket!r} does not exist at {self.endpoint}")

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
        """Upload the stream as a multipart upload and remove the key's older versions.

        With `new_key` there are no older versions to look for: one request less.
        """
        validate_key(key)
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must not be negative, got {max_size}")
        before = [] if new_key else self._versions(key)
        now = now_utc()
        # S3 itself would accept a new version on top of a locked one; the contract says a
        # locked key keeps its content, so refuse here.
        for stat in self._version_stats(key, before):
            refusal = refuse_overwrite(stat, now)
            if refusal is not None:
                raise refusal

        reader = _HashingReader(stream, key, max_size)
        try:
            with self._errors(key, "upload"):
                self._send(key, reader, content_type)
        except Exception as exc:
            # A failed multipart upload was aborted; remove anything that still got created.
            self._remove_new_versions(key, before)
            if reader.stream_error is not None and exc.__cause__ is reader.stream_error:
                # The caller's stream failed (e.g. the client went away), not S3: pass its
                # error on unchanged instead of reporting the store as unavailable.
                raise reader.stream_error from None
            raise

        if reader.size > self.part_size:
            release_free_memory()
        if before:
            try:
                self._remove_versions(key, before, bypass_governance=False)
            except BlobLocked:
                # Locked between our check and now: the old content stays and so must win.
                self._remove_new_versions(key, before)
                raise
        return PutResult(key=key, size=reader.size, sha256=reader.hexdigest())

    def put_bytes(
        self,
        key: str,
        data: bytes,
        sha256: str,
        *,
        content_type: str = "application/octet-stream",
        new_key: bool = False,
    ) -> PutResult:
        """One PUT for a new key whose bytes fit in a part; anything else goes through `put`.

        The bytes are not hashed here again: S3 checks the body against the SHA-256 the
        request is signed with (plain HTTP) or its Content-MD5 (TLS), which the SDK computes.
        For a 1 MiB document that saves a hash and a copy, about a third of `put`'s CPU.
        """
        if not new_key or len(data) >= self.part_size:
            return self.put(key, io.BytesIO(data), content_type=content_type, new_key=new_key)
        validate_key(key)
        try:
            with self._errors(key, "upload"):
                self.client._put_object(self.bucket, key, data, {"Content-Type": content_type})
        except StorageError:
            self._remove_new_versions(key, [])  # an answer lost after S3 stored the body
            raise
        return PutResult(key=key, size=len(data), sha256=sha256)

    def _send(self, key: str, reader: _HashingReader, content_type: str) -> None:
        """Send the stream: one PUT if it fits in a part, else a multipart upload.

        The SDK's own `put_object` either reads a part and then sends it, one after the
        other, or (in parallel) reads the whole stream before it reports a failed part.
        Here the next part is read while earlier ones are sent, so receiving from the
        client and sending to S3 overlap, at most `parallel_parts` are in flight, and a
        failure stops the reading within a part. The SDK's request methods for the single
        steps are private; the version is pinned below 8 in pyproject.toml.
        """
        headers: DictType = {"Content-Type": content_type}
        first = _part_buffer(self.part_size)
        size = reader.fill(first)
        if size < self.part_size:
            self.client._put_object(self.bucket, key, _body(first, size), headers)
            return
        upload_id = self.client._create_multipart_upload(self.bucket, key, dict(headers))
        try:
            etags = self._send_parts(key, upload_id, first, reader)
            parts = [Part(number, etag) for number, etag in enumerate(etags, start=1)]
            self.client._complete_multipart_upload(self.bucket, key, upload_id, parts)
        except BaseException:
            try:
                self.client._abort_multipart_upload(self.bucket, key, upload_id)
            except Exception:  # S3 expires it; the failure that brought us here matters
                logger.warning("could not abort the multipart upload of %r", key, exc_info=True)
            raise

    def _send_parts(
        self, key: str, upload_id: str, first: mmap.mmap, reader: _HashingReader
    ) -> list[str]:
        """Upload the parts of one multipart upload; returns their ETags in order.

        A part buffer is reused once its part is sent: parallel_parts + 1 of them serve
        an upload of any size.
        """
        etags: list[str] = []
        sending: deque[tuple[Future[str], mmap.mmap]] = deque()
        free: list[mmap.mmap] = []
        with ThreadPoolExecutor(self.parallel_parts, thread_name_prefix="s3-part") as pool:
            try:
                buffer, size, number = first, self.part_size, 1
                while size:
                    if len(sending) == self.parallel_parts:
                        # A failed part raises here, at most a part after it failed.
                        done, sent = sending.popleft()
                        etags.append(done.result())
                        free.append(sent)
                    future = pool.submit(
                        self.client._upload_part,
                        self.bucket, key, _body(buffer, size), None, upload_id, number,
                    )
                    sending.append((future, buffer))
                    number += 1
                    buffer = free.pop() if free else _part_buffer(self.part_size)
                    size = reader.fill(buffer)
                etags.extend(future.result() for future, _ in sending)
            except BaseException:
                for future, _ in sending:
                    future.cancel()  # parts already being sent finish before the pool closes
                raise
        return etags

    def _remove_new_versions(self, key: str, before: _Versions) -> None:
        """Delete versions of key created after `before` was listed; log what cannot go."""
        known = {version.version_id for version in before}
        try:
            new = [v for v in self._versions(key) if v.version_id not in known]
            if new:
                self._remove_versions(key, new, bypass_governance=False)
        except StorageError as exc:
            logger.warning(
                "could not check bucket %r for leftovers of the failed upload of %r "
                "(the orphan sweeper removes any later): %s",
                self.bucket,
                key,
                exc,
            )

    # --- reading -------------------------------------------------------------------------

    def open(self, key: str, start: int = 0, end: int | None = None) -> BlobReader:
        """Open a byte range of the blob for a streamed read (see `BlobReader`)."""
        validate_key(key)
        if start < 0:
            raise ValueError(f"range start must not be negative, got {start}")
        if end is not None and end < start:
            raise ValueError(f"range end {end} is before its start {start}")
        length = 0 if end is None else end - start + 1
        try:
            with self._errors(key, "read"):
                response = self.client.get_object(self.bucket, key, offset=start, length=length)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, S3Error) and cause.code == "InvalidRange":
                raise InvalidRange(key, start, end, None) from cause
            raise

        try:
            content_range = response.headers.get("Content-Range")
            if content_range:
                match = _CONTENT_RANGE.fullmatch(content_range.strip())
                if match is None:
                    raise StorageError(f"unexpected Content-Range {content_range!r} for {key!r}")
                first, last, size = (int(group) for group in match.groups())
            elif start == 0 and end is None:
                size = int(response.headers.get("Content-Length", "0"))
                first, last = 0, size - 1
            else:
                raise StorageError(f"S3 at {self.endpoint} ignored the range request for {key!r}")
        except BaseException:
            response.close()
            response.release_conn()
            raise

        def chunks() -> Generator[bytes, None, None]:
            with self._errors(key, "read"):
                yield from response.stream(CHUNK_SIZE, decode_content=False)

        generator = chunks()

        def close() -> None:
            generator.close()
            response.close()
            response.release_conn()

        return BlobReader(generator, close, start=first, end=last, size=size)

    def stat(self, key: str) -> BlobStat:
        """Return size, time and lock state of the key's current version."""
        validate_key(key)
        return self._stat(key, None)

    def exists(self, key: str) -> bool:
        """True if the key has a current version."""
        try:
            self.stat(key)
        except BlobNotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[BlobStat]:
        """Yield the blobs whose key starts with prefix, in key order.

        With Object Lock on, each blob costs one extra HEAD request for its lock state, since
        S3 listings do not carry it.
        """
        validate_prefix(prefix)
        with_lock_state = self.supports_object_lock
        with self._errors(None, f"list {prefix!r}"):
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                name = obj.object_name
                if obj.is_dir or name is None:
                    continue
                if with_lock_state:
                    try:
                        yield self._stat(name, None)
                    except BlobNotFound:
                        continue  # deleted while we listed
                else:
                    yield BlobStat(
                        key=name,
                        size=obj.size or 0,
                        last_modified=cast(datetime, obj.last_modified),
                        retain_until=None,
                        legal_hold=False,
                    )

    # --- deleting and locking ------------------------------------------------------------

    def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        """Delete every version of the key; BlobLocked if a version is locked."""
        validate_key(key)
        versions = self._versions(key)
        if not versions:
            return
        now = now_utc()
        # Check first so that nothing is deleted when one version is locked, and so that the
        # message says why; the server enforces the same rules (see _remove_versions).
        for stat in self._version_stats(key, versions):
            refusal = refuse_delete(stat, now, bypass_governance=bypass_governance)
            if refusal is not None:
                raise refusal
        self._remove_versions(key, versions, bypass_governance=bypass_governance)

    def set_retention(self, key: str, until: datetime, mode: RetentionMode) -> None:
        """Set an Object Lock retention on the current version; it can only be extended."""
        validate_key(key)
        until = normalize_until(until)
        mode = RetentionMode(mode)
        now = now_utc()
        if until <= now:
            raise ValueError(f"the retention date {until.isoformat()} is not in the future")
        self._require_object_lock("set a retention")
        current = self.stat(key)
        refusal = refuse_retention_change(current, until, mode, now)
        if refusal is not None:
            raise refusal
        s3_mode = COMPLIANCE if mode is RetentionMode.COMPLIANCE else GOVERNANCE

        def denied() -> StorageError:
            return BlobLocked(
                key,
                f"the S3 server refused to set a {mode.value} retention until {format_time(until)}",
                retain_until=current.retain_until,
            )

        with self._errors(key, "set the retention", access_denied=denied):
            self.client.set_object_retention(self.bucket, key, Retention(s3_mode, until))

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Switch the legal hold of the current version on or off."""
        validate_key(key)
        self._require_object_lock("set a legal hold")
        # SeaweedFS (4.48) answers PutObjectLegalHold on a missing key with 500 InternalError
        # instead of 404 NoSuchKey; ask first so a missing key is BlobNotFound, not a retried
        # "server error".
        self.stat(key)
        with self._errors(key, "set the legal hold"):
            if on:
                self.client.enable_object_legal_hold(self.bucket, key)
            else:
                self.client.disable_object_legal_hold(self.bucket, key)

    def _require_object_lock(self, action: str) -> None:
        if not self.supports_object_lock:
            raise StorageError(
                f"cannot {action}: bucket {self.bucket!r} at {self.endpoint} was created "
                "without Object Lock (S3 cannot enable it later; use a new bucket)"
            )

    # --- versions ------------------------------------------------------------------------

    def _versions(self, key: str) -> _Versions:
        """All versions and delete markers stored under exactly this key."""
        with self._errors(key, "list the versions"):
            return [
                _Version(obj.version_id, bool(obj.is_delete_marker))
                for obj in self.client.list_objects(self.bucket, prefix=key, include_version=True)
                if obj.object_name == key
            ]

    def _version_stats(self, key: str, versions: _Versions) -> Iterator[BlobStat]:
        for version in versions:
            if version.is_delete_marker:
                continue
            try:
                yield self._stat(key, version.version_id)
            except BlobNotFound:
                continue  # deleted meanwhile

    def _remove_versions(self, key: str, versions: _Versions, *, bypass_governance: bool) -> None:
        """Delete the given versions; the server's refusal of a locked one is BlobLocked."""
        with self._errors(key, "delete"):
            errors = list(
                self.client.remove_objects(
                    self.bucket,
                    [DeleteObject(key, version.version_id) for version in versions],
                    bypass_governance_mode=bypass_governance,
                )
            )
        for error in errors:
            if error.code in ("NoSuchKey", "NoSuchVersion"):
                continue  # already gone
            if error.code == "AccessDenied":
                raise BlobLocked(
                    key,
                    f"the S3 server refused to delete version {error.version_id} "
                    "(Object Lock retention or legal hold)",
                )
            raise StorageError(
                f"could not delete version {error.version_id} of {key!r} from bucket "
                f"{self.bucket!r}: {error.code}: {error.message}"
            )

    def _stat(self, key: str, version_id: str | None) -> BlobStat:
        with self._errors(key, "stat"):
            obj: Object = self.client.stat_object(self.bucket, key, version_id=version_id)
        headers = obj.metadata or {}
        mode = headers.get("x-amz-object-lock-mode")
        until = headers.get("x-amz-object-lock-retain-until-date")
        hold = headers.get("x-amz-object-lock-legal-hold")
        return BlobStat(
            key=key,
            size=obj.size or 0,
            last_modified=cast(datetime, obj.last_modified),
            retain_until=datetime.fromisoformat(until) if until else None,
            legal_hold=str(hold).upper() == "ON",
            retention_mode=RetentionMode(mode.upper()) if mode else None,
        )

    # --- errors --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(
        self,
        key: str | None,
        action: str,
        *,
        access_denied: Callable[[], StorageError] | None = None,
    ) -> Iterator[None]:
        """Translate minio and urllib3 exceptions into StorageError subclasses."""
        where = f"S3 at {self.endpoint}"
        try:
            yield
        except S3Error as exc:
            raise self._translate(exc, key, action, access_denied) from exc
        except (ServerError, InvalidResponseError) as exc:
            raise StorageUnavailable(f"{where} failed to {action}: {exc}") from exc
        except MaxRetryError as exc:
            raise StorageUnavailable(f"{where} is unreachable ({action}): {exc.reason}") from exc
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise StorageUnavailable(f"{where} is unreachable ({action}): {exc}") from exc

    def _translate(
        self,
        exc: S3Error,
        key: str | None,
        action: str,
        access_denied: Callable[[], StorageError] | None,
    ) -> StorageError:
        where = f"S3 at {self.endpoint}"
        status = exc.response.status if exc.response is not None else 0
        subject = f" {key!r}" if key else ""
        if exc.code in ("NoSuchKey", "NoSuchVersion") and key is not None:
            return BlobNotFound(key)
        if exc.code == "NoSuchBucket":
            return StorageUnavailable(f"bucket {self.bucket!r} does not exist at {self.endpoint}")
        if exc.code in _CREDENTIAL_ERRORS:
            # Not transient, but the store is unusable until the configuration is fixed;
            # the health check reports it and the API answers 503, as for a down server.
            return StorageUnavailable(
                f"{where} rejected the credentials ({exc.code}): check the access key and "
                "the secret key of the storage URL"
            )
        if exc.code == "AccessDenied":
            if access_denied is not None:
                return access_denied()
            return StorageUnavailable(
                f"{where} denied access to {action}{subject} in bucket {self.bucket!r}"
            )
        if status >= 500:
            return StorageUnavailable(f"{where} failed to {action}{subject}: {exc.code}")
        return StorageError(
            f"{where} could not {action}{subject} in bucket {self.bucket!r}: "
            f"{exc.code}: {exc.message}"
        )


class _HashingReader:
    """Reads the caller's stream into part buffers, hashing, counting and limiting the bytes."""

    def __init__(self, stream: BinaryIO, key: str, max_size: int | None) -> None:
        self._stream = stream
        self._readinto = getattr(stream, "readinto", None)  # io's classes have it
        self._key = key
        self._max_size = max_size
        self._digest = hashlib.sha256()
        self.size = 0
        self.stream_error: BaseException | None = None

    def fill(self, buffer: mmap.mmap) -> int:
        """Read into `buffer` until it is full or the stream ends; returns the bytes read."""
        with memoryview(buffer) as view:
            got = 0
            while got < len(view):
                n = self._read_into(view[got:])
                if not n:
                    break
                self._count(view[got : got + n])
                got += n
            return got

    def _read_into(self, target: memoryview) -> int:
        """One read: straight into `target` where the stream can, else a piece copied in."""
        try:
            if self._readinto is not None:
                return int(self._readinto(target) or 0)
            chunk = self._stream.read(min(_FILL_PIECE, len(target)))
        except BaseException as exc:
            self.stream_error = exc
            raise
        target[: len(chunk)] = chunk
        return len(chunk)

    def _count(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self._max_size is not None and self.size > self._max_size:
            raise BlobTooLarge(self._key, self._max_size)
        self._digest.update(chunk)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

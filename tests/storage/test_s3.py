"""S3Store against SeaweedFS: what the server itself enforces, versions, and failures."""

from __future__ import annotations

import hashlib
import io
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.retention import Retention

from storage import (
    BlobLocked,
    BlobTooLarge,
    RetentionMode,
    S3Store,
    StorageError,
    StorageUnavailable,
    store_from_url,
)
from tests.storage.streams import GeneratedStream, generated_bytes, generated_sha256
from tests.support.s3 import S3Server, remove_bucket

MiB = 1024 * 1024


def new_key() -> str:
    return f"docs/{uuid.uuid4()}/{uuid.uuid4()}"


def versions(store: S3Store, key: str) -> list[tuple[str | None, bool]]:
    """All versions and delete markers of exactly this key, straight from S3."""
    return [
        (obj.version_id, bool(obj.is_delete_marker))
        for obj in store.client.list_objects(store.bucket, prefix=key, include_version=True)
        if obj.object_name == key
    ]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server enforces Object Lock itself, not only our code ------------------------------


def test_bucket_is_versioned_with_object_lock(s3_store: S3Store) -> None:
    assert s3_store.supports_object_lock
    assert s3_store.client.get_bucket_versioning(s3_store.bucket).status == "Enabled"


def test_server_refuses_to_delete_a_version_under_compliance_retention(s3_store: S3Store) -> None:
    key = new_key()
    s3_store.put(key, io.BytesIO(b"x"))
    s3_store.set_retention(key, datetime.now(UTC) + timedelta(hours=1), RetentionMode.COMPLIANCE)
    [(version_id, _)] = versions(s3_store, key)

    with pytest.raises(S3Error) as raised:
        s3_store.client.remove_object(s3_store.bucket, key, version_id=version_id)
    assert raised.value.code == "AccessDenied"
    errors = list(
        s3_store.client.remove_objects(
            s3_store.bucket,
            [DeleteObject(key, version_id)],
            bypass_governance_mode=True,
        )
    )
    assert [error.code for error in errors] == ["AccessDenied"]
    assert versions(s3_store, key) == [(version_id, False)]


def test_server_refuses_to_shorten_or_weaken_a_compliance_retention(s3_store: S3Store) -> None:
    key = new_key()
    s3_store.put(key, io.BytesIO(b"x"))
    now = datetime.now(UTC)
    s3_store.set_retention(key, now + timedelta(hours=1), RetentionMode.COMPLIANCE)

    for retention in (
        Retention(COMPLIANCE, now + timedelta(minutes=10)),
        Retention(GOVERNANCE, now + timedelta(hours=2)),
    ):
        with pytest.raises(S3Error) as raised:
            s3_store.client.set_object_retention(s3_store.bucket, key, retention)
        assert raised.value.code == "AccessDenied"


def test_server_refuses_to_delete_a_version_under_legal_hold(s3_store: S3Store) -> None:
    key = new_key()
    s3_store.put(key, io.BytesIO(b"x"))
    s3_store.set_legal_hold(key, True)
    [(version_id, _)] = versions(s3_store, key)

    with pytest.raises(S3Error) as raised:
        s3_store.client.remove_object(s3_store.bucket, key, version_id=version_id)
    assert raised.value.code == "AccessDenied"
    assert s3_store.client.is_object_legal_hold_enabled(s3_store.bucket, key)


def test_server_lets_governance_be_bypassed_on_delete(s3_store: S3Store) -> None:
    key = new_key()
    s3_store.put(key, io.BytesIO(b"x"))
    s3_store.set_retention(key, datetime.now(UTC) + timedelta(hours=1), RetentionMode.GOVERNANCE)
    [(version_id, _)] = versions(s3_store, key)

    plain = list(s3_store.client.remove_objects(s3_store.bucket, [DeleteObject(key, version_id)]))
    assert [error.code for error in plain] == ["AccessDenied"]
    bypassed = list(
        s3_store.client.remove_objects(
            s3_store.bucket, [DeleteObject(key, version_id)], bypass_governance_mode=True
        )
    )
    assert bypassed == []
    assert versions(s3_store, key) == []


def test_server_refusal_is_reported_as_blob_locked(s3_store: S3Store) -> None:
    """When our own check is not consulted, the server's AccessDenied still maps to BlobLocked."""
    key = new_key()
    s3_store.put(key, io.BytesIO(b"x"))
    s3_store.set_legal_hold(key, True)
    found = s3_store._versions(key)

    with pytest.raises(BlobLocked, match="refused to delete version"):
        s3_store._remove_versions(key, found, bypass_governance=True)


# --- versions: content is really gone ---------------------------------------------------------


def test_delete_removes_every_version_and_leaves_no_delete_marker(s3_store: S3Store) -> None:
    key = new_key()
    s3_store.put(key, io.BytesIO(b"one"))
    # A version written behind the store's back, as an older client might have done.
    s3_store.client.put_object(s3_store.bucket, key, io.BytesIO(b"two"), 3)
    assert len(versions(s3_store, key)) == 2

    s3_store.delete(key)

    assert versions(s3_store, key) == []


def test_overwrite_keeps_a_single_version(s3_store: S3Store) -> None:
    key = new_key()
    s3_store.put(key, io.BytesIO(b"one"))
    s3_store.put(key, io.BytesIO(b"two"))

    assert len(versions(s3_store, key)) == 1


def test_delete_is_refused_whole_if_one_version_is_locked(s3_store: S3Store) -> None:
    key = new_key()
    s3_store.client.put_object(s3_store.bucket, key, io.BytesIO(b"locked"), 6)
    s3_store.set_legal_hold(key, True)
    s3_store.client.put_object(s3_store.bucket, key, io.BytesIO(b"newer"), 5)

    with pytest.raises(BlobLocked, match="legal hold"):
        s3_store.delete(key)

    assert len(versions(s3_store, key)) == 2


def test_too_large_multipart_upload_leaves_no_version(s3_store: S3Store) -> None:
    key = new_key()

    with pytest.raises(BlobTooLarge):
        s3_store.put(key, GeneratedStream(12 * MiB), max_size=11 * MiB)  # type: ignore[arg-type]

    assert versions(s3_store, key) == []


def test_failing_client_stream_passes_its_error_on_and_leaves_nothing(s3_store: S3Store) -> None:
    key = new_key()
    stream = GeneratedStream(12 * MiB, fail_at=7 * MiB, error=ConnectionResetError("gone"))

    with pytest.raises(ConnectionResetError, match="gone"):
        s3_store.put(key, stream)  # type: ignore[arg-type]

    assert versions(s3_store, key) == []


@pytest.mark.parametrize("parallel_parts", [1, 3])
@pytest.mark.parametrize("readinto", [True, False], ids=["buffered", "read-only"])
def test_multipart_upload_arrives_whole_and_in_order(
    s3_server: S3Server, s3_store: S3Store, parallel_parts: int, readinto: bool
) -> None:
    # Four full parts and a short one, sent with several parts at once: reordering, a
    # reused part buffer written too early or a lost tail would change the bytes.
    store = S3Store(
        s3_server.endpoint, s3_server.access_key, s3_server.secret_key, s3_store.bucket,
        secure=s3_server.secure, region=s3_server.region,
        part_size=5 * MiB, parallel_parts=parallel_parts,
    )  # fmt: skip
    size = 22 * MiB + 123
    stream = io.BytesIO(generated_bytes(size, seed=7)) if readinto else GeneratedStream(size, 7)
    key = new_key()

    result = store.put(key, stream)  # type: ignore[arg-type]

    assert (result.size, result.sha256) == (size, generated_sha256(size, seed=7))
    with store.open(key) as reader:
        assert hashlib.sha256(b"".join(reader)).hexdigest() == result.sha256
    assert len(versions(store, key)) == 1


class _AbortsItsUpload(GeneratedStream):
    """A client stream that, once `at` bytes were read, has S3 drop the key's multipart
    upload: every part sent after that fails, as when the server loses the upload."""

    def __init__(self, store: S3Store, key: str, size: int, at: int) -> None:
        super().__init__(size)
        self.store, self.key, self.at, self.aborted = store, key, at, False

    def read(self, size: int = -1) -> bytes:
        if not self.aborted and self.position >= self.at:
            listing = self.store.client._list_multipart_uploads(
                self.store.bucket, prefix=self.key
            )
            for upload in listing.uploads:
                self.store.client._abort_multipart_upload(
                    self.store.bucket, self.key, str(upload.upload_id)
                )
            self.aborted = bool(listing.uploads)
        return super().read(size)


def test_a_failed_part_stops_the_reading_and_leaves_nothing(s3_store: S3Store) -> None:
    key = new_key()
    part = s3_store.part_size
    stream = _AbortsItsUpload(s3_store, key, size=30 * part, at=2 * part)

    with pytest.raises(StorageError):
        s3_store.put(key, stream)  # type: ignore[arg-type]

    assert stream.aborted
    # Noticed within the parts in flight and the one being read, not at the stream's end.
    assert stream.position <= (2 + s3_store.parallel_parts + 2) * part
    assert versions(s3_store, key) == []


# --- configuration and failures ---------------------------------------------------------------


def test_wrong_credentials_are_refused_quickly_with_a_clear_message(
    s3_server: S3Server, s3_store: S3Store
) -> None:
    wrong = S3Store(
        s3_server.endpoint, s3_server.access_key, "wrong-secret", s3_store.bucket, secure=False
    )
    started = time.monotonic()

    with pytest.raises(StorageUnavailable, match="rejected the credentials"):
        wrong.check()
    with pytest.raises(StorageUnavailable, match="rejected the credentials"):
        wrong.put(new_key(), io.BytesIO(b"x"))
    unknown = S3Store(s3_server.endpoint, "nobody", "nothing", s3_store.bucket, secure=False)
    with pytest.raises(StorageUnavailable, match="InvalidAccessKeyId"):
        unknown.stat(new_key())

    assert time.monotonic() - started < 5


def test_unreachable_endpoint_raises_storage_unavailable_within_seconds() -> None:
    store = S3Store(f"127.0.0.1:{closed_port()}", "eakte", "secret", "bucket", secure=False)
    started = time.monotonic()

    with pytest.raises(StorageUnavailable, match="unreachable"):
        store.check()
    with pytest.raises(StorageUnavailable):
        store.put(new_key(), io.BytesIO(b"x"))
    with pytest.raises(StorageUnavailable):
        store.open(new_key())

    assert time.monotonic() - started < 10


def test_check_reports_a_missing_bucket(s3_server: S3Server) -> None:
    store = store_from_url(s3_server.url(f"missing-{uuid.uuid4().hex[:12]}"))

    with pytest.raises(StorageUnavailable, match="does not exist"):
        store.check()


def test_bucket_without_object_lock_is_reported_honestly(s3_server: S3Server) -> None:
    bucket = f"eakte-nolock-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.make_bucket(bucket)
    try:
        store = S3Store(
            s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket, secure=False
        )
        key = new_key()
        store.put(key, io.BytesIO(b"x"))

        assert store.supports_object_lock is False
        with pytest.raises(StorageError, match="without Object Lock"):
            store.set_retention(
                key, datetime.now(UTC) + timedelta(days=1), RetentionMode.COMPLIANCE
            )
        with pytest.raises(StorageError, match="without Object Lock"):
            store.set_legal_hold(key, True)
        assert [stat.key for stat in store.list("docs/")] == [key]
    finally:
        remove_bucket(client, bucket)


def test_ensure_bucket_is_idempotent(s3_store: S3Store) -> None:
    s3_store.ensure_bucket()
    s3_store.ensure_bucket()

    assert s3_store.supports_object_lock

"""The BlobStore contract, run against FilesystemStore and S3Store (SeaweedFS) alike."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from storage import (
    CHUNK_SIZE,
    BlobLocked,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    InvalidKey,
    InvalidRange,
    RetentionMode,
)
from tests.storage.streams import GeneratedStream, generated_bytes, generated_sha256

MiB = 1024 * 1024


def new_key(prefix: str = "docs") -> str:
    return f"{prefix}/{uuid.uuid4()}/{uuid.uuid4()}"


def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    with store.open(key, start, end) as reader:
        return b"".join(reader)


def wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.3)


def test_put_then_read_returns_the_same_bytes_with_size_and_sha256(blob_store: BlobStore) -> None:
    key = new_key()
    data = b"Bescheid vom 1. April\n" * 100

    result = blob_store.put(key, io.BytesIO(data), content_type="text/plain")

    assert result.key == key
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(blob_store, key) == data
    assert blob_store.exists(key)


@pytest.mark.parametrize("size", [10_000, 5 * MiB + 1], ids=["one-request", "parts"])
def test_bytes_in_memory_are_stored_whole(blob_store: BlobStore, size: int) -> None:
    key = new_key()
    data = generated_bytes(size)
    digest = hashlib.sha256(data).hexdigest()

    result = blob_store.put_bytes(key, data, digest, new_key=True)

    assert (result.key, result.size, result.sha256) == (key, size, digest)
    assert hashlib.sha256(read_all(blob_store, key)).hexdigest() == digest
    assert [stat.size for stat in blob_store.list(key)] == [size]


def test_bytes_in_memory_replace_an_unlocked_key_and_not_a_locked_one(
    blob_store: BlobStore,
) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"first draft"))
    blob_store.put_bytes(key, b"second", hashlib.sha256(b"second").hexdigest())
    assert read_all(blob_store, key) == b"second"
    assert [stat.size for stat in blob_store.list(key)] == [6]

    blob_store.set_legal_hold(key, True)
    with pytest.raises(BlobLocked):
        blob_store.put_bytes(key, b"forged", hashlib.sha256(b"forged").hexdigest())
    assert read_all(blob_store, key) == b"second"
    blob_store.set_legal_hold(key, False)


def test_empty_blob_round_trips(blob_store: BlobStore) -> None:
    key = new_key()
    result = blob_store.put(key, io.BytesIO(b""))

    assert result.size == 0
    assert result.sha256 == hashlib.sha256(b"").hexdigest()
    with blob_store.open(key) as reader:
        assert b"".join(reader) == b""
        assert (reader.start, reader.end, reader.size, reader.length) == (0, -1, 0, 0)


def test_large_stream_is_stored_in_parts_and_read_back_in_chunks(blob_store: BlobStore) -> None:
    # 12 MiB is more than two 5 MiB parts, so the S3 upload is a real multipart upload.
    key = new_key()
    size = 12 * MiB

    result = blob_store.put(key, GeneratedStream(size, seed=1))  # type: ignore[arg-type]

    assert result.size == size
    assert result.sha256 == generated_sha256(size, seed=1)
    digest = hashlib.sha256()
    total = 0
    with blob_store.open(key) as reader:
        for chunk in reader:
            assert 0 < len(chunk) <= CHUNK_SIZE
            digest.update(chunk)
            total += len(chunk)
    assert total == size
    assert digest.hexdigest() == result.sha256
    assert blob_store.stat(key).size == size


@pytest.mark.parametrize(
    ("start", "end", "expected_slice"),
    [
        pytest.param(0, 0, slice(0, 1), id="first-byte"),
        pytest.param(1000, 1999, slice(1000, 2000), id="middle"),
        pytest.param(99_999, 99_999, slice(99_999, 100_000), id="last-byte"),
        pytest.param(70_000, None, slice(70_000, None), id="open-ended"),
        pytest.param(99_000, 500_000, slice(99_000, None), id="end-past-blob-is-cut"),
        pytest.param(0, None, slice(None), id="whole"),
    ],
)
def test_ranged_reads_return_the_inclusive_byte_range(
    blob_store: BlobStore, start: int, end: int | None, expected_slice: slice
) -> None:
    key = new_key()
    data = generated_bytes(100_000, seed=2)
    blob_store.put(key, io.BytesIO(data))
    expected = data[expected_slice]

    with blob_store.open(key, start, end) as reader:
        body = b"".join(reader)
        assert reader.size == len(data)
        assert reader.start == start
        assert reader.end == start + len(expected) - 1
        assert reader.length == len(expected)

    assert body == expected


def test_range_starting_past_the_end_is_not_satisfiable(blob_store: BlobStore) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"0123456789"))

    with pytest.raises(InvalidRange):
        blob_store.open(key, 10, None)
    with pytest.raises(InvalidRange):
        blob_store.open(key, 50, 60)
    with pytest.raises(ValueError, match="before its start"):
        blob_store.open(key, 5, 4)


def test_reader_can_be_closed_before_the_end(blob_store: BlobStore) -> None:
    key = new_key()
    blob_store.put(key, GeneratedStream(1 * MiB))  # type: ignore[arg-type]

    reader = blob_store.open(key)
    first = next(reader)
    reader.close()
    reader.close()

    assert len(first) == CHUNK_SIZE
    assert list(reader) == []
    assert read_all(blob_store, key, 0, 9) == first[:10]  # the store is still usable


def test_stat_reports_size_time_and_an_unlocked_state(blob_store: BlobStore) -> None:
    key = new_key()
    before = datetime.now(UTC) - timedelta(seconds=2)
    blob_store.put(key, io.BytesIO(b"12345"))

    stat = blob_store.stat(key)

    assert stat.key == key
    assert stat.size == 5
    assert stat.last_modified.tzinfo is not None
    assert before <= stat.last_modified <= datetime.now(UTC) + timedelta(seconds=2)
    assert stat.retain_until is None
    assert stat.retention_mode is None
    assert stat.legal_hold is False


def test_list_yields_the_blobs_under_a_prefix_in_key_order(blob_store: BlobStore) -> None:
    keys = [
        "docs/a/1",
        "docs/a/2",
        "docs/a-b/1",
        "docs/ab/1",
        "docs/b/1",
        "inbox/x/original",
    ]
    for index, key in enumerate(keys):
        blob_store.put(key, io.BytesIO(b"x" * (index + 1)))

    def listed(prefix: str) -> list[str]:
        return [stat.key for stat in blob_store.list(prefix)]

    assert listed("") == sorted(keys)
    assert listed("docs/") == sorted(keys[:5])
    assert listed("docs/a") == sorted(["docs/a/1", "docs/a/2", "docs/a-b/1", "docs/ab/1"])
    assert listed("docs/a/") == ["docs/a/1", "docs/a/2"]
    assert listed("docs/a/2") == ["docs/a/2"]
    assert listed("inbox/") == ["inbox/x/original"]
    assert listed("nothing/") == []
    sizes = {stat.key: stat.size for stat in blob_store.list("docs/a/")}
    assert sizes == {"docs/a/1": 1, "docs/a/2": 2}


def test_delete_removes_the_blob_and_a_missing_key_is_no_error(blob_store: BlobStore) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"to be destroyed"))

    blob_store.delete(key)
    blob_store.delete(key)
    blob_store.delete(new_key())

    assert not blob_store.exists(key)
    assert list(blob_store.list(key)) == []
    with pytest.raises(BlobNotFound):
        blob_store.stat(key)


def test_missing_key_raises_blob_not_found(blob_store: BlobStore) -> None:
    key = new_key()

    assert not blob_store.exists(key)
    with pytest.raises(BlobNotFound):
        blob_store.open(key)
    with pytest.raises(BlobNotFound):
        blob_store.stat(key)
    with pytest.raises(BlobNotFound):
        blob_store.set_legal_hold(key, True)
    with pytest.raises(BlobNotFound):
        blob_store.set_retention(
            key, datetime.now(UTC) + timedelta(days=1), RetentionMode.GOVERNANCE
        )


@pytest.mark.parametrize(
    ("size", "max_size"),
    [
        pytest.param(2000, 1999, id="small"),
        # More than one 5 MiB part: S3 must abort a multipart upload already under way.
        pytest.param(11 * MiB, 10 * MiB + 1, id="multipart"),
    ],
)
def test_stream_longer_than_max_size_is_refused_and_leaves_nothing(
    blob_store: BlobStore, size: int, max_size: int
) -> None:
    key = new_key()

    with pytest.raises(BlobTooLarge) as raised:
        blob_store.put(key, GeneratedStream(size), max_size=max_size)  # type: ignore[arg-type]

    assert raised.value.max_size == max_size
    assert not blob_store.exists(key)
    with pytest.raises(BlobNotFound):
        blob_store.stat(key)
    assert list(blob_store.list(key.rsplit("/", 1)[0] + "/")) == []


def test_stream_of_exactly_max_size_is_stored(blob_store: BlobStore) -> None:
    key = new_key()

    result = blob_store.put(key, io.BytesIO(b"x" * 100), max_size=100)

    assert result.size == 100


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/docs/a",
        "docs/../etc/passwd",
        "..",
        "docs/./a",
        "docs//a",
        "docs/a/",
        "docs\\a",
        "docs/a\x00b",
        "docs/a\nb",
        "docs/a\x7f",
        "docs/.hidden",
        "x" * 256,
        "a/" * 600,
    ],
    ids=[
        "empty",
        "absolute",
        "dotdot",
        "only-dotdot",
        "dot",
        "empty-segment",
        "trailing-slash",
        "backslash",
        "nul",
        "newline",
        "del",
        "dot-name",
        "long-segment",
        "long-key",
    ],
)
def test_invalid_keys_are_rejected(blob_store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        blob_store.put(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidKey):
        blob_store.open(key)
    with pytest.raises(InvalidKey):
        blob_store.stat(key)
    with pytest.raises(InvalidKey):
        blob_store.delete(key)
    with pytest.raises(InvalidKey):
        blob_store.exists(key)


def test_compliance_retention_refuses_deletion_until_the_date_passes(
    blob_store: BlobStore,
) -> None:
    assert blob_store.supports_object_lock
    key = new_key()
    blob_store.put(key, io.BytesIO(b"Akte 32.10.05-2026/0042"))
    blob_store.set_retention(
        key, datetime.now(UTC) + timedelta(seconds=2), RetentionMode.COMPLIANCE
    )

    stat = blob_store.stat(key)
    assert stat.retention_mode is RetentionMode.COMPLIANCE
    assert stat.retain_until is not None
    with pytest.raises(BlobLocked, match="COMPLIANCE retention until") as raised:
        blob_store.delete(key)
    assert raised.value.retain_until == stat.retain_until
    with pytest.raises(BlobLocked):
        blob_store.delete(key, bypass_governance=True)
    assert blob_store.exists(key)

    wait_until(stat.retain_until)
    blob_store.delete(key)

    assert not blob_store.exists(key)


def test_compliance_retention_can_be_extended_but_not_shortened_or_weakened(
    blob_store: BlobStore,
) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"x"))
    now = datetime.now(UTC)
    blob_store.set_retention(key, now + timedelta(hours=1), RetentionMode.COMPLIANCE)

    blob_store.set_retention(key, now + timedelta(hours=2), RetentionMode.COMPLIANCE)
    with pytest.raises(BlobLocked, match="cannot be shortened"):
        blob_store.set_retention(key, now + timedelta(minutes=30), RetentionMode.COMPLIANCE)
    with pytest.raises(BlobLocked, match="cannot be changed to GOVERNANCE"):
        blob_store.set_retention(key, now + timedelta(hours=3), RetentionMode.GOVERNANCE)

    stat = blob_store.stat(key)
    assert stat.retention_mode is RetentionMode.COMPLIANCE
    assert stat.retain_until is not None
    assert abs(stat.retain_until - (now + timedelta(hours=2))) < timedelta(seconds=2)


def test_retention_date_must_be_in_the_future_and_timezone_aware(blob_store: BlobStore) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"x"))

    with pytest.raises(ValueError, match="not in the future"):
        blob_store.set_retention(
            key, datetime.now(UTC) - timedelta(days=1), RetentionMode.COMPLIANCE
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        blob_store.set_retention(key, datetime.now() + timedelta(days=1), RetentionMode.COMPLIANCE)


def test_governance_retention_refuses_deletion_unless_bypassed(blob_store: BlobStore) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"x"))
    blob_store.set_retention(key, datetime.now(UTC) + timedelta(hours=1), RetentionMode.GOVERNANCE)

    with pytest.raises(BlobLocked, match="GOVERNANCE retention until"):
        blob_store.delete(key)
    assert blob_store.exists(key)

    blob_store.delete(key, bypass_governance=True)

    assert not blob_store.exists(key)


def test_legal_hold_refuses_deletion_until_released(blob_store: BlobStore) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"x"))
    blob_store.set_legal_hold(key, True)

    assert blob_store.stat(key).legal_hold is True
    with pytest.raises(BlobLocked, match="legal hold") as raised:
        blob_store.delete(key, bypass_governance=True)
    assert raised.value.legal_hold is True
    assert blob_store.exists(key)

    blob_store.set_legal_hold(key, False)
    assert blob_store.stat(key).legal_hold is False
    blob_store.delete(key)

    assert not blob_store.exists(key)


@pytest.mark.parametrize("lock", ["compliance", "governance", "legal-hold"])
def test_overwriting_a_locked_key_is_refused(blob_store: BlobStore, lock: str) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"original"))
    until = datetime.now(UTC) + timedelta(hours=1)
    if lock == "compliance":
        blob_store.set_retention(key, until, RetentionMode.COMPLIANCE)
    elif lock == "governance":
        blob_store.set_retention(key, until, RetentionMode.GOVERNANCE)
    else:
        blob_store.set_legal_hold(key, True)

    with pytest.raises(BlobLocked):
        blob_store.put(key, io.BytesIO(b"forged"))

    assert read_all(blob_store, key) == b"original"


def test_overwriting_an_unlocked_key_replaces_its_content(blob_store: BlobStore) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"first draft"))

    result = blob_store.put(key, io.BytesIO(b"second"))

    assert result.size == 6
    assert read_all(blob_store, key) == b"second"
    assert [stat.size for stat in blob_store.list(key)] == [6]


def test_overwriting_after_the_retention_ended_starts_unlocked(blob_store: BlobStore) -> None:
    key = new_key()
    blob_store.put(key, io.BytesIO(b"first"))
    blob_store.set_retention(
        key, datetime.now(UTC) + timedelta(seconds=1), RetentionMode.COMPLIANCE
    )
    until = blob_store.stat(key).retain_until
    assert until is not None
    wait_until(until)

    blob_store.put(key, io.BytesIO(b"second"))

    stat = blob_store.stat(key)
    assert stat.retain_until is None
    assert stat.legal_hold is False
    blob_store.delete(key)


def test_check_passes_on_a_working_store(blob_store: BlobStore) -> None:
    blob_store.check()

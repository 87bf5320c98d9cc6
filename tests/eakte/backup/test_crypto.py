"""Chunked AES-GCM of backup objects: round trips, and every kind of tampering is caught."""

from __future__ import annotations

import base64
import io
import os

import pytest

from eakte.backup.crypto import (
    CHUNK,
    DecryptionFailed,
    decrypt_chunks,
    encrypt_chunks,
    key_id,
    parse_key,
)
from eakte.backup.database import libpq_connection
from eakte.errors import InvalidInput

KEY = os.urandom(32)


def seal(data: bytes, key: bytes = KEY) -> bytes:
    """The ciphertext of data."""
    return b"".join(encrypt_chunks(key, io.BytesIO(data)))


def unseal(data: bytes, key: bytes = KEY, piece: int = 7777) -> bytes:
    """The plaintext of data, fed in odd-sized pieces as a network read would."""
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
    return b"".join(decrypt_chunks(key, pieces))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data)
    assert size < 16 or data[:64] not in sealed
    assert unseal(sealed) == data


def test_tampering_truncation_reordering_and_wrong_key_are_refused() -> None:
    data = os.urandom(2 * CHUNK + 100)
    sealed = bytearray(seal(data))
    flipped = bytearray(sealed)
    flipped[CHUNK // 2] ^= 1
    with pytest.raises(DecryptionFailed):
        unseal(bytes(flipped))
    record = CHUNK + 16
    header = 16
    whole_chunks_only = bytes(sealed[: header + 2 * record])  # the last chunk dropped
    with pytest.raises(DecryptionFailed):
        unseal(whole_chunks_only)
    swapped = (
        sealed[:header]
        + sealed[header + record : header + 2 * record]
        + sealed[header : header + record]
        + sealed[header + 2 * record :]
    )
    with pytest.raises(DecryptionFailed):
        unseal(bytes(swapped))
    with pytest.raises(DecryptionFailed):
        unseal(bytes(sealed), key=os.urandom(32))
    with pytest.raises(DecryptionFailed):
        unseal(b"plain text, not sealed")


def test_key_must_be_base64_of_32_bytes() -> None:
    assert parse_key(base64.b64encode(KEY).decode()) == KEY
    with pytest.raises(InvalidInput):
        parse_key(base64.b64encode(os.urandom(16)).decode())
    with pytest.raises(InvalidInput):
        parse_key("not base64!")
    assert key_id(KEY) != key_id(os.urandom(32)) and len(key_id(KEY)) == 16


def test_multi_host_url_reaches_pg_dump_as_libpq_hosts() -> None:
    conninfo, env = libpq_connection(
        "postgresql+psycopg://eakte:s3cret@/records?host=db1:5432&host=db2:5433"
        "&target_session_attrs=read-write"
    )
    assert "host=db1,db2" in conninfo and "port=5432,5433" in conninfo
    assert "target_session_attrs=read-write" in conninfo and "dbname=records" in conninfo
    assert "s3cret" not in conninfo and env["PGPASSWORD"] == "s3cret"

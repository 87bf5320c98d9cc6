"""Client-side encryption of backup objects: AES-GCM over fixed-size chunks, streamed.

AES-GCM in `cryptography` seals one message at a time, and a 2 GB document must not be
held in memory, so an object is sealed in chunks of CHUNK bytes (the STREAM construction):
each chunk's nonce is a random per-object prefix plus the chunk counter, and its associated
data carries the counter and a last-chunk flag, so chunks cannot be reordered, dropped or
the object cut short without decryption failing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from eakte.errors import InvalidInput

if TYPE_CHECKING:
    from eakte.settings import Settings

MAGIC = b"EAKTEBK1"
PREFIX_BYTES = 8
CHUNK = 1024 * 1024
TAG_BYTES = 16


class DecryptionFailed(Exception):
    """The object is not a valid ciphertext under this key (corrupt, truncated, other key)."""


def parse_key(encoded: str) -> bytes:
    """Decode EAKTE_BACKUP_KEY: base64 of exactly 32 bytes (AES-256)."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the backup key is not valid base64") from None
    if len(key) != 32:
        raise InvalidInput(f"the backup key must be 32 bytes (base64), not {len(key)}")
    return key


def backup_key(settings: Settings) -> bytes | None:
    """The parsed EAKTE_BACKUP_KEY, or None when backups are not encrypted."""
    if settings.backup_key is None:
        return None
    return parse_key(settings.backup_key.get_secret_value())


def key_id(key: bytes) -> str:
    """A short fingerprint that tells keys apart without revealing them."""
    return hashlib.sha256(b"eakte-backup-key-id\0" + key).hexdigest()[:16]


def manifest_mac(key: bytes, manifest: Mapping[str, Any]) -> str:
    """The MAC of a manifest: HMAC-SHA256 over its canonical JSON, every field but `mac`.

    The objects a manifest names are sealed, but the manifest itself is plain JSON that
    anyone with access to the target could rewrite (claim it unencrypted, point a key at
    other content). Its MAC uses a key derived from the backup key (HKDF), so the AES key
    itself is never used for a second purpose.
    """
    mac_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"eakte-backup-manifest-mac"
    ).derive(key)
    body = json.dumps(
        {k: v for k, v in manifest.items() if k != "mac"}, sort_keys=True, separators=(",", ":")
    ).encode()
    return hmac.new(mac_key, body, hashlib.sha256).hexdigest()


def manifest_authentic(key: bytes, manifest: Mapping[str, Any]) -> bool:
    """True if the manifest carries a MAC and it is the one `key` gives."""
    mac = manifest.get("mac")
    return isinstance(mac, str) and hmac.compare_digest(mac, manifest_mac(key, manifest))


def _read_full(stream: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    missing = size
    while missing > 0:
        data = stream.read(missing)
        if not data:
            break
        parts.append(data)
        missing -= len(data)
    return b"".join(parts)


def _aad(counter: int, last: bool) -> bytes:
    return struct.pack(">IB", counter, 1 if last else 0)


def encrypt_chunks(key: bytes, plaintext: BinaryIO) -> Iterator[bytes]:
    """Yield the ciphertext of a plaintext stream: a header, then one sealed record per chunk."""
    aead = AESGCM(key)
    prefix = os.urandom(PREFIX_BYTES)
    yield MAGIC + prefix
    counter = 0
    current = _read_full(plaintext, CHUNK)
    while True:
        # Read one chunk ahead: the last chunk must be sealed as the last one.
        following = _read_full(plaintext, CHUNK) if len(current) == CHUNK else b""
        last = not following
        nonce = prefix + struct.pack(">I", counter)
        yield aead.encrypt(nonce, current, _aad(counter, last))
        if last:
            return
        counter += 1
        current = following


def decrypt_chunks(key: bytes, ciphertext: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the plaintext of a ciphertext made by `encrypt_chunks`; DecryptionFailed if not."""
    aead = AESGCM(key)
    record = CHUNK + TAG_BYTES
    buffer = bytearray()
    chunks = iter(ciphertext)
    header_len = len(MAGIC) + PREFIX_BYTES
    for data in chunks:
        buffer += data
        if len(buffer) >= header_len:
            break
    if len(buffer) < header_len or bytes(buffer[: len(MAGIC)]) != MAGIC:
        raise DecryptionFailed("not an encrypted backup object (header missing)")
    prefix = bytes(buffer[len(MAGIC) : header_len])
    del buffer[:header_len]
    counter = 0

    def open_record(sealed: bytes, last: bool) -> bytes:
        nonce = prefix + struct.pack(">I", counter)
        try:
            return aead.decrypt(nonce, sealed, _aad(counter, last))
        except InvalidTag:
            raise DecryptionFailed(f"chunk {counter} fails authentication") from None

    for data in chunks:
        buffer += data
        # More than one record buffered: the first is certainly not the last.
        while len(buffer) > record:
            yield open_record(bytes(buffer[:record]), last=False)
            del buffer[:record]
            counter += 1
    if len(buffer) < TAG_BYTES:
        raise DecryptionFailed("the object is cut short")
    yield open_record(bytes(buffer), last=True)


def is_sealed(data: bytes) -> bool:
    """True if data looks like the output of `encrypt_chunks` (it starts with its header)."""
    return data.startswith(MAGIC)


def seal(key: bytes, data: bytes) -> bytes:
    """The ciphertext of a small object held in memory (a register entry)."""
    return b"".join(encrypt_chunks(key, io.BytesIO(data)))


def unseal(key: bytes, data: bytes) -> bytes:
    """The plaintext of `seal`'s output; DecryptionFailed unless it authenticates."""
    return b"".join(decrypt_chunks(key, [data]))

"""Blob storage for document content: the BlobStore protocol and its two stores."""

from storage.base import (
    CHUNK_SIZE,
    BlobReader,
    BlobStat,
    BlobStore,
    PutResult,
    RetentionMode,
    validate_key,
)
from storage.errors import (
    BlobLocked,
    BlobNotFound,
    BlobTooLarge,
    InvalidKey,
    InvalidRange,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from storage.factory import S3Location, mask_url, parse_s3_url, store_from_url
from storage.filesystem import FilesystemStore
from storage.s3 import S3Store
from storage.transfer import ChunkStream, copy_blob, download

__all__ = [
    "CHUNK_SIZE",
    "BlobLocked",
    "BlobNotFound",
    "BlobReader",
    "BlobStat",
    "BlobStore",
    "BlobTooLarge",
    "ChunkStream",
    "FilesystemStore",
    "InvalidKey",
    "InvalidRange",
    "PutResult",
    "RetentionMode",
    "S3Location",
    "S3Store",
    "StorageError",
    "StorageFull",
    "StorageUnavailable",
    "copy_blob",
    "download",
    "mask_url",
    "parse_s3_url",
    "store_from_url",
    "validate_key",
]

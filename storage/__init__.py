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
    StorageUnavailable,
)
from storage.factory import S3Location, mask_url, parse_s3_url, store_from_url
from storage.filesystem import FilesystemStore
from storage.s3 import S3Store

__all__ = [
    "CHUNK_SIZE",
    "BlobLocked",
    "BlobNotFound",
    "BlobReader",
    "BlobStat",
    "BlobStore",
    "BlobTooLarge",
    "FilesystemStore",
    "InvalidKey",
    "InvalidRange",
    "PutResult",
    "RetentionMode",
    "S3Location",
    "S3Store",
    "StorageError",
    "StorageUnavailable",
    "mask_url",
    "parse_s3_url",
    "store_from_url",
    "validate_key",
]

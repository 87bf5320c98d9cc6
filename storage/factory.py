"""Build a BlobStore from a storage URL (`file://...` or `s3://...`) and mask URLs for logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlsplit, urlunsplit

from minio.helpers import MIN_PART_SIZE

from storage.base import BlobStore
from storage.filesystem import FilesystemStore
from storage.s3 import (
    DEFAULT_PARALLEL_PARTS,
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    S3Store,
)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_S3_OPTIONS = {"secure", "region", "part_size_mib", "parallel_parts"}
_MASK = "***"


@dataclass(frozen=True)
class S3Location:
    """The parts of an `s3://ACCESS:SECRET@host:port/bucket?secure=...&region=...` URL."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)  # kept out of logs and tracebacks
    bucket: str
    secure: bool = True
    region: str | None = None
    part_size: int = DEFAULT_PART_SIZE
    parallel_parts: int = DEFAULT_PARALLEL_PARTS


def store_from_url(url: str) -> BlobStore:
    """Create the store a storage URL names; no network or disk access beyond creating a root.

    - `file://./var/blobs`, `file://var/blobs`: a directory relative to the current directory;
    - `file:///abs/path` (or `file://localhost/abs/path`): an absolute directory;
    - `s3://ACCESS:SECRET@host:port/bucket?secure=false&region=eu-central-1`: an S3 bucket.
      Credentials are percent-decoded; `secure` defaults to true (HTTPS); `part_size_mib`
      (at least 5) and `parallel_parts` tune multipart uploads (see `S3Store`). Call
      `S3Store.ensure_bucket()` once at start-up to create the bucket with Object Lock.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return FilesystemStore(parse_file_url(url))
    if scheme == "s3":
        location = parse_s3_url(url)
        return S3Store(
            location.endpoint,
            location.access_key,
            location.secret_key,
            location.bucket,
            secure=location.secure,
            region=location.region,
            part_size=location.part_size,
            parallel_parts=location.parallel_parts,
        )
    raise ValueError(
        f"unsupported storage URL {mask_url(url)!r}: expected file://PATH or "
        "s3://ACCESS:SECRET@HOST:PORT/BUCKET"
    )


def parse_file_url(url: str) -> Path:
    """Return the absolute directory of a `file://` storage URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ValueError(f"not a file:// URL: {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"a file:// storage URL takes no query or fragment: {url!r}")
    path = unquote(parts.path)
    if parts.netloc in ("", "localhost"):
        if not path:
            raise ValueError(f"the file:// storage URL has no path: {url!r}")
        return Path(path).absolute()
    # file://./var/blobs puts "." in the host part: read host and path as one relative path.
    return (Path.cwd() / (unquote(parts.netloc) + path)).absolute()


def parse_s3_url(url: str) -> S3Location:
    """Split an `s3://` storage URL into endpoint, credentials, bucket and options."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        raise ValueError(f"not an s3:// URL: {mask_url(url)!r}")
    if not parts.hostname:
        raise ValueError(f"the s3:// storage URL has no host: {mask_url(url)!r}")
    if parts.username is None or parts.password is None:
        raise ValueError(
            f"the s3:// storage URL needs ACCESS:SECRET@ before the host: {mask_url(url)!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the s3:// storage URL has an invalid port: {mask_url(url)!r}") from None
    bucket = parts.path.strip("/")
    if not bucket or "/" in bucket:
        raise ValueError(
            f"the s3:// storage URL needs exactly one bucket name as its path: {mask_url(url)!r}"
        )
    options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(options) - _S3_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} in the s3:// storage URL "
            f"(known: {', '.join(sorted(_S3_OPTIONS))}): {mask_url(url)!r}"
        )
    secure = True
    if "secure" in options:
        value = options["secure"][-1].lower()
        if value not in _TRUE | _FALSE:
            raise ValueError(f"secure must be true or false, got {value!r}")
        secure = value in _TRUE
    region = options["region"][-1] if "region" in options and options["region"][-1] else None
    part_size_mib = _positive(options, "part_size_mib", DEFAULT_PART_SIZE // 2**20)
    parallel_parts = _positive(options, "parallel_parts", DEFAULT_PARALLEL_PARTS)
    if not MIN_PART_SIZE <= part_size_mib * 2**20 <= MAX_PART_SIZE:
        raise ValueError(
            f"part_size_mib must be between {MIN_PART_SIZE // 2**20} and "
            f"{MAX_PART_SIZE // 2**20}, got {part_size_mib}"
        )
    host = parts.hostname
    if ":" in host:  # an IPv6 address needs its brackets back
        host = f"[{host}]"
    endpoint = host if port is None else f"{host}:{port}"
    return S3Location(
        endpoint=endpoint,
        access_key=unquote(parts.username),
        secret_key=unquote(parts.password),
        bucket=bucket,
        secure=secure,
        region=region,
        part_size=part_size_mib * 2**20,
        parallel_parts=parallel_parts,
    )


def _positive(options: dict[str, list[str]], name: str, default: int) -> int:
    if name not in options:
        return default
    value = options[name][-1]
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


def mask_url(url: str) -> str:
    """Return the URL with its password replaced by `***`, safe to log."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        # A secret with an unencoded "/", "?" or "#" ends the host part early, so urlsplit
        # finds no password at all; mask everything between "user:" and the last "@".
        scheme, sep, rest = url.partition("://")
        userinfo, at, host = rest.rpartition("@")
        if sep and at and ":" in userinfo:
            return f"{scheme}://{userinfo.partition(':')[0]}:{_MASK}@{host}"
        return url
    user = parts.username or ""
    host_port = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(unquote(user), safe='')}:{_MASK}@{host_port}"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment))

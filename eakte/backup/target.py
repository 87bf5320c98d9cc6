"""Opening a backup target (a directory or an S3 bucket), its marker, and its manifests."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eakte.errors import InvalidInput, NotFound
from storage import BlobNotFound, BlobStore, FilesystemStore, S3Store, parse_s3_url, store_from_url

MANIFEST_PREFIX = "manifest-"
#: Written on a target's first use, before anything else: whether its backups are encrypted,
#: and with which key. Everything else in the target is only trusted if it matches.
MARKER = "target.json"
MARKER_FORMAT = "eakte-backup-target/1"


def _identity(url: str) -> str:
    """What makes two store URLs the same place: the directory, or endpoint plus bucket."""
    if urlsplit(url).scheme.lower() == "s3":
        loc = parse_s3_url(url)
        return f"s3://{loc.endpoint}/{loc.bucket}"
    path = url[len("file://") :] if url.startswith("file://") else url
    return str(Path(path).expanduser().resolve())


def open_target(target: str, primary_storage_url: str) -> BlobStore:
    """The store behind TARGET (`/dir`, `file://...` or `s3://...`); never the primary store."""
    if not target.strip():
        raise InvalidInput("no backup target given")
    if _identity(target) == _identity(primary_storage_url):
        raise InvalidInput("the backup target is the primary store; choose another place")
    scheme = urlsplit(target).scheme.lower()
    if scheme == "s3":
        store = store_from_url(target)
        if isinstance(store, S3Store):
            store.ensure_bucket()
        return store
    if scheme not in ("", "file"):
        raise InvalidInput(f"unsupported backup target {scheme}://; use a directory or s3://")
    path = Path(target[len("file://") :] if scheme == "file" else target).expanduser()
    return FilesystemStore(path)


def manifest_names(store: BlobStore) -> list[str]:
    """The manifests in the target, oldest first (the names sort by time)."""
    return sorted(
        s.key for s in store.list(MANIFEST_PREFIX) if s.key.endswith(".json")
    )


def read_manifest(store: BlobStore, name: str | None = None) -> dict[str, Any]:
    """A manifest by name (`manifest-<time>.json` or just `<time>`), or the newest one."""
    if name is None:
        names = manifest_names(store)
        if not names:
            raise NotFound("the target holds no backup (no manifest)")
        name = names[-1]
    elif not name.startswith(MANIFEST_PREFIX):
        name = f"{MANIFEST_PREFIX}{name}.json"
    try:
        with store.open(name) as reader:
            manifest: dict[str, Any] = json.loads(b"".join(reader))
    except BlobNotFound:
        raise NotFound(f"the target holds no manifest {name}") from None
    except ValueError:
        raise InvalidInput(f"the manifest {name} is not valid JSON") from None
    return manifest


def read_marker(store: BlobStore) -> dict[str, Any] | None:
    """The target's marker, or None if it has none yet."""
    try:
        with store.open(MARKER) as reader:
            marker: dict[str, Any] = json.loads(b"".join(reader))
    except BlobNotFound:
        return None
    except ValueError:
        raise InvalidInput(f"the target's {MARKER} is not valid JSON") from None
    if marker.get("format") != MARKER_FORMAT:
        raise InvalidInput(f"the target's {MARKER} has an unknown format")
    return marker


def write_marker(store: BlobStore, encrypted: bool, key_id: str | None) -> dict[str, Any]:
    """Record how the target's backups are encrypted (on its first use)."""
    marker = {"format": MARKER_FORMAT, "encrypted": encrypted, "key_id": key_id}
    body = json.dumps(marker, indent=1, sort_keys=True).encode()
    store.put(MARKER, io.BytesIO(body), content_type="application/json")
    return marker

"""The orphan sweeper: removes blobs that no row refers to once their grace time has passed.

Uploads write the blob before the row; a crash in between leaves a blob with
no row. The grace period keeps blobs of uploads still in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from sqlalchemy.orm import Session

from eakte.db import utcnow
from eakte.documents.repository import all_blob_keys
from storage import BlobStore

log = logging.getLogger(__name__)

KeySource = Callable[[Session], set[str]]


def document_keys(session: Session) -> set[str]:
    """Blob keys of every document version."""
    return all_blob_keys(session, "docs/")


def sweep_orphans(
    session: Session,
    store: BlobStore,
    grace_seconds: int,
    *,
    referenced: Mapping[str, KeySource] | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Delete unreferenced blobs older than the grace period; returns their keys.

    `referenced` maps each swept prefix to a function listing the keys rows still name;
    feature packages add theirs (the inbox its `inbox/` keys) in the composition root.
    """
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    removed: list[str] = []
    for prefix, keys_of in (referenced or {"docs/": document_keys}).items():
        # Read the blob list before the referenced keys: a row committed in between
        # is then in the key set, so its blob can never be taken for an orphan.
        candidates = [b for b in store.list(prefix) if b.last_modified < cutoff]
        in_use = keys_of(session)
        for blob in candidates:
            if blob.key in in_use:
                continue
            if not dry_run:
                store.delete(blob.key)
                log.info("removed orphan blob %s (%d bytes)", blob.key, blob.size)
            removed.append(blob.key)
    return removed

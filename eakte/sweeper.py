"""The orphan sweeper: removes blobs that no row refers to once their grace time has passed.

Uploads write the blob before the row; a crash in between leaves a blob with
no row. The grace period keeps blobs of uploads still in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from eakte.db import utcnow
from eakte.documents.repository import all_blob_keys
from storage import BlobLocked, BlobNotFound, BlobStat, BlobStore

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
        # End the read at once: on SQLite every transaction holds the write lock, which the
        # listing and deleting below must not keep from uploads.
        session.rollback()
        for blob in candidates:
            if blob.key in in_use:
                continue
            if _locked(blob, utcnow()):
                log.warning("orphan blob %s is under retention or legal hold; kept", blob.key)
                continue
            if not dry_run:
                try:
                    # Written again since the listing (a retried step that reuses its key,
                    # a restore): it may be about to get its row, so it is no orphan yet.
                    if store.stat(blob.key).last_modified >= cutoff:
                        continue
                    store.delete(blob.key)
                except (BlobNotFound, BlobLocked) as exc:
                    log.info("orphan blob %s not removed: %s", blob.key, exc)
                    continue
                log.info("removed orphan blob %s (%d bytes)", blob.key, blob.size)
            removed.append(blob.key)
    return removed


def _locked(blob: BlobStat, now: datetime) -> bool:
    return blob.legal_hold or (blob.retain_until is not None and blob.retain_until > now)

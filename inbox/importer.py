"""Bulk import of a backlog of scans into the inbox (`eakte import`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eakte.auth.principal import Principal, Role
from eakte.db import unit_of_work
from eakte.errors import DomainError
from eakte.settings import Settings
from inbox import repository, service
from inbox.models import ItemSource
from storage import BlobStore, StorageError

log = logging.getLogger(__name__)

IMPORT_PRINCIPAL = Principal(subject="import", roles=frozenset({Role.MAILROOM}), kind="system")


@dataclass
class ImportReport:
    """What an import did."""

    imported: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def import_paths(
    factory: Callable[[], Session], store: BlobStore, settings: Settings,
    paths: Sequence[Path], advance: Callable[[], None] = lambda: None,
) -> ImportReport:
    """Store each file as an inbox item; files imported before (same path and bytes) are skipped."""
    report = ImportReport()
    for path in paths:
        try:
            source_ref = f"import:{path.resolve()}"
            with path.open("rb") as stream:
                stored = service.store_original(store, stream, max_size=settings.max_upload_bytes)
            try:
                with unit_of_work(factory) as session:
                    duplicate = repository.by_source(session, source_ref,
                                                     stored.sha256) is not None
                    if not duplicate:
                        service.record_item(session, IMPORT_PRINCIPAL, stored,
                                            source=ItemSource.IMPORT, original_name=path.name,
                                            source_ref=source_ref)
            except IntegrityError:
                # An import running at the same time recorded this file first (the unique
                # index on source_ref and sha256 refused the second row).
                with unit_of_work(factory) as session:
                    if repository.by_source(session, source_ref, stored.sha256) is None:
                        raise
                duplicate = True
            if duplicate:
                store.delete(stored.key)
                report.skipped += 1
            else:
                report.imported += 1
        except (OSError, StorageError, DomainError) as exc:
            log.warning("import of %s failed: %s", path, exc)
            report.failed.append((path, str(exc)))
        advance()
    return report

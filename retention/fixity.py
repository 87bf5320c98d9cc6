"""Fixity: re-read every stored version, compare its SHA-256 with the database, keep a report.

Runs from `eakte fixity` or as a periodic task (`fixity_loop`). Reading goes in batches by
version id, each batch in a short transaction, so a check over millions of versions holds
no long transaction open; the report row is written at the start and completed at the end.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.db import SessionFactory, unit_of_work, utcnow
from eakte.documents.models import Document, DocumentVersion
from eakte.errors import NotFound
from eakte.files.models import File
from eakte.guards import require
from retention import repository
from retention.models import DisposalItem, FixityReport, ItemState
from storage import BlobNotFound, BlobStore

log = logging.getLogger(__name__)

BATCH = 500

#: Called after each version with (versions checked, versions in all).
FixityProgress = Callable[[int, int], None]


def _content_gone_on_purpose() -> ColumnElement[bool]:
    """The version's file was disposed of, or its content is being deleted after a receipt."""
    return or_(
        ~repository.content_kept(),
        exists().where(
            DisposalItem.file_id == File.id,
            DisposalItem.state.in_([ItemState.DESTROYING.value, ItemState.RECEIVED.value]),
        ),
    )


def _deleted_on_purpose(factory: SessionFactory, version_id: uuid.UUID) -> bool:
    """Whether a blob found missing was meant to go after its version was read for checking.

    A run may dispose of a file while the check is under way, and the content of a file the
    archive has received is deleted before its record is written (and stays half deleted
    while an Object Lock keeps one of its blobs).
    """
    with unit_of_work(factory) as session:
        found = session.scalar(
            select(DocumentVersion.id)
            .join(Document, Document.id == DocumentVersion.document_id)
            .join(File, File.id == Document.file_id)
            .where(DocumentVersion.id == version_id, ~_content_gone_on_purpose())
        )
    return found is None


def _hash_blob(store: BlobStore, key: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with store.open(key) as reader:
        for chunk in reader:
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def run_fixity(
    factory: SessionFactory,
    store: BlobStore,
    started_by: str,
    progress: FixityProgress | None = None,
) -> FixityReport:
    """Check every stored version's content against its recorded SHA-256; returns the report."""
    with unit_of_work(factory) as session:
        report = FixityReport(started_by=started_by, problems=[], started_at=utcnow())
        session.add(report)
        session.flush()
        report_id = report.id
        total = repository.count_checked_versions(session)
    checked = bytes_read = mismatches = missing = 0
    problems: list[dict[str, Any]] = []
    after: uuid.UUID | None = None

    def save(finished: bool) -> FixityReport:
        with unit_of_work(factory) as session:
            report = session.get_one(FixityReport, report_id)
            report.finished_at = utcnow() if finished else None
            report.checked = checked
            report.bytes_read = bytes_read
            report.mismatches = mismatches
            report.missing = missing
            report.problems = list(problems)
            if finished:
                record(
                    session,
                    started_by,
                    "fixity.checked",
                    "fixity_report",
                    report.id,
                    checked=checked,
                    mismatches=mismatches,
                    missing=missing,
                )
            return report

    try:
        while True:
            with unit_of_work(factory) as session:
                batch = repository.fixity_batch(session, after, BATCH)
                rows = [
                    (v.id, v.blob_key, v.sha256, v.number, d.id, f.unit_code, f.reference)
                    for v, d, f in batch
                ]
            if not rows:
                break
            for version_id, key, expected, number, document_id, unit, reference in rows:
                problem: dict[str, Any] | None = None
                try:
                    actual, size = _hash_blob(store, key)
                    bytes_read += size
                    if actual != expected:
                        mismatches += 1
                        problem = {"kind": "mismatch", "actual": actual}
                except BlobNotFound:
                    if _deleted_on_purpose(factory, version_id):
                        problem = None
                    else:
                        missing += 1
                        problem = {"kind": "missing", "actual": None}
                if problem is not None:
                    problem.update(
                        document_id=str(document_id),
                        version=number,
                        blob_key=key,
                        expected=expected,
                        org_unit=unit,
                        reference=reference,
                    )
                    log.error("fixity: %s %s (file %s)", problem["kind"], key, reference)
                    problems.append(problem)
                checked += 1
                if progress is not None:
                    progress(checked, max(total, checked))
            after = rows[-1][0]
            # Kept as it goes, so a killed check still shows what it had found.
            save(finished=False)
    except BaseException:
        # S3 gone mid-run (or an interrupt): keep what was found so far in the report, which
        # stays unfinished, rather than leave it looking like a check that found nothing.
        log.error("fixity: check stopped after %d versions, %d problems", checked, len(problems))
        try:
            save(finished=False)
        except Exception:
            log.exception("fixity: could not keep the unfinished report %s", report_id)
        raise
    return save(finished=True)


def fixity_loop(
    factory: SessionFactory,
    store: BlobStore,
    interval_seconds: float,
    stop: threading.Event,
    started_by: str = "fixity-worker",
) -> None:
    """Run a fixity check every `interval_seconds` until `stop` is set (a worker task)."""
    while not stop.is_set():
        try:
            report = run_fixity(factory, store, started_by)
            log.info(
                "fixity: %d versions checked, %d mismatches, %d missing",
                report.checked,
                report.mismatches,
                report.missing,
            )
        except Exception:
            # The next round retries; a store that is down must not end the worker.
            log.exception("fixity check failed; retrying in %.0f s", interval_seconds)
        stop.wait(interval_seconds)


def _visible(report: FixityReport, principal: Principal) -> list[dict[str, Any]]:
    return [p for p in report.problems if p.get("org_unit") in principal.units]


def reports(
    session: Session, principal: Principal, limit: int = 10
) -> Sequence[tuple[FixityReport, list[dict[str, Any]]]]:
    """The latest reports, with only the problems of the principal's org units."""
    require(principal, Permission.RETENTION_MANAGE)
    return [(r, _visible(r, principal)) for r in repository.fixity_reports(session, limit)]


def report(
    session: Session, principal: Principal, report_id: uuid.UUID
) -> tuple[FixityReport, list[dict[str, Any]]]:
    """One report, with only the problems of the principal's org units."""
    require(principal, Permission.RETENTION_MANAGE)
    found = session.get(FixityReport, report_id)
    if found is None:
        raise NotFound(f"fixity report {report_id} does not exist")
    return found, _visible(found, principal)

"""SQL of retention: due-date evaluation, holds, disposal items and records, fixity scans."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import String, Uuid

from eakte.auth.principal import Principal
from eakte.db import UTCDateTime
from eakte.documents.models import Document, DocumentVersion
from eakte.files.models import File, FileStatus
from eakte.files.repository import owned_by
from eakte.plan.models import FilePlanItem
from retention.models import (
    OPEN_ITEM_STATES,
    DisposalItem,
    DisposalRecord,
    DisposalRun,
    FixityReport,
    Hold,
    ItemState,
)
from retention.rules import closed_before_for_due

# A file id, or the column holding one in a correlated subquery.
_FileId = ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID] | uuid.UUID

# --- holds -------------------------------------------------------------------------------


def active_hold_exists(file_id: _FileId) -> ColumnElement[bool]:
    """SQL condition: the file has a hold that is not released."""
    return exists().where(Hold.file_id == file_id, Hold.released_at.is_(None))


def has_active_hold(session: Session, file_id: uuid.UUID) -> bool:
    """True if the file has an active hold."""
    return bool(session.scalar(select(active_hold_exists(file_id))))


def holds_of(session: Session, file_id: uuid.UUID) -> Sequence[Hold]:
    """All holds of a file, newest first."""
    return session.scalars(
        select(Hold).where(Hold.file_id == file_id).order_by(Hold.created_at.desc())
    ).all()


def in_open_item(file_id: _FileId) -> ColumnElement[bool]:
    """SQL condition: the file takes part in a disposal run that has not finished with it."""
    return exists().where(DisposalItem.file_id == file_id, DisposalItem.state.in_(OPEN_ITEM_STATES))


def file_in_open_item(session: Session, file_id: uuid.UUID) -> bool:
    """True if a disposal run is still working on the file."""
    return bool(session.scalar(select(in_open_item(file_id))))


# --- due-date evaluation -------------------------------------------------------------------


def _cutoff(session: Session, as_of: date, tz: tzinfo) -> ColumnElement[datetime] | None:
    """A CASE over the plan item's retention years giving each file's latest closing instant.

    Distinct retention periods are few (a plan has a handful: 5, 10, 30 years...), so the
    rule becomes one small CASE and the database compares `closed_at` against a constant
    per period: set-based, with no per-row date arithmetic and the same on both databases.
    """
    years = session.scalars(
        select(FilePlanItem.retention_years)
        .where(FilePlanItem.retention_years.is_not(None))
        .distinct()
    ).all()
    if not years:
        return None
    whens = {
        y: literal(closed_before_for_due(as_of, y, tz), UTCDateTime())
        for y in years
        if y is not None
    }
    return case(whens, value=FilePlanItem.retention_years)


def due_files_query(
    session: Session, principal: Principal, as_of: date, tz: tzinfo
) -> Select[uuid.UUID, str] | None:
    """(file id, archive value) of every closed file of the principal's units due on `as_of`,
    unheld, unclaimed (a file forwarded to them for reading is not theirs to dispose of)."""
    cutoff = _cutoff(session, as_of, tz)
    if cutoff is None:
        return None
    return (
        select(File.id, FilePlanItem.archive_value)
        .join(FilePlanItem, FilePlanItem.id == File.plan_item_id)
        .where(
            File.status == FileStatus.CLOSED.value,
            File.closed_at.is_not(None),
            FilePlanItem.retention_years.is_not(None),
            File.closed_at < cutoff,
            owned_by(principal),
            ~active_hold_exists(File.id),
            ~in_open_item(File.id),
        )
    )


def due_files(
    session: Session, principal: Principal, as_of: date, tz: tzinfo, limit: int, offset: int
) -> tuple[int, Sequence[File]]:
    """How many files are due and one page of them, oldest closure first."""
    query = due_files_query(session, principal, as_of, tz)
    if query is None:
        return 0, []
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    ids = query.with_only_columns(File.id).order_by(File.closed_at, File.id)
    page = (
        session.scalars(
            select(File)
            .where(File.id.in_(ids.limit(limit).offset(offset).scalar_subquery()))
            .order_by(File.closed_at, File.id)
        )
        .unique()
        .all()
    )
    return total, page


def propose_items(
    session: Session,
    principal: Principal,
    run_id: uuid.UUID,
    as_of: date,
    tz: tzinfo,
    now: datetime,
) -> int:
    """Insert one pending item per due file into the run, in one INSERT ... SELECT."""
    query = due_files_query(session, principal, as_of, tz)
    if query is None:
        return 0
    rows = query.with_only_columns(
        literal(run_id, Uuid()),
        File.id,
        FilePlanItem.archive_value,
        literal(ItemState.PENDING.value, String()),
        literal(now, UTCDateTime()),
    )
    session.execute(
        insert(DisposalItem).from_select(
            ["run_id", "file_id", "archive_value", "state", "updated_at"], rows
        )
    )
    # rowcount of INSERT ... SELECT is not reliable across drivers; the count uses the key.
    return int(session.scalar(select(func.count()).where(DisposalItem.run_id == run_id)) or 0)


# --- runs and items ------------------------------------------------------------------------


def runs(session: Session, limit: int, offset: int) -> Sequence[DisposalRun]:
    """Disposal runs, newest first."""
    return session.scalars(
        select(DisposalRun).order_by(DisposalRun.proposed_at.desc()).limit(limit).offset(offset)
    ).all()


def item_counts(session: Session, run_id: uuid.UUID) -> dict[str, int]:
    """Number of the run's items per state."""
    rows = session.execute(
        select(DisposalItem.state, func.count())
        .where(DisposalItem.run_id == run_id)
        .group_by(DisposalItem.state)
    ).all()
    return {state: int(n) for state, n in rows}


def items_with_files(
    session: Session, run_id: uuid.UUID, limit: int, offset: int
) -> Sequence[tuple[DisposalItem, File]]:
    """The run's items with their files, by reference."""
    rows = session.execute(
        select(DisposalItem, File)
        .join(File, File.id == DisposalItem.file_id)
        .where(DisposalItem.run_id == run_id)
        .order_by(File.reference)
        .limit(limit)
        .offset(offset)
    ).unique()
    return [(item, file) for item, file in rows]


def item_for_update(session: Session, run_id: uuid.UUID, file_id: uuid.UUID) -> DisposalItem | None:
    """The item, locked against a second executor (PostgreSQL; SQLite locks the database)."""
    return session.scalar(
        select(DisposalItem)
        .where(DisposalItem.run_id == run_id, DisposalItem.file_id == file_id)
        .with_for_update()
    )


def item_file_ids(session: Session, run_id: uuid.UUID, states: Sequence[str]) -> list[uuid.UUID]:
    """Files of the run whose items are in one of `states`."""
    return list(
        session.scalars(
            select(DisposalItem.file_id)
            .where(DisposalItem.run_id == run_id, DisposalItem.state.in_(states))
            .order_by(DisposalItem.file_id)
        )
    )


def undecided_count(session: Session, run_id: uuid.UUID) -> int:
    """Items of archive value B without a decision."""
    return int(
        session.scalar(
            select(func.count()).where(
                DisposalItem.run_id == run_id,
                DisposalItem.archive_value == "B",
                DisposalItem.decision.is_(None),
            )
        )
        or 0
    )


def cancel_items(session: Session, run_id: uuid.UUID, note: str, now: datetime) -> None:
    """Mark every pending item of the run skipped."""
    session.execute(
        update(DisposalItem)
        .where(DisposalItem.run_id == run_id, DisposalItem.state == ItemState.PENDING.value)
        .values(state=ItemState.SKIPPED.value, note=note, updated_at=now)
    )


def records_of_run(session: Session, run_id: uuid.UUID) -> Sequence[DisposalRecord]:
    """The disposal records of a run, by reference."""
    return session.scalars(
        select(DisposalRecord)
        .where(DisposalRecord.run_id == run_id)
        .order_by(DisposalRecord.reference)
    ).all()


def record_of(session: Session, run_id: uuid.UUID, file_id: uuid.UUID) -> DisposalRecord | None:
    """The record written for a file in a run, if any."""
    return session.scalar(
        select(DisposalRecord).where(
            DisposalRecord.run_id == run_id, DisposalRecord.file_id == file_id
        )
    )


# --- documents of a file -------------------------------------------------------------------


def versions_of_file(
    session: Session, file_id: uuid.UUID
) -> Sequence[tuple[Document, DocumentVersion]]:
    """Every document of the file with each of its versions, in a stable order."""
    rows = session.execute(
        select(Document, DocumentVersion)
        .join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .where(Document.file_id == file_id)
        .order_by(Document.created_at, Document.id, DocumentVersion.number)
    )
    return [(d, v) for d, v in rows]


def clear_extracted_text(session: Session, file_id: uuid.UUID) -> None:
    """Drop the OCR text of the file's versions (content, like the blobs)."""
    session.execute(
        update(DocumentVersion)
        .where(
            DocumentVersion.document_id.in_(
                select(Document.id).where(Document.file_id == file_id).scalar_subquery()
            )
        )
        .values(ocr_text=None)
    )


# --- fixity ----------------------------------------------------------------------------------


def content_kept() -> ColumnElement[bool]:
    """The content of a version's file (joined as `File`) should be stored and is checked.

    Content of disposed files, and of transferred files once the archive's receipt let us
    delete it, is gone on purpose and is not checked.
    """
    return and_(
        File.status != FileStatus.DISPOSED.value,
        ~exists().where(DisposalRecord.file_id == File.id),
    )


def _checked_versions(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .select_from(DocumentVersion)
        .join(Document, Document.id == DocumentVersion.document_id)
        .join(File, File.id == Document.file_id)
        .where(content_kept())
    )


def fixity_batch(
    session: Session, after: uuid.UUID | None, limit: int
) -> Sequence[tuple[DocumentVersion, Document, File]]:
    """Versions whose content should be stored, in id order after `after` (keyset paging)."""
    stmt = (
        _checked_versions(DocumentVersion, Document, File)
        .order_by(DocumentVersion.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(DocumentVersion.id > after)
    return [(v, d, f) for v, d, f in session.execute(stmt).unique()]


def count_checked_versions(session: Session) -> int:
    """Number of versions `fixity_batch` pages through (a progress bar's total)."""
    return int(session.scalar(_checked_versions(func.count())) or 0)


def fixity_reports(session: Session, limit: int) -> Sequence[FixityReport]:
    """The latest fixity reports."""
    return session.scalars(
        select(FixityReport).order_by(FixityReport.started_at.desc()).limit(limit)
    ).all()


def holds_active_for(session: Session, file_id: uuid.UUID) -> int:
    """Number of active holds of a file."""
    return int(
        session.scalar(
            select(func.count()).where(and_(Hold.file_id == file_id, Hold.released_at.is_(None)))
        )
        or 0
    )


def lock_file(session: Session, file: File) -> None:
    """Lock the file's row for the transaction and re-read it.

    A plain `refresh(..., with_for_update=True)` would lock through the eager outer joins
    of plan item and org unit, which PostgreSQL refuses.
    """
    session.execute(select(File.id).where(File.id == file.id).with_for_update())
    session.refresh(file)


def closed_files_of_item(session: Session, plan_item_id: uuid.UUID) -> Sequence[File]:
    """The closed and held (not yet disposed of) files under a plan item."""
    return session.scalars(
        select(File).where(
            File.plan_item_id == plan_item_id,
            File.closed_at.is_not(None),
            File.status.in_([FileStatus.CLOSED.value, FileStatus.HELD.value]),
        )
    ).all()


def protected_files(session: Session) -> Sequence[tuple[File, bool]]:
    """Closed files and files under an active hold, each with whether it is held."""
    held = active_hold_exists(File.id)
    return [
        (file, bool(is_held))
        for file, is_held in session.execute(
            select(File, held).where(
                or_(and_(File.closed_at.is_not(None),
                         File.status.in_([FileStatus.CLOSED.value, FileStatus.HELD.value])),
                    held)
            )
        ).unique()
    ]

"""SQL of letter templates, letters and print batches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from eakte.files.models import File
from eakte.outgoing.models import Channel, Letter, LetterState, LetterTemplate


def template_by_name(session: Session, name: str) -> LetterTemplate | None:
    """The template with this name."""
    return session.scalar(select(LetterTemplate).where(LetterTemplate.name == name))


def all_templates(session: Session) -> Sequence[LetterTemplate]:
    """Every template by name."""
    return session.scalars(select(LetterTemplate).order_by(LetterTemplate.name)).all()


def letter_of_document(session: Session, document_id: uuid.UUID) -> Letter | None:
    """The letter record of a document."""
    return session.scalar(select(Letter).where(Letter.document_id == document_id))


def letters_of_file(session: Session, file_id: uuid.UUID) -> Sequence[Letter]:
    """A file's letters, newest first."""
    return session.scalars(
        select(Letter).where(Letter.file_id == file_id).order_by(Letter.created_at.desc())
    ).all()


def letter_by_message_ids(session: Session, message_ids: Sequence[str]) -> Letter | None:
    """The letter sent with one of these Message-IDs."""
    if not message_ids:
        return None
    return session.scalar(select(Letter).where(Letter.message_id.in_(message_ids)).limit(1))


def claim_due_email(session: Session, now: datetime, only: uuid.UUID | None) -> Letter | None:
    """Lock the next e-mail letter due for an attempt (skipping rows other workers hold)."""
    stmt = select(Letter).where(
        Letter.state == LetterState.QUEUED.value,
        Letter.channel == Channel.EMAIL.value,
        Letter.next_attempt_at <= now,
    )
    if only is not None:
        stmt = stmt.where(Letter.id == only)
    stmt = stmt.order_by(Letter.next_attempt_at, Letter.id).limit(1)
    # SKIP LOCKED lets several workers share the queue on PostgreSQL; SQLite ignores
    # FOR UPDATE and serialises writers with its database lock instead.
    return session.scalar(stmt.with_for_update(skip_locked=True))


def stale_sending(session: Session, now: datetime) -> Sequence[Letter]:
    """Letters whose delivery attempt was interrupted (its lease ran out)."""
    return session.scalars(
        select(Letter)
        .where(Letter.state == LetterState.SENDING.value, Letter.lease_until < now)
        .with_for_update(skip_locked=True)
    ).all()


def waiting_for_print(session: Session) -> Sequence[Letter]:
    """Letters by post whose dispatch was requested and that are in no print batch yet."""
    return session.scalars(
        select(Letter)
        .where(
            Letter.state == LetterState.QUEUED.value,
            Letter.channel == Channel.POST.value,
            Letter.print_batch_id.is_(None),
        )
        .order_by(Letter.created_at, Letter.id)
        .with_for_update()
    ).all()


def letters_of_batch(session: Session, batch_id: uuid.UUID) -> Sequence[Letter]:
    """The letters of a print batch in print order."""
    return session.scalars(
        select(Letter)
        .where(Letter.print_batch_id == batch_id)
        .order_by(Letter.created_at, Letter.id)
    ).all()


def file_by_reference(session: Session, reference: str) -> File | None:
    """The file with this reference (Aktenzeichen)."""
    return session.scalar(select(File).where(File.reference == reference))


def emails_in_flight(session: Session, file_id: uuid.UUID) -> int:
    """E-mail letters of a file queued or being sent: the sent message still joins the file."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Letter)
            .where(
                Letter.file_id == file_id,
                Letter.channel == Channel.EMAIL.value,
                Letter.state.in_((LetterState.QUEUED.value, LetterState.SENDING.value)),
            )
        )
        or 0
    )

"""The durable e-mail delivery job: at most once per letter, retried with backoff.

Each attempt claims a queued letter under a lease and commits that claim before
talking to the server. The Message-ID was fixed when sending was requested. After the
server's answer one transaction records the outcome: sent (with the .eml kept as a
version), queued again with a later `next_attempt_at`, or failed with the reason. An
attempt that dies mid-way leaves the letter `sending`; once its lease has run out it
is marked failed as "outcome unknown" instead of being sent a second time.
"""

from __future__ import annotations

import io
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import SYSTEM
from eakte.db import on_commit, unit_of_work, utcnow
from eakte.documents import repository as documents_repo
from eakte.documents import service as documents
from eakte.documents.models import Document
from eakte.files.models import File
from eakte.outgoing import repository, smtp
from eakte.outgoing.models import Letter, LetterState
from eakte.settings import Settings
from storage import BlobStore, StorageError

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    sent: list[uuid.UUID] = field(default_factory=list)
    retried: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True)
class _Claim:
    letter_id: uuid.UUID
    document_id: uuid.UUID
    attempts: int
    message_id: str
    recipient_name: str
    recipient_email: str
    subject: str
    reference: str
    pdf_key: str
    letter_date_header: str


def _lease(settings: Settings) -> timedelta:
    # Long enough for a slow server: connect, TLS, and a large DATA under the timeout.
    return timedelta(seconds=settings.smtp_timeout_seconds * 4 + 60)


def _expire_stale(factory: Callable[[], Session]) -> list[uuid.UUID]:
    with unit_of_work(factory) as session:
        failed = []
        for letter in repository.stale_sending(session, utcnow()):
            letter.state = LetterState.FAILED.value
            letter.failure_reason = (
                "the delivery attempt was interrupted after the message may have been handed "
                f"to the mail server; check its log for Message-ID {letter.message_id} before "
                "sending the letter again"
            )
            record(
                session,
                SYSTEM,
                "letter.failed",
                "document",
                letter.document_id,
                reason=letter.failure_reason,
                message_id=letter.message_id,
            )
            failed.append(letter.id)
        return failed


def _claim(
    factory: Callable[[], Session], settings: Settings, only: uuid.UUID | None
) -> _Claim | None:
    with unit_of_work(factory) as session:
        now = utcnow()
        letter = repository.claim_due_email(session, now, only)
        if letter is None:
            return None
        letter.state = LetterState.SENDING.value
        letter.lease_until = now + _lease(settings)
        letter.attempts += 1
        version = documents_repo.version(session, letter.document_id, letter.approved_version or 0)
        file = session.get_one(File, letter.file_id)
        if version is None or letter.message_id is None or letter.recipient_email is None:
            raise RuntimeError(f"letter {letter.id} is queued without content or Message-ID")
        return _Claim(
            letter.id,
            letter.document_id,
            letter.attempts,
            letter.message_id,
            letter.recipient_name,
            letter.recipient_email,
            letter.subject,
            file.reference,
            version.blob_key,
            format_datetime(letter.letter_date),
        )


def build_message(claim: _Claim, settings: Settings, pdf: bytes) -> EmailMessage:
    """The e-mail of a letter: subject with the file reference, the PDF attached."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    # An Address object quotes the display name: a name with quotes, commas or angle brackets
    # cannot add a recipient.
    msg["To"] = Address(display_name=claim.recipient_name, addr_spec=claim.recipient_email)
    msg["Subject"] = f"{claim.subject} (Az. {claim.reference})"
    msg["Date"] = claim.letter_date_header
    msg["Message-ID"] = claim.message_id
    msg.set_content(
        f"Guten Tag,\n\nanbei erhalten Sie unser Schreiben zum Aktenzeichen {claim.reference}.\n"
        "Bitte geben Sie bei Antworten das Aktenzeichen an.\n\n"
        f"Mit freundlichen Grüßen\n{settings.letter_sender_name}\n"
    )
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="brief.pdf")
    return msg


def _backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.smtp_retry_base_seconds * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.smtp_retry_max_seconds))


def _finish(
    factory: Callable[[], Session],
    settings: Settings,
    claim: _Claim,
    result: smtp.SendResult,
    eml: documents.StoredContent | None,
    report: DeliveryReport,
) -> None:
    with unit_of_work(factory) as session:
        letter = session.get_one(Letter, claim.letter_id, with_for_update=True)
        now = utcnow()
        letter.lease_until = None
        details = {"message_id": claim.message_id, "attempt": claim.attempts}
        if result.outcome == smtp.Outcome.ACCEPTED and eml is not None:
            letter.state = LetterState.SENT.value
            letter.sent_at = now
            letter.last_error = None
            document = session.get_one(Document, claim.document_id)
            letter.eml_version = documents.attach_version(session, SYSTEM, document, eml).number
            record(
                session,
                SYSTEM,
                "letter.sent",
                "document",
                claim.document_id,
                channel="email",
                recipient=claim.recipient_email,
                version=letter.approved_version,
                eml_version=letter.eml_version,
                server=result.detail,
                **details,
            )
            report.sent.append(letter.id)
            return
        letter.last_error = result.detail
        give_up = claim.attempts >= settings.smtp_max_attempts
        if result.outcome == smtp.Outcome.TRANSIENT and not give_up:
            letter.state = LetterState.QUEUED.value
            letter.next_attempt_at = now + _backoff(settings, claim.attempts)
            record(
                session,
                SYSTEM,
                "letter.delivery_deferred",
                "document",
                claim.document_id,
                error=result.detail,
                next_attempt_at=letter.next_attempt_at.isoformat(),
                **details,
            )
            report.retried.append(letter.id)
            return
        letter.state = LetterState.FAILED.value
        if result.outcome == smtp.Outcome.TRANSIENT:
            letter.failure_reason = f"gave up after {claim.attempts} attempts: {result.detail}"
        elif result.outcome == smtp.Outcome.UNKNOWN:
            letter.failure_reason = (
                f"{result.detail}; the message may have been delivered (Message-ID "
                f"{claim.message_id}), so it is not sent again automatically"
            )
        else:
            letter.failure_reason = f"the mail server refused the letter: {result.detail}"
        record(
            session,
            SYSTEM,
            "letter.failed",
            "document",
            claim.document_id,
            reason=letter.failure_reason,
            **details,
        )
        report.failed.append(letter.id)


def _attempt(
    factory: Callable[[], Session],
    store: BlobStore,
    settings: Settings,
    claim: _Claim,
    report: DeliveryReport,
) -> None:
    eml: documents.StoredContent | None = None
    try:
        with store.open(claim.pdf_key) as reader:
            pdf = b"".join(reader)
        try:
            message = build_message(claim, settings, pdf)
        except ValueError as exc:  # e.g. a line break in a header (letters older than the check)
            _finish(factory, settings, claim,
                    smtp.SendResult(smtp.Outcome.PERMANENT, f"the message cannot be built: {exc}"),
                    None, report)  # fmt: skip
            return
        # The .eml is stored before the message leaves, so once the server has
        # accepted it, recording "sent" needs nothing that could still fail halfway.
        eml = documents.store_content(
            store,
            io.BytesIO(message.as_bytes()),
            max_size=settings.max_upload_bytes,
            original_name="gesendet.eml",
            document_id=claim.document_id,
        )
    except StorageError as exc:
        result = smtp.SendResult(smtp.Outcome.TRANSIENT, f"document storage unavailable: {exc}")
    else:
        result = smtp.send(settings, message)
    if result.outcome != smtp.Outcome.ACCEPTED and eml is not None:
        documents.discard_content(store, eml)
        eml = None
    log.info(
        "letter %s attempt %d: %s %s",
        claim.letter_id,
        claim.attempts,
        result.outcome,
        result.detail,
    )
    _finish(factory, settings, claim, result, eml, report)


def deliver_pending(
    factory: Callable[[], Session],
    store: BlobStore,
    settings: Settings,
    *,
    only: uuid.UUID | None = None,
    limit: int = 100,
) -> DeliveryReport:
    """Deliver the e-mail letters that are due (all of them, or just `only`)."""
    report = DeliveryReport()
    report.failed.extend(_expire_stale(factory))
    for _ in range(limit):
        claim = _claim(factory, settings, only)
        if claim is None:
            break
        _attempt(factory, store, settings, claim, report)
    return report


def deliver_after_commit(
    session: Session,
    factory: Callable[[], Session],
    store: BlobStore,
    settings: Settings,
    letter_id: uuid.UUID,
) -> None:
    """Try the first delivery right after the request commits, in a background thread.

    Retries belong to `eakte outgoing deliver`; this only saves the wait for the first
    attempt. The claim makes it safe to run next to a worker.
    """

    def run() -> None:
        try:
            deliver_pending(factory, store, settings, only=letter_id, limit=1)
        except Exception:
            log.exception(
                "first delivery attempt of letter %s failed; the worker retries it", letter_id
            )

    on_commit(
        session, lambda: threading.Thread(target=run, name="letter-delivery", daemon=True).start()
    )

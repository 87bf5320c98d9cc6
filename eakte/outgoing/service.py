"""Use cases of outgoing post: templates, letters (draft -> approved -> sent), print batches.

Sending only queues the letter and fixes its Message-ID; delivery runs as a durable
job after commit (eakte.outgoing.delivery), so a rolled-back request never sends.
"""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from collections.abc import Sequence
from email.utils import make_msgid, parseaddr

from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal, Role
from eakte.db import utcnow
from eakte.documents import repository as documents_repo
from eakte.documents import service as documents
from eakte.documents.models import Document, DocumentKind, DocumentSource
from eakte.documents.schemas import DocumentMeta
from eakte.errors import Conflict, Forbidden, InvalidInput, NotFound
from eakte.files import service as files
from eakte.files.models import File, Process
from eakte.guards import require
from eakte.outgoing import render, repository
from eakte.outgoing.models import Channel, Letter, LetterState, LetterTemplate, PrintBatch
from eakte.outgoing.schemas import LetterCreate, TemplateIn
from eakte.settings import Settings
from eakte.worklist import service as worklist
from eakte.worklist.models import Purpose
from storage import BlobStore

# The file reference as it appears in a reply's subject, e.g. "Az. 32.10.05-2026/0042".
REFERENCE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z.])([0-9][0-9A-Za-z.]*-\d{4}/\d{1,6})(?!\d)")


def _require_admin(principal: Principal) -> None:
    if Role.ADMIN not in principal.roles:
        raise Forbidden("only administrators manage letter templates")


def create_template(session: Session, principal: Principal, data: TemplateIn) -> LetterTemplate:
    """Add a letter template (admin); a template that does not parse is refused."""
    _require_admin(principal)
    render.check_template(data.name, data.body_html)
    if repository.template_by_name(session, data.name) is not None:
        raise Conflict(f"a letter template named {data.name!r} exists already")
    template = LetterTemplate(**data.model_dump(), created_by=principal.subject)
    session.add(template)
    session.flush()
    record(session, principal, "letter_template.created", "letter_template", template.id)
    return template


def update_template(
    session: Session, principal: Principal, template_id: uuid.UUID, data: TemplateIn
) -> LetterTemplate:
    """Replace a template's content (admin); letters made from it keep their rendered PDF."""
    _require_admin(principal)
    template = session.get(LetterTemplate, template_id)
    if template is None:
        raise NotFound(f"letter template {template_id} does not exist")
    render.check_template(data.name, data.body_html)
    other = repository.template_by_name(session, data.name)
    if other is not None and other.id != template.id:
        raise Conflict(f"a letter template named {data.name!r} exists already")
    for name, value in data.model_dump().items():
        setattr(template, name, value)
    template.updated_at = utcnow()
    session.flush()
    record(session, principal, "letter_template.updated", "letter_template", template.id)
    return template


def list_templates(session: Session, principal: Principal) -> Sequence[LetterTemplate]:
    """Every letter template."""
    require(principal, Permission.DOCUMENT_READ)
    return repository.all_templates(session)


def get_template(session: Session, principal: Principal, template_id: uuid.UUID) -> LetterTemplate:
    """One letter template."""
    require(principal, Permission.DOCUMENT_READ)
    template = session.get(LetterTemplate, template_id)
    if template is None:
        raise NotFound(f"letter template {template_id} does not exist")
    return template


def _check_cosigner(session: Session, author: str, cosigner: str) -> None:
    # The letter's author, whoever asks: a colleague naming the author would otherwise let
    # the author co-sign their own letter.
    if cosigner == author:
        raise InvalidInput("the co-signature must come from a second clerk, not the author")
    worklist.known_principal(session, cosigner)


def create_letter(
    session: Session,
    store: BlobStore,
    principal: Principal,
    file_id: uuid.UUID,
    data: LetterCreate,
    settings: Settings,
) -> Letter:
    """Draft a letter in a file: render its template to PDF, or take an uploaded PDF."""
    file = files.get_writable_file(session, principal, file_id, Permission.DOCUMENT_WRITE)
    if data.process_id is not None:
        process = session.get(Process, data.process_id)
        if process is None or process.file_id != file.id:
            raise InvalidInput(f"process {data.process_id} is not part of file {file.reference}")
    if data.cosigner is not None:
        _check_cosigner(session, principal.subject, data.cosigner)
    now = utcnow()
    template: LetterTemplate | None = None
    if data.template is not None:
        template = repository.template_by_name(session, data.template)
        if template is None or not template.active:
            raise InvalidInput(f"unknown or inactive letter template {data.template!r}")
        context = render.LetterContext(
            reference=file.reference,
            file_title=file.title,
            subject=data.subject,
            date=now,
            recipient_name=data.recipient.name,
            recipient_address=data.recipient.address or "",
            recipient_email=str(data.recipient.email) if data.recipient.email else None,
            sender_name=settings.letter_sender_name,
            sender_address=settings.letter_sender_address,
            clerk=principal.subject,
            fields=data.fields,
        )
        pdf = render.html_to_pdf(render.render_html(template.name, template.body_html, context))
        content = documents.store_content(
            store, io.BytesIO(pdf), max_size=settings.max_upload_bytes, original_name="brief.pdf"
        )
        try:
            meta = DocumentMeta(
                title=data.subject,
                kind=DocumentKind.OUTGOING,
                source=DocumentSource.API,
                process_id=data.process_id,
            )
            document, _ = documents.add_document(session, principal, file.id, meta, content)
        except BaseException:
            documents.discard_content(store, content)
            raise
    else:
        assert data.document_id is not None  # noqa: S101 - the schema requires one of the two
        document = _uploaded_pdf(session, principal, file, data.document_id)
    letter = Letter(
        document_id=document.id,
        file_id=file.id,
        template_id=template.id if template else None,
        channel=data.channel.value,
        subject=data.subject,
        recipient_name=data.recipient.name,
        recipient_address=data.recipient.address,
        recipient_email=str(data.recipient.email) if data.recipient.email else None,
        fields=data.fields,
        letter_date=now,
        created_by=principal.subject,
        created_at=now,
        cosigner=data.cosigner,
    )
    session.add(letter)
    session.flush()
    record(
        session,
        principal,
        "letter.created",
        "document",
        document.id,
        letter_id=str(letter.id),
        channel=letter.channel,
        template=template.name if template else None,
        cosigner=data.cosigner,
    )
    if data.cosigner is not None:
        _cosign_item(session, principal, letter, data.cosigner)
    return letter


def _uploaded_pdf(
    session: Session, principal: Principal, file: File, document_id: uuid.UUID
) -> Document:
    document = documents.get_document(session, principal, document_id, Permission.DOCUMENT_WRITE)
    if document.file_id != file.id:
        raise InvalidInput(f"document {document_id} is not part of file {file.reference}")
    if repository.letter_of_document(session, document.id) is not None:
        raise Conflict(f"document {document_id} is a letter already")
    version = documents_repo.version(session, document.id, document.current_version)
    if version is None or version.mime_type != "application/pdf":
        raise InvalidInput(f"document {document_id} has no PDF content to send")
    document.kind = DocumentKind.OUTGOING.value
    return document


def _cosign_item(session: Session, principal: Principal, letter: Letter, cosigner: str) -> None:
    worklist.create_item(
        session,
        principal,
        purpose=Purpose.COSIGN,
        object_type="letter",
        object_id=str(letter.id),
        assignee_subject=cosigner,
        file_id=letter.file_id,
        document_id=letter.document_id,
        note=f"Mitzeichnung: {letter.subject}",
    )


def get_letter(
    session: Session,
    principal: Principal,
    letter_id: uuid.UUID,
    permission: Permission = Permission.DOCUMENT_READ,
) -> Letter:
    """A letter of a visible file."""
    letter = session.get(Letter, letter_id)
    if letter is None:
        raise NotFound(f"letter {letter_id} does not exist")
    try:
        documents.get_document(session, principal, letter.document_id, permission)
    except NotFound:
        raise NotFound(f"letter {letter_id} does not exist") from None
    return letter


def read_letter(session: Session, principal: Principal, letter_id: uuid.UUID) -> Letter:
    """A letter's record; the read is audited."""
    letter = get_letter(session, principal, letter_id)
    record(session, principal, "letter.read", "document", letter.document_id)
    return letter


def letters_of_file(session: Session, principal: Principal, file_id: uuid.UUID) -> Sequence[Letter]:
    """The letters of a visible file, newest first."""
    require(principal, Permission.DOCUMENT_READ)
    file = files.get_file(session, principal, file_id)
    record(session, principal, "letter.listed", "file", file.id)
    return repository.letters_of_file(session, file.id)


def _writable_letter(session: Session, principal: Principal, letter_id: uuid.UUID) -> Letter:
    letter = get_letter(session, principal, letter_id, Permission.DOCUMENT_WRITE)
    # The file's row is locked (as closing it locks it) so that a letter queued for sending
    # and the file's closure serialise: closure waits for letters on their way out.
    files.get_writable_file(
        session, principal, letter.file_id, Permission.DOCUMENT_WRITE, lock=True
    )
    # Lock the letter so two requests cannot both move it on (e.g. send twice).
    session.refresh(letter, with_for_update=True)
    return letter


def approve(session: Session, principal: Principal, letter_id: uuid.UUID) -> Letter:
    """Approve a draft; its current version is frozen as the one to be sent."""
    letter = _writable_letter(session, principal, letter_id)
    if letter.state != LetterState.DRAFT.value:
        raise Conflict(f"letter {letter.id} is {letter.state}; only a draft can be approved")
    document = session.get_one(Document, letter.document_id)
    # Locked and read again: a version uploaded meanwhile is either committed and approved
    # here, or waits and then finds the document frozen (see documents.check_can_add_version).
    session.refresh(document, with_for_update=True)
    if document.current_version == 0:
        raise Conflict(f"letter {letter.id} has no content to approve")
    # A draft takes new versions of any type; only a PDF can be printed or sent as brief.pdf.
    current = documents_repo.version(session, document.id, document.current_version)
    if current is None or current.mime_type != "application/pdf":
        raise Conflict(
            f"letter {letter.id}'s current version is "
            f"{current.mime_type if current else 'missing'}, not a PDF; it cannot be approved"
        )
    letter.state = LetterState.APPROVED.value
    letter.approved_by, letter.approved_at = principal.subject, utcnow()
    letter.approved_version = document.current_version
    document.frozen = True
    session.flush()
    record(
        session,
        principal,
        "letter.approved",
        "document",
        document.id,
        version=letter.approved_version,
    )
    return letter


def request_cosign(
    session: Session, principal: Principal, letter_id: uuid.UUID, cosigner: str
) -> Letter:
    """Ask a second clerk to co-sign before the letter may be sent."""
    letter = _writable_letter(session, principal, letter_id)
    if letter.state not in (LetterState.DRAFT.value, LetterState.APPROVED.value):
        raise Conflict(f"letter {letter.id} is {letter.state}; it is past co-signing")
    if letter.cosigned_at is not None:
        raise Conflict(f"letter {letter.id} was co-signed by {letter.cosigned_by} already")
    _check_cosigner(session, letter.created_by, cosigner)
    if letter.cosigner is not None and letter.cosigner != cosigner:
        # The co-signer asked before is no longer waited for: their work item goes.
        worklist.withdraw_open(
            session, principal, Purpose.COSIGN, "letter", str(letter.id), letter.cosigner
        )
    letter.cosigner = cosigner
    session.flush()
    record(
        session,
        principal,
        "letter.cosign_requested",
        "document",
        letter.document_id,
        cosigner=cosigner,
    )
    _cosign_item(session, principal, letter, cosigner)
    return letter


def cosign(session: Session, principal: Principal, letter_id: uuid.UUID) -> Letter:
    """Co-sign (Mitzeichnung) an approved letter as the clerk asked to."""
    letter = get_letter(session, principal, letter_id, Permission.DOCUMENT_WRITE)
    session.refresh(letter, with_for_update=True)
    if letter.cosigner != principal.subject or principal.subject == letter.created_by:
        raise Forbidden(f"letter {letter.id} awaits no co-signature from you")
    if letter.state != LetterState.APPROVED.value:
        raise Conflict(
            f"letter {letter.id} is {letter.state}; it is co-signed once approved, before sending"
        )
    if letter.cosigned_at is not None:
        raise Conflict(f"letter {letter.id} is co-signed already")
    letter.cosigned_by, letter.cosigned_at = principal.subject, utcnow()
    session.flush()
    record(
        session,
        principal,
        "letter.cosigned",
        "document",
        letter.document_id,
        version=letter.approved_version,
    )
    worklist.complete_open(session, principal, Purpose.COSIGN, "letter", str(letter.id))
    return letter


def request_send(
    session: Session, principal: Principal, letter_id: uuid.UUID, settings: Settings
) -> Letter:
    """Queue an approved (and, if asked for, co-signed) letter for its channel."""
    letter = _writable_letter(session, principal, letter_id)
    if letter.state != LetterState.APPROVED.value:
        raise Conflict(f"letter {letter.id} is {letter.state}; only an approved letter can be sent")
    if letter.cosigner is not None and letter.cosigned_at is None:
        raise Conflict(f"letter {letter.id} still needs the co-signature of {letter.cosigner}")
    now = utcnow()
    letter.state = LetterState.QUEUED.value
    letter.send_requested_by = principal.subject
    if letter.channel == Channel.EMAIL.value:
        # Fixed before any attempt: the Message-ID identifies this letter at the mail
        # server and in replies, whatever happens to the delivery job.
        domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "eakte.invalid"
        letter.message_id = make_msgid(idstring=letter.id.hex[:12], domain=domain)
        letter.next_attempt_at = now
    session.flush()
    record(
        session,
        principal,
        "letter.send_requested",
        "document",
        letter.document_id,
        channel=letter.channel,
        recipient=letter.recipient_email or letter.recipient_name,
        message_id=letter.message_id,
    )
    return letter


def _require_mailroom(principal: Principal) -> None:
    if not ({Role.MAILROOM, Role.ADMIN} & principal.roles):
        raise Forbidden("print batches are the mailroom's")


def create_print_batch(session: Session, principal: Principal) -> tuple[PrintBatch, list[Letter]]:
    """Collect every letter waiting for postal dispatch into one print batch (mailroom)."""
    _require_mailroom(principal)
    letters = list(repository.waiting_for_print(session))
    if not letters:
        raise Conflict("no letters are waiting for postal dispatch")
    batch = PrintBatch(created_by=principal.subject, letter_count=len(letters))
    session.add(batch)
    session.flush()
    for letter in letters:
        letter.print_batch_id = batch.id
    session.flush()
    record(
        session,
        principal,
        "print_batch.created",
        "print_batch",
        batch.id,
        letters=[str(letter.id) for letter in letters],
    )
    return batch, letters


def get_print_batch(
    session: Session, principal: Principal, batch_id: uuid.UUID
) -> tuple[PrintBatch, Sequence[Letter]]:
    """A print batch and its letters (mailroom)."""
    _require_mailroom(principal)
    batch = session.get(PrintBatch, batch_id)
    if batch is None:
        raise NotFound(f"print batch {batch_id} does not exist")
    return batch, repository.letters_of_batch(session, batch.id)


def print_batch_pdf(
    session: Session, store: BlobStore, principal: Principal, batch_id: uuid.UUID
) -> bytes:
    """One PDF of every letter of the batch, in order; each letter's read is audited."""
    import pikepdf  # here: most processes never print, and it costs 15 MiB of memory

    batch, letters = get_print_batch(session, principal, batch_id)
    merged = pikepdf.Pdf.new()
    # pikepdf copies pages lazily: every source must stay open until the merged PDF is saved.
    with contextlib.ExitStack() as sources:
        for letter in letters:
            version = documents_repo.version(
                session, letter.document_id, letter.approved_version or 0
            )
            if version is None:
                raise Conflict(f"letter {letter.id} has no approved version to print")
            with store.open(version.blob_key) as reader:
                data = b"".join(reader)
            try:
                pdf = sources.enter_context(pikepdf.open(io.BytesIO(data)))
            except pikepdf.PdfError as exc:
                raise Conflict(
                    f"letter {letter.id} ({letter.subject}) is not a readable PDF: {exc}"
                ) from None
            merged.pages.extend(pdf.pages)
            record(
                session,
                principal,
                "version.content_read",
                "document",
                letter.document_id,
                version=version.number,
                print_batch=str(batch.id),
            )
        out = io.BytesIO()
        merged.save(out)
    return out.getvalue()


def mark_posted(session: Session, principal: Principal, batch_id: uuid.UUID) -> PrintBatch:
    """The mailroom has posted the batch: its letters count as sent now."""
    batch, letters = get_print_batch(session, principal, batch_id)
    session.refresh(batch, with_for_update=True)
    if batch.posted_at is not None:
        raise Conflict(f"print batch {batch.id} was marked posted already")
    now = utcnow()
    batch.posted_at, batch.posted_by = now, principal.subject
    for letter in letters:
        letter.state = LetterState.SENT.value
        letter.sent_at = now
        record(
            session,
            principal,
            "letter.sent",
            "document",
            letter.document_id,
            channel=letter.channel,
            recipient=letter.recipient_name,
            version=letter.approved_version,
            print_batch=str(batch.id),
        )
    session.flush()
    return batch


def match_reply(
    session: Session, message_id_refs: Sequence[str], subject: str | None
) -> tuple[File, Process | None] | None:
    """The file (and process) a reply belongs to: by a sent Message-ID, else a reference.

    `message_id_refs` are the ids of the reply's In-Reply-To and References headers
    (with or without angle brackets). For the IMAP intake; no principal, no audit.
    """
    refs = [r.strip() for r in message_id_refs if r.strip()]
    variants = {r if r.startswith("<") else f"<{r}>" for r in refs} | set(refs)
    letter = repository.letter_by_message_ids(session, sorted(variants))
    if letter is not None:
        document = session.get_one(Document, letter.document_id)
        process = session.get(Process, document.process_id) if document.process_id else None
        return session.get_one(File, letter.file_id), process
    for reference in REFERENCE_IN_TEXT.findall(subject or ""):
        file = repository.file_by_reference(session, reference)
        if file is not None:
            return file, None
    return None

"""HTTP routes of letter templates, letters and the mailroom's print batches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy.orm import Session, sessionmaker

from eakte.deps import PrincipalDep, SessionDep, SettingsDep, StoreDep, get_session_factory
from eakte.outgoing import delivery, service
from eakte.outgoing.models import Channel, Letter, LetterTemplate
from eakte.outgoing.schemas import (
    CosignRequest,
    LetterCreate,
    LetterOut,
    PrintBatchOut,
    TemplateIn,
    TemplateOut,
)
from eakte.worklist.service import remember

router = APIRouter(prefix="/api/v1", tags=["outgoing"])


@router.post("/letter-templates", status_code=status.HTTP_201_CREATED, response_model=TemplateOut)
def create_template(
    data: TemplateIn, session: SessionDep, principal: PrincipalDep
) -> LetterTemplate:
    """Add a letter template (admin)."""
    return service.create_template(session, principal, data)


@router.get("/letter-templates", response_model=list[TemplateOut])
def list_templates(session: SessionDep, principal: PrincipalDep) -> Sequence[LetterTemplate]:
    """All letter templates."""
    return service.list_templates(session, principal)


@router.get("/letter-templates/{template_id}", response_model=TemplateOut)
def get_template(
    template_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> LetterTemplate:
    """One letter template."""
    return service.get_template(session, principal, template_id)


@router.put("/letter-templates/{template_id}", response_model=TemplateOut)
def update_template(
    template_id: uuid.UUID, data: TemplateIn, session: SessionDep, principal: PrincipalDep
) -> LetterTemplate:
    """Replace a letter template (admin)."""
    return service.update_template(session, principal, template_id, data)


@router.post(
    "/files/{file_id}/letters", status_code=status.HTTP_201_CREATED, response_model=LetterOut
)
def create_letter(
    file_id: uuid.UUID,
    data: LetterCreate,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
) -> Letter:
    """Draft a letter from a template (rendered to PDF) or from an uploaded PDF document."""
    remember(session, principal)
    return service.create_letter(session, store, principal, file_id, data, settings)


@router.get("/files/{file_id}/letters", response_model=list[LetterOut])
def list_letters(
    file_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Sequence[Letter]:
    """The file's letters, newest first."""
    return service.letters_of_file(session, principal, file_id)


@router.get("/letters/{letter_id}", response_model=LetterOut)
def get_letter(letter_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Letter:
    """A letter with its approval and delivery record."""
    return service.read_letter(session, principal, letter_id)


@router.post("/letters/{letter_id}/approve", response_model=LetterOut)
def approve(letter_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Letter:
    """Approve a draft; its content is frozen."""
    return service.approve(session, principal, letter_id)


@router.post("/letters/{letter_id}/cosign-request", response_model=LetterOut)
def request_cosign(
    letter_id: uuid.UUID, data: CosignRequest, session: SessionDep, principal: PrincipalDep
) -> Letter:
    """Ask a second clerk for the co-signature (Mitzeichnung)."""
    remember(session, principal)
    return service.request_cosign(session, principal, letter_id, data.cosigner)


@router.post("/letters/{letter_id}/cosign", response_model=LetterOut)
def cosign(letter_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Letter:
    """Co-sign an approved letter."""
    remember(session, principal)
    return service.cosign(session, principal, letter_id)


@router.post("/letters/{letter_id}/send", response_model=LetterOut)
def send(
    letter_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
    factory: sessionmaker[Session] = Depends(get_session_factory),
) -> Letter:
    """Send an approved letter: e-mail is delivered by the job, post goes to a print batch."""
    letter = service.request_send(session, principal, letter_id, settings)
    if letter.channel == Channel.EMAIL.value and settings.outgoing_deliver_on_commit:
        delivery.deliver_after_commit(session, factory, store, settings, letter.id)
    return letter


def _batch_out(batch: object, letters: Sequence[Letter]) -> PrintBatchOut:
    out = PrintBatchOut.model_validate(batch)
    out.letter_ids = [letter.id for letter in letters]
    return out


@router.post("/print-batches", status_code=status.HTTP_201_CREATED, response_model=PrintBatchOut)
def create_print_batch(session: SessionDep, principal: PrincipalDep) -> PrintBatchOut:
    """Collect all letters waiting for postal dispatch into a print batch (mailroom)."""
    return _batch_out(*service.create_print_batch(session, principal))


@router.get("/print-batches/{batch_id}", response_model=PrintBatchOut)
def get_print_batch(
    batch_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> PrintBatchOut:
    """A print batch and its letters."""
    return _batch_out(*service.get_print_batch(session, principal, batch_id))


@router.get(
    "/print-batches/{batch_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def print_batch_pdf(
    batch_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> Response:
    """One PDF with every letter of the batch, to print."""
    pdf = service.print_batch_pdf(session, store, principal, batch_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="druck-{batch_id}.pdf"'},
    )


@router.post("/print-batches/{batch_id}/posted", response_model=PrintBatchOut)
def mark_posted(batch_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> PrintBatchOut:
    """The batch went out by post; its letters are sent."""
    batch = service.mark_posted(session, principal, batch_id)
    return _batch_out(*service.get_print_batch(session, principal, batch.id))

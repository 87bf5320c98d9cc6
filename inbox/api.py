"""HTTP routes of the inbox: submit post, list by state, triage assignment, re-queue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from eakte.auth.principal import Permission
from eakte.db import unit_of_work
from eakte.deps import (
    OffsetQuery,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    get_session_factory,
)
from eakte.documents.api import UPLOAD_BODY, content_disposition
from eakte.documents.schemas import DocumentOut
from eakte.errors import InvalidInput
from eakte.guards import require
from eakte.idempotency.service import IdempotencyDep, Replay
from eakte.multipart import receive_upload
from inbox import service
from inbox.models import ItemSource, ItemState
from inbox.schemas import AssignIn, ItemOut

router = APIRouter(prefix="/api/v1/inbox", tags=["inbox"])

FactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ItemOut,
             openapi_extra=UPLOAD_BODY)
async def submit(
    request: Request, principal: PrincipalDep, settings: SettingsDep, store: StoreDep,
    factory: FactoryDep, idem: IdempotencyDep,
) -> ItemOut:
    """Hand in a piece of post (PDF, TIFF, JPEG, PNG, .eml); the pipeline takes it from here."""

    require(principal, Permission.INBOX_SUBMIT)
    stored, fields = await receive_upload(
        request,
        lambda stream, name: (service.store_original(store, stream,
                                                     max_size=settings.max_upload_bytes), name),
        lambda result: store.delete(result[0].key),
    )
    original, name = stored
    if fields:
        await run_in_threadpool(store.delete, original.key)
        raise InvalidInput(f"unexpected form fields: {', '.join(sorted(fields))}")

    def commit() -> ItemOut:
        with unit_of_work(factory) as session:
            item = service.record_item(session, principal, original, source=ItemSource.API,
                                       original_name=name)
            out = ItemOut.of(item)
            idem.save(session, status.HTTP_202_ACCEPTED, out, original.sha256, name)
            return out

    try:
        return await run_in_threadpool(commit)
    except Replay:
        await run_in_threadpool(store.delete, original.key)  # the retry's copy of the content
        raise


@router.get("", response_model=list[ItemOut])
def list_items(
    session: SessionDep,
    principal: PrincipalDep,
    state: ItemState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> list[ItemOut]:
    """Inbound items, newest first; `state=triage` is the mailroom's to-do list."""
    return [ItemOut.of(i) for i in service.list_items(session, principal, state, limit, offset)]


@router.get("/{item_id}", response_model=ItemOut)
def get_item(item_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> ItemOut:
    """One inbound item."""
    return ItemOut.of(service.get_item(session, principal, item_id))


@router.get("/{item_id}/original", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_original(
    item_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> StreamingResponse:
    """The original bytes as they came in (until the item is filed)."""
    item = service.read_original(session, principal, item_id)
    reader = store.open(item.original_key)

    def body() -> Iterator[bytes]:
        with reader:
            yield from reader

    return StreamingResponse(
        body(), media_type=item.mime_type or "application/octet-stream",
        headers={"Content-Length": str(item.original_size), "ETag": f'"{item.original_sha256}"',
                 "Content-Disposition": content_disposition(item.original_name, str(item.id)),
                 "X-Content-Type-Options": "nosniff"},
    )


@router.post("/{item_id}/assign", response_model=DocumentOut)
async def assign(
    item_id: uuid.UUID, data: AssignIn, principal: PrincipalDep, store: StoreDep,
    factory: FactoryDep,
) -> DocumentOut:
    """File an item from triage into a file (mailroom)."""

    def prepare() -> list[service.PreparedDocument]:
        with unit_of_work(factory) as session:
            item = service.check_assignable(session, principal, item_id, data.file_id)
            parts = service.item_parts(session, item_id)
        return service.prepare_documents(store, item, parts)

    content = await run_in_threadpool(prepare)

    def commit() -> DocumentOut:
        with unit_of_work(factory) as session:
            document = service.file_item(
                session, principal, item_id, data.file_id, content, process_id=data.process_id,
                title=data.title, kind=data.kind, method="triage",
            )
            return DocumentOut.model_validate(document)

    # The blob key is fixed by the item id: if this fails, a retry overwrites the same key.
    document = await run_in_threadpool(commit)
    await run_in_threadpool(service.drop_inbox_copies, factory, store, item_id)
    return document


@router.post("/{item_id}/requeue", response_model=ItemOut)
def requeue(item_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> ItemOut:
    """Send a quarantined item through the pipeline again (admin)."""
    return ItemOut.of(service.requeue(session, principal, item_id))

"""HTTP routes of documents and versions: streamed upload and streamed, ranged download."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from eakte.db import unit_of_work
from eakte.deps import (
    OffsetQuery,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    get_session_factory,
)
from eakte.documents import service
from eakte.documents.models import Document, DocumentVersion
from eakte.documents.schemas import (
    DocumentMeta,
    DocumentOut,
    DocumentUpdate,
    PaperDocumentCreate,
    PaperUpdate,
    VersionOut,
)
from eakte.errors import InvalidInput, PayloadTooLarge
from eakte.idempotency.service import IdempotencyDep
from eakte.multipart import MultipartStream, receive_upload
from eakte.settings import Settings
from storage import BlobStore

router = APIRouter(prefix="/api/v1", tags=["documents"])

T = TypeVar("T")

FactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]

#: Uploads whose declared length is at most this are received whole before anything is
#: stored (`_upload_whole`): one transaction instead of two, and the blob is written while
#: the rows are. Below S3's part size, so such a blob is a single PUT. Larger uploads stream.
SMALL_UPLOAD = 4 * 1024 * 1024
#: Threads that write the blobs of small uploads beside their transactions.
_WRITERS = ThreadPoolExecutor(16, thread_name_prefix="blob-writer")

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string"},
                        "kind": {
                            "type": "string",
                            "enum": ["incoming", "outgoing", "note", "invoice", "other"],
                        },
                        "process_id": {"type": "string", "format": "uuid"},
                        "received_at": {"type": "string", "format": "date-time"},
                        "sender_contact_id": {"type": "string", "format": "uuid"},
                    },
                }
            }
        },
    }
}


def _out(document: Document, version: DocumentVersion | None) -> DocumentOut:
    out = DocumentOut.model_validate(document)
    out.latest = VersionOut.model_validate(version) if version is not None else None
    return out


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    # Multipart framing adds a few hundred bytes; a body far beyond the limit is refused unread.
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(f"the upload exceeds the limit of {limit} bytes")


async def _receive_content(
    request: Request, store: StoreDep, limit: int, document_id: uuid.UUID | None
) -> tuple[service.StoredContent, dict[str, str]]:
    return await receive_upload(
        request,
        lambda stream, name: service.store_content(
            store, stream, max_size=limit, original_name=name, document_id=document_id
        ),
        lambda content: service.discard_content(store, content),
    )


async def _upload(
    request: Request,
    settings: Settings,
    store: BlobStore,
    factory: sessionmaker[Session],
    *,
    authorise: Callable[[Session, bool], object],
    record: Callable[[Session, service.StoredContent, dict[str, str]], T],
    document_id: uuid.UUID | None = None,
) -> T:
    """The shape every upload shares: authorise, stream to the store, record in one transaction.

    Authorisation comes before the body is read, so a refused caller cannot make us store
    gigabytes; no transaction is open while the content streams; content whose rows are not
    written is removed again. Small uploads take a shorter way (`_upload_whole`).
    `authorise(session, lock)` locks the file's row if `lock` is true.
    """

    def check() -> None:
        with unit_of_work(factory) as session:
            authorise(session, False)

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) <= SMALL_UPLOAD:
        return await _upload_whole(
            request, settings, store, factory,
            authorise=authorise, record=record, document_id=document_id,
        )  # fmt: skip

    await run_in_threadpool(check)
    _check_length(request, settings.max_upload_bytes)
    content, fields = await _receive_content(request, store, settings.max_upload_bytes,
                                             document_id)

    try:
        return await run_in_threadpool(
            _record, factory, lambda session: record(session, content, fields),
            lambda: service.discard_content(store, content),
        )  # fmt: skip
    except ValidationError as exc:
        raise _invalid_fields(exc) from None
    # Not discarded when the client goes away meanwhile: the thread writing the rows goes on
    # and may commit them. A blob left without rows is the orphan sweeper's.


def _record(
    factory: sessionmaker[Session], work: Callable[[Session], T], discard: Callable[[], None]
) -> T:
    """Run `work` in one transaction; `discard` removes its content if the rows are not written.

    A COMMIT that fails may have committed all the same: the connection can break after the
    database made the transaction durable (a primary that crashes as its standby takes over;
    a retried request then finds the rows). So a failed commit keeps the content, and the
    orphan sweeper removes it after its grace period if no row names it; only a failure
    before the commit, when nothing can have been written, discards it at once.
    """
    session = factory()
    try:
        try:
            result = work(session)
            session.flush()
        except BaseException:
            session.rollback()
            discard()
            raise
        session.commit()
        return result
    finally:
        session.close()


async def _upload_whole(
    request: Request,
    settings: Settings,
    store: BlobStore,
    factory: sessionmaker[Session],
    *,
    authorise: Callable[[Session, bool], object],
    record: Callable[[Session, service.StoredContent, dict[str, str]], T],
    document_id: uuid.UUID | None,
) -> T:
    """A small upload: received whole, then authorised, stored and recorded in one transaction.

    The transaction authorises before anything is stored, so a refused caller stores
    nothing; the blob is written while the rows are, and the commit waits for it, so a
    committed row always has its blob. A blob whose rows are certainly not committed is
    removed at once (see `_record`).
    The file's row stays locked while its blob is written (at most SMALL_UPLOAD bytes):
    small uploads into one file queue behind each other for that long.
    """
    form = MultipartStream(request)
    data = await form.read_whole()

    def work() -> T:
        # Hashing and type detection here, not on the event loop.
        content = service.prepare_content(
            data, max_size=settings.max_upload_bytes, original_name=form.filename,
            document_id=document_id,
        )  # fmt: skip
        stored: Future[None] | None = None

        def write(session: Session) -> T:
            nonlocal stored
            # Locked here already: `record`, which locks it too, then reads no row again.
            # Held in a local while `record` runs: the session's identity map keeps objects
            # only weakly, and a collected file row would be selected a second time.
            _authorised = authorise(session, True)
            stored = _WRITERS.submit(service.store_prepared, store, content, data)
            result = record(session, content, form.fields)
            stored.result()
            return result

        def discard() -> None:
            if stored is not None and stored.exception() is None:
                service.discard_content(store, content)

        return _record(factory, write, discard)

    try:
        return await run_in_threadpool(work)
    except ValidationError as exc:
        raise _invalid_fields(exc) from None


def _invalid_fields(exc: ValidationError) -> InvalidInput:
    return InvalidInput(
        "invalid form fields", errors=exc.errors(include_url=False, include_input=False)
    )


def _no_fields(fields: dict[str, str]) -> None:
    if fields:
        raise InvalidInput(f"unexpected form fields: {', '.join(sorted(fields))}")


@router.post(
    "/files/{file_id}/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    openapi_extra=UPLOAD_BODY,
)
async def upload_document(
    file_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: StoreDep,
    factory: FactoryDep,
    idem: IdempotencyDep,
) -> DocumentOut:
    """Add a document with its first version (multipart: `file` plus optional fields)."""

    def record(
        session: Session, content: service.StoredContent, fields: dict[str, str]
    ) -> DocumentOut:
        meta = DocumentMeta.model_validate(fields)
        out = _out(*service.add_document(session, principal, file_id, meta, content))
        idem.save(session, status.HTTP_201_CREATED, out, content.sha256, fields)
        return out

    return await _upload(
        request, settings, store, factory, record=record,
        authorise=lambda session, lock: service.check_can_add(
            session, principal, file_id, lock=lock
        ),
    )


@router.get("/files/{file_id}/documents", response_model=list[DocumentOut])
def list_documents(
    file_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: OffsetQuery = 0,
) -> list[DocumentOut]:
    """Documents of a file with their current versions."""
    return [
        _out(d, v) for d, v in service.list_documents(session, principal, file_id, limit, offset)
    ]


@router.get("/documents/{document_id}", response_model=DocumentOut)
def get_document(
    document_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> DocumentOut:
    """A document's metadata and current version."""
    return _out(*service.read_document(session, principal, document_id))


@router.patch("/documents/{document_id}", response_model=DocumentOut)
def update_document(
    document_id: uuid.UUID, data: DocumentUpdate, session: SessionDep, principal: PrincipalDep
) -> DocumentOut:
    """Change a document's title, kind or process."""
    document = service.update_document(session, principal, document_id, data)
    return _out(document, None)


@router.post(
    "/documents/{document_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionOut,
    openapi_extra=UPLOAD_BODY,
)
async def upload_version(
    document_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: StoreDep,
    factory: FactoryDep,
    idem: IdempotencyDep,
) -> DocumentVersion:
    """Add a new version of a document (multipart: `file`)."""

    def record(
        session: Session, content: service.StoredContent, fields: dict[str, str]
    ) -> DocumentVersion:
        _no_fields(fields)
        version = service.add_version(session, principal, document_id, content)[1]
        idem.save(session, status.HTTP_201_CREATED, VersionOut.model_validate(version),
                  content.sha256)
        return version

    return await _upload(
        request, settings, store, factory, record=record, document_id=document_id,
        authorise=lambda session, lock: service.check_can_add_version(
            session, principal, document_id, lock=lock
        ),
    )


@router.post(
    "/files/{file_id}/paper-documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
)
def add_paper_document(
    file_id: uuid.UUID, data: PaperDocumentCreate, session: SessionDep, principal: PrincipalDep
) -> DocumentOut:
    """Record a paper-only document (no content yet) with where the paper lies."""
    return _out(service.add_paper_document(session, principal, file_id, data), None)


@router.patch("/documents/{document_id}/paper", response_model=DocumentOut)
def update_paper(
    document_id: uuid.UUID, data: PaperUpdate, session: SessionDep, principal: PrincipalDep
) -> DocumentOut:
    """Move a paper original or record who has borrowed it."""
    return _out(service.update_paper(session, principal, document_id, data), None)


@router.post(
    "/documents/{document_id}/scan",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    openapi_extra=UPLOAD_BODY,
)
async def upload_scan(
    document_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: StoreDep,
    factory: FactoryDep,
) -> DocumentOut:
    """Attach the scan of a paper document (multipart: `file`); the paper may go later."""

    def record(
        session: Session, content: service.StoredContent, fields: dict[str, str]
    ) -> DocumentOut:
        _no_fields(fields)
        return _out(*service.add_scan(session, principal, document_id, content,
                                      settings.paper_keep_after_scan_days))

    return await _upload(
        request, settings, store, factory, record=record, document_id=document_id,
        authorise=lambda session, lock: service.check_can_scan(
            session, principal, document_id, lock=lock
        ),
    )


@router.get("/documents/{document_id}/versions", response_model=list[VersionOut])
def list_versions(
    document_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[DocumentVersion]:
    """All versions of a document."""
    return list(service.list_versions(session, principal, document_id))


@router.get("/documents/{document_id}/versions/{number}", response_model=VersionOut)
def get_version(
    document_id: uuid.UUID, number: int, session: SessionDep, principal: PrincipalDep
) -> DocumentVersion:
    """One version's metadata."""
    return service.get_version(session, principal, document_id, number)


def _none_match(header: str, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110 13.1.2): W/"x" matches "x"; * matches any."""
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in [t.removeprefix("W/") for t in tags]


def content_disposition(name: str | None, fallback: str) -> str:
    filename = name or fallback
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@router.get(
    "/documents/{document_id}/versions/{number}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "Partial content"},
        304: {"description": "Not modified"},
        416: {"description": "Range not satisfiable"},
    },
)
def download_version(
    document_id: uuid.UUID,
    number: int,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """The version's content, streamed; supports Range and If-None-Match (ETag = sha256)."""
    version = service.get_version(session, principal, document_id, number)
    etag = f'"{version.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(
            version.original_name, f"{document_id}-v{number}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    }
    if if_none_match and _none_match(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    byte_range = service.parse_range(range_header, version.size)
    service.open_content(session, principal, document_id, number, byte_range)
    if byte_range is None:
        digest = base64.b64encode(bytes.fromhex(version.sha256)).decode()
        headers.update({"Content-Length": str(version.size), "Repr-Digest": f"sha-256=:{digest}:"})
        code = status.HTTP_200_OK
    else:
        headers.update(
            {
                "Content-Length": str(byte_range.length),
                "Content-Range": f"bytes {byte_range.start}-{byte_range.end}/{version.size}",
            }
        )
        code = status.HTTP_206_PARTIAL_CONTENT
    return StreamingResponse(
        service.stream_content(store, version, byte_range),
        status_code=code,
        media_type=version.mime_type,
        headers=headers,
    )

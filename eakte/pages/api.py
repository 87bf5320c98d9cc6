"""The file page (/files/{id}) and its sign-in: HTML for the clerk the desktop agent sends.

Browsers cannot send a bearer header when the agent opens a link, so the page signs the
clerk in once with a token and keeps it in an HttpOnly, SameSite=Strict cookie. Every
value is HTML-escaped by Jinja2's autoescape.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from eakte.auth.principal import Principal
from eakte.contacts.models import Contact
from eakte.db import unit_of_work
from eakte.deps import SettingsDep, StoreDep, principal_from_credential
from eakte.documents import service as documents
from eakte.documents.models import DocumentVersion
from eakte.errors import DomainError, Forbidden, NotFound, Unauthenticated
from eakte.files import service as files
from eakte.pages.auth import COOKIE, signed_in_principal

router = APIRouter(tags=["pages"], include_in_schema=False)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)

# Pages load nothing from elsewhere and may not be framed; inline CSS only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_TOKEN_LENGTH = 8192


def _html(name: str, status: int = 200, **context: object) -> HTMLResponse:
    body = _templates.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _safe_next(target: str | None) -> str:
    """A same-site path to return to: never another host (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _to_signin(request: Request) -> RedirectResponse:
    target = quote(request.url.path, safe="/")
    return RedirectResponse(f"/signin?next={target}", status_code=303, headers=SECURITY_HEADERS)


async def _page_principal(request: Request) -> Principal | None:
    try:
        return await run_in_threadpool(signed_in_principal, request)
    except Unauthenticated:
        return None


def _require_same_origin(request: Request) -> None:
    """Refuse a sign-in or sign-out posted from another site (login CSRF).

    SameSite only governs when the browser sends the cookie, not when a response sets one:
    another site could sign a visitor in as someone else. Browsers name the posting site in
    Sec-Fetch-Site and Origin; a request without either (not from a browser) passes.
    """
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden("sign-in and sign-out are accepted from this site's own pages only")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("sign-in and sign-out are accepted from this site's own pages only")


@router.get("/signin", response_class=HTMLResponse)
def signin_form(next: str = "/") -> HTMLResponse:  # noqa: A002 - the query parameter's name
    """The sign-in form: paste the token the identity provider or `eakte token` gave you."""
    return _html("signin.html", next=_safe_next(next), error=None)


@router.post("/signin", response_model=None)
def signin(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=MAX_TOKEN_LENGTH)],
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    """Check the token and keep it in the session cookie."""
    _require_same_origin(request)
    target = _safe_next(next)
    token = token.strip()
    try:
        principal_from_credential(request, token)
    except Unauthenticated as exc:
        return _html("signin.html", status=401, next=target, error=exc.detail)
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.token_ttl_seconds,
        httponly=True,
        samesite="strict",
        secure=settings.public_url.startswith("https://") or request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/signout")
def signout(request: Request) -> RedirectResponse:
    """Forget the session cookie."""
    _require_same_origin(request)
    response = RedirectResponse("/signin", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path="/")
    return response


def _file_page(request: Request, principal: Principal, file_id: uuid.UUID) -> HTMLResponse:
    with unit_of_work(request.app.state.session_factory) as session:
        file = files.get_file(session, principal, file_id)
        links = files.file_contacts(session, principal, file_id)
        contacts = [(link, session.get_one(Contact, link.contact_id)) for link in links]
        docs = [
            (document, documents.list_versions(session, principal, document.id))
            for document, _ in documents.list_documents(session, principal, file_id)
        ]
        return _html(
            "file.html", file=file, contacts=contacts, documents=docs, subject=principal.subject
        )


@router.get("/files/{file_id}", response_class=HTMLResponse, response_model=None)
async def file_page(request: Request, file_id: uuid.UUID) -> Response:
    """A file's reference, title, contacts and documents with their versions."""
    principal = await _page_principal(request)
    if principal is None:
        return _to_signin(request)
    try:
        return await run_in_threadpool(_file_page, request, principal, file_id)
    except DomainError as exc:
        return HTMLResponse(
            f"<!doctype html><title>{exc.status}</title><p>{exc.title}</p>",
            status_code=exc.status,
            headers=SECURITY_HEADERS,
        )


def _open_version(
    request: Request, principal: Principal, file_id: uuid.UUID, document_id: uuid.UUID, n: int
) -> DocumentVersion:
    with unit_of_work(request.app.state.session_factory) as session:
        document = documents.get_document(session, principal, document_id)
        if document.file_id != file_id:
            raise NotFound(f"document {document_id} does not exist")
        return documents.open_content(session, principal, document_id, n, None)


@router.get("/files/{file_id}/documents/{document_id}/versions/{number}", response_model=None)
async def download(
    request: Request, store: StoreDep, file_id: uuid.UUID, document_id: uuid.UUID, number: int
) -> Response:
    """A version's content for the signed-in clerk, as an attachment (the read is audited)."""
    principal = await _page_principal(request)
    if principal is None:
        return _to_signin(request)
    version = await run_in_threadpool(
        _open_version, request, principal, file_id, document_id, number
    )
    chunks = await run_in_threadpool(documents.stream_content, store, version, None)
    name = version.original_name or f"document-{document_id}-v{number}"
    return StreamingResponse(
        chunks,
        media_type=version.mime_type,
        headers={
            "Content-Length": str(version.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            # User content on our origin: never rendered as a page that could read the cookie.
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "ETag": f'"{version.sha256}"',
        },
    )

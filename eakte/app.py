"""The composition root: builds the FastAPI app from settings, engine and blob store."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cti_bridge.api import router as cti_router
from eakte import __version__
from eakte import background as background_tasks
from eakte.audit.api import router as audit_router
from eakte.auth.api import router as auth_router
from eakte.auth.tokens import TokenVerifier
from eakte.backup import register as destruction_register
from eakte.backup.crypto import backup_key
from eakte.backup.register import register_store
from eakte.contacts.api import router as contacts_router
from eakte.db import make_engine, make_session_factory
from eakte.documents.api import router as documents_router
from eakte.errors import DomainError, problem_body
from eakte.files.api import router as files_router
from eakte.health import router as health_router
from eakte.idempotency.service import Replay, replay_response
from eakte.limits import RequestLimits
from eakte.orgunits.api import router as orgunits_router
from eakte.outgoing.api import router as outgoing_router
from eakte.pages.api import router as pages_router
from eakte.plan.api import router as plan_router
from eakte.search.api import router as search_router
from eakte.settings import Settings
from eakte.worklist.api import router as worklist_router
from inbox.api import router as inbox_router
from retention.api import router as retention_router
from storage import (
    BlobLocked,
    BlobNotFound,
    BlobStore,
    StorageError,
    StorageFull,
    StorageUnavailable,
    store_from_url,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def _problem(
    request: Request,
    status: int,
    title: str,
    detail: str,
    slug: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(status, title, detail, request.url.path, slug, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return _problem(
            request,
            exc.status,
            exc.title,
            exc.detail,
            exc.type_slug,
            headers=exc.headers or None,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return _problem(
            request,
            422,
            "Invalid input",
            "the request does not match the schema",
            "invalid-input",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(
            request,
            exc.status_code,
            str(exc.detail),
            str(exc.detail),
            f"http-{exc.status_code}",
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        if isinstance(exc, StorageUnavailable):
            log.warning("storage unavailable: %s", exc)
            return _problem(
                request,
                503,
                "Service unavailable",
                "the document storage is unavailable; try again later",
                "unavailable",
                headers={"Retry-After": "30"},
            )
        if isinstance(exc, BlobLocked):
            return _problem(request, 409, "Conflict", str(exc), "conflict")
        if isinstance(exc, StorageFull):
            log.error("storage full: %s", exc)
            return _problem(
                request,
                507,
                "Insufficient storage",
                "the document storage has no space left; nothing was stored",
                "insufficient-storage",
            )
        if isinstance(exc, BlobNotFound):
            log.error("blob missing: %s", exc)
            return _problem(
                request,
                500,
                "Content missing",
                "the stored content of this version is missing; "
                "the administrators have been told (fixity check)",
                "content-missing",
            )
        log.exception("storage error", exc_info=exc)
        return _problem(
            request, 500, "Storage error", "the document storage failed", "storage-error"
        )

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        # Input the validators let through but the database refuses (a NUL character in a
        # text, a number out of its column's range); the transaction was rolled back.
        log.info("database refused a value on %s: %s", request.url.path, exc.orig)
        return _problem(
            request,
            422,
            "Invalid input",
            "a value cannot be stored (for example a NUL character or a number out of range)",
            "invalid-input",
        )

    @app.exception_handler(OperationalError)
    async def database_error(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc.orig)
        return _problem(
            request,
            503,
            "Service unavailable",
            "the database is unavailable; try again later",
            "unavailable",
            headers={"Retry-After": "10"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _problem(request, 500, "Internal error", "an unexpected error occurred", "internal")


def serve_app() -> FastAPI:
    """The app of one of several server processes (`eakte serve --workers N`).

    Settings come from the environment; the pipeline and the CTI bridge run elsewhere.
    """
    return create_app(Settings())


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    store: BlobStore | None = None,
    background: bool = False,
) -> FastAPI:
    """Build the app; tests pass their own engine and store, `eakte serve` passes none.

    With `background`, the inbound pipeline's workers and sources run in the same process
    (the embedded default); larger installations run `eakte worker` processes instead.
    """
    settings = settings or Settings()
    engine = engine or make_engine(settings.database_url)
    store = store or store_from_url(settings.storage_url)
    session_factory = make_session_factory(engine)
    # Disposal records also go to the destruction register (see eakte.backup.register).
    # Sealed with the backup key when one is set: a restore trusts only authentic entries.
    destruction_register.attach(
        engine, register_store(settings.backup_target, settings.storage_url, store),
        backup_key(settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        threads = []
        if background:
            threads = background_tasks.start(session_factory, store, settings, stop)
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)

    app = FastAPI(
        title="eakte",
        version=__version__,
        summary="Records service of the e-file (E-Akte): files, processes, documents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.store = store
    app.state.token_verifier = TokenVerifier(settings)
    _install_error_handlers(app)
    # A retried POST with a used Idempotency-Key gets the first response (eakte.backup).
    app.add_exception_handler(Replay, replay_response)
    app.add_middleware(
        RequestLimits,
        max_header_bytes=settings.max_header_bytes,
        max_body_bytes=settings.max_body_bytes,
    )
    for router in (
        health_router,
        orgunits_router,
        plan_router,
        files_router,
        documents_router,
        contacts_router,
        audit_router,
        auth_router,
        search_router,
        inbox_router,
        cti_router,
        pages_router,
        outgoing_router,
        worklist_router,
        retention_router,
    ):
        app.include_router(router)
    return app

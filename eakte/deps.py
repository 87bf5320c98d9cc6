"""FastAPI dependencies: settings, the request's unit of work, the blob store, the principal.

Dependencies that do no blocking I/O are `async def`: FastAPI runs a plain `def` dependency
in its thread pool, a hand-over to a thread and back for every dependency of every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from eakte.auth.apikeys import PREFIX as APIKEY_PREFIX
from eakte.auth.apikeys import verify_api_key
from eakte.auth.principal import Principal
from eakte.auth.tokens import TokenVerifier
from eakte.db import unit_of_work
from eakte.errors import Unauthenticated
from eakte.settings import Settings
from storage import BlobStore

_bearer = HTTPBearer(auto_error=False, description="JWT, or an API key starting with ek_")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Service account key")


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    """The process's session factory, for routes that manage their own transactions."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


async def get_store(request: Request) -> BlobStore:
    """The configured blob store."""
    store: BlobStore = request.app.state.store
    return store


def db_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the route returns, rolled back on error."""
    with unit_of_work(request.app.state.session_factory) as session:
        yield session


async def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    """Authenticate the request by bearer JWT or API key; every API route depends on this."""
    presented = api_key or (bearer.credentials if bearer else None)
    if not presented:
        raise Unauthenticated("this route needs a bearer token or an API key")
    verifier: TokenVerifier = request.app.state.token_verifier
    if presented.startswith(APIKEY_PREFIX) or verifier.may_block:
        # A database lookup, or keys fetched from the identity provider: in a thread.
        principal = await run_in_threadpool(principal_from_credential, request, presented)
    else:
        principal = principal_from_credential(request, presented)  # a signature check
    request.state.principal = principal
    return principal


def principal_from_credential(request: Request, presented: str) -> Principal:
    """The principal of a JWT or API key (blocking: an API key is checked in the database)."""
    if presented.startswith(APIKEY_PREFIX):
        # A short transaction of its own: upload routes hold no session while streaming.
        with unit_of_work(request.app.state.session_factory) as session:
            return verify_api_key(session, presented)
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(presented)


SessionDep = Annotated[Session, Depends(db_session, scope="function")]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
#: A list's `offset` query parameter, up to the largest offset both databases take (a signed
#: 64-bit integer): SQLite fails on a larger one instead of finding nothing.
OffsetQuery = Annotated[int, Query(ge=0, le=2**63 - 1)]

"""Idempotency-Key for POST routes: a retried request returns the first one's response.

A client that lost the answer to a POST (a timeout, an app node that died) sends it again
with the same `Idempotency-Key`, possibly to another node. The first request stored its
response in the same transaction as the rows it created, so either both exist or neither:
the retry finds the response and replays it, or finds nothing and does the work.

Uploads are streamed, so a request's fingerprint is known only once its body has passed:
it is the SHA-256 of the content (computed while storing it anyway) plus the form fields.
A retry is therefore received in full and compared before the stored response is replayed
(its copy of the content is discarded); that costs the upload's bandwidth again, but a key
reused by mistake for another document is refused instead of silently dropping it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eakte.db import utcnow
from eakte.deps import PrincipalDep, SettingsDep
from eakte.errors import BadRequest, DomainError
from eakte.idempotency.models import IdempotencyRecord

R = TypeVar("R", bound=BaseModel)

HEADER = "Idempotency-Key"
_VALID = re.compile(r"^[\x21-\x7e]{1,200}$")


class IdempotencyKeyReused(DomainError):
    """The key was used before with a different request."""

    status = 422
    title = "Idempotency key reused"
    type_slug = "idempotency-key-reused"


class Replay(Exception):  # noqa: N818 - not an error: control flow to the stored answer
    """Raised inside the unit of work to roll it back and answer with the stored response."""

    def __init__(self, status_code: int, body: Any) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.body = body


def replay_response(_request: Request, exc: Exception) -> JSONResponse:
    """Exception handler: the stored response of the first request with this key."""
    if not isinstance(exc, Replay):  # registered for Replay only
        raise exc
    return JSONResponse(exc.body, exc.status_code, headers={"Idempotent-Replayed": "true"})


def fingerprint(*parts: object) -> str:
    """SHA-256 over a canonical JSON of what identifies a request's body."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Idempotency:
    """The request's Idempotency-Key, if any; `save` stores or replays its response."""

    def __init__(self, key: str | None, subject: str, route: str, ttl: timedelta) -> None:
        self.key = key
        self.subject = subject
        self.route = route
        self.ttl = ttl

    def save(self, session: Session, status_code: int, response: BaseModel, *body: object) -> None:
        """Store the response with the request's rows, or replay the one stored before.

        Call it inside the unit of work that creates the rows, after creating them; `body`
        identifies the request (content sha256, form fields). Raises Replay (rolling back
        this request's rows) when the key was used before with the same body, and
        IdempotencyKeyReused when it was used with another.
        """
        if self.key is None:
            return
        request_hash = fingerprint(self.route, *body)
        self._check(session, request_hash)
        row = IdempotencyRecord(
            key=self.key,
            subject=self.subject,
            route=self.route,
            request_hash=request_hash,
            status_code=status_code,
            response=response.model_dump(mode="json"),
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # A concurrent request with the same key committed first (PostgreSQL waits for it
            # on the unique index); answer with its response.
            self._check(session, request_hash)
            raise

    def once(
        self, session: Session, status_code: int, body: object, work: Callable[[], R]
    ) -> R:
        """Do `work` once per key: a retry is answered from the stored response before any
        work is done (so an action that may not be repeated, such as an approval, is not
        refused the second time but replayed), and the first answer is stored with the
        work's rows."""
        if self.key is not None:
            self._check(session, fingerprint(self.route, body))
        result = work()
        self.save(session, status_code, result, body)
        return result

    def _find(self, session: Session) -> IdempotencyRecord | None:
        return session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.subject == self.subject,
                IdempotencyRecord.route == self.route,
                IdempotencyRecord.key == self.key,
            )
        )

    def _check(self, session: Session, request_hash: str) -> None:
        stored = self._find(session)
        if stored is None:
            return
        if stored.created_at < utcnow() - self.ttl:
            session.delete(stored)  # expired: the key may be used afresh
            session.flush()
            return
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReused(
                f"the {HEADER} was already used for a different request to this route"
            )
        raise Replay(stored.status_code, stored.response)


async def idempotency(
    request: Request, principal: PrincipalDep, settings: SettingsDep
) -> Idempotency:
    """The request's Idempotency-Key (a dependency of the POST routes that create things)."""
    key = request.headers.get(HEADER)
    if key is not None and not _VALID.match(key):
        raise BadRequest(f"the {HEADER} must be 1 to 200 printable ASCII characters")
    return Idempotency(
        key,
        principal.subject,
        f"{request.method} {request.url.path}",
        timedelta(seconds=settings.idempotency_ttl_seconds),
    )


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


def purge_expired(session: Session, ttl: timedelta) -> int:
    """Delete stored responses older than the TTL; returns how many."""
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - ttl)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

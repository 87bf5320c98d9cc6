"""Service-account API keys: create (shown once), verify by hash, revoke."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from eakte.auth.models import ApiKey
from eakte.auth.principal import Principal, Role
from eakte.db import utcnow
from eakte.errors import Conflict, InvalidInput, NotFound, Unauthenticated

PREFIX = "ek_"
_KEY_ID = re.compile(r"[0-9a-f]{16}")


def _hash(secret: str) -> str:
    # The secret is 256 random bits, so a plain SHA-256 is enough: there is no
    # low-entropy password to stretch against guessing.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session, name: str, roles: Iterable[str], units: Iterable[str], created_by: str
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key, which is never stored."""
    role_list = sorted({Role(r).value for r in roles})
    if not role_list:
        raise InvalidInput("an API key needs at least one role")
    if session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise Conflict(f"an API key named {name!r} exists already")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        key_id=key_id,
        secret_hash=_hash(secret),
        roles=role_list,
        units=sorted(set(units)),
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row, f"{PREFIX}{key_id}_{secret}"


def verify_api_key(session: Session, presented: str) -> Principal:
    """Return the service principal of a valid, unrevoked key."""
    key_id, _, secret = presented.removeprefix(PREFIX).partition("_")
    # Key ids are 16 hex digits (create_api_key); anything else is refused before the lookup,
    # which PostgreSQL would fail on a NUL character (a 422 instead of a 401).
    if not _KEY_ID.fullmatch(key_id):
        raise Unauthenticated("malformed API key")
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    # Compare even when the row is missing, so timing does not reveal valid key ids.
    expected = row.secret_hash if row is not None else _hash("")
    if not hmac.compare_digest(expected, _hash(secret)) or row is None:
        raise Unauthenticated("invalid API key")
    if row.revoked_at is not None:
        raise Unauthenticated("API key revoked")
    return Principal(
        subject=f"apikey:{row.name}",
        roles=frozenset(Role(r) for r in row.roles),
        units=frozenset(row.units),
        kind="service",
    )


def list_api_keys(session: Session) -> Sequence[ApiKey]:
    """All keys by name."""
    return session.scalars(select(ApiKey).order_by(ApiKey.name)).all()


def revoke_api_key(session: Session, name: str) -> ApiKey:
    """Revoke a key by name; it stops working at once."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise NotFound(f"no API key named {name!r}")
    row.revoked_at = utcnow()
    session.flush()
    return row

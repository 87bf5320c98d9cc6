"""SQL of contacts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, String, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import Function

from eakte.contacts.models import Contact, ContactEmail, ContactPhone
from eakte.db import UNICODE_LOWER


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def name_contains(text: str) -> ColumnElement[bool]:
    """Contacts whose name contains `text`, in any case (PostgreSQL: served by the trigram
    index from three characters on, see migration 0010)."""
    return Contact.name.ilike(f"%{_escaped(text)}%", escape="\\")


def _sqlite_name_contains(text: str) -> ColumnElement[bool]:
    # SQLite's own lower() and LIKE fold ASCII letters only, so "özdemir" would not find
    # "Özdemir" as PostgreSQL's ILIKE does; both sides go through the connection's
    # Unicode-aware lower-casing instead (eakte.db registers it).
    lowered = Function(UNICODE_LOWER, Contact.name, type_=String())
    return lowered.like(f"%{_escaped(text.lower())}%", escape="\\")


def find(
    session: Session,
    *,
    e164: str | None,
    email: str | None,
    name: str | None,
    limit: int,
    offset: int,
) -> Sequence[Contact]:
    """Contacts matching all given criteria, by name."""
    stmt = select(Contact)
    if e164 is not None:
        stmt = stmt.where(
            Contact.id.in_(select(ContactPhone.contact_id).where(ContactPhone.e164 == e164))
        )
    if email is not None:
        stmt = stmt.where(
            Contact.id.in_(select(ContactEmail.contact_id).where(ContactEmail.address == email))
        )
    if name is not None:
        if session.get_bind().dialect.name == "sqlite":
            stmt = stmt.where(_sqlite_name_contains(name))
        else:
            stmt = stmt.where(name_contains(name))
    return session.scalars(
        stmt.order_by(Contact.name, Contact.id).limit(limit).offset(offset)
    ).all()

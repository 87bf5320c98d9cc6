"""SQL of contacts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from eakte.contacts.models import Contact, ContactEmail, ContactPhone


def name_contains(text: str) -> ColumnElement[bool]:
    """Contacts whose name contains `text`, in any case (PostgreSQL: served by the trigram
    index from three characters on, see migration 0010)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Contact.name.ilike(f"%{escaped}%", escape="\\")


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
        stmt = stmt.where(name_contains(name))
    return session.scalars(
        stmt.order_by(Contact.name, Contact.id).limit(limit).offset(offset)
    ).all()

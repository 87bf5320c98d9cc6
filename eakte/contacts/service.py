"""Use cases of contacts: create, change, find by any phone notation or e-mail."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.contacts import repository
from eakte.contacts.models import Contact, ContactEmail, ContactPhone
from eakte.contacts.phones import normalise
from eakte.contacts.schemas import ContactCreate, ContactUpdate, PhoneIn
from eakte.errors import NotFound
from eakte.guards import require
from eakte.settings import Settings


def _phones(items: list[PhoneIn], settings: Settings) -> list[ContactPhone]:
    seen: set[str] = set()
    phones: list[ContactPhone] = []
    for item in items:
        e164 = normalise(item.number, settings.default_region, settings.local_area_code)
        if e164 not in seen:
            seen.add(e164)
            phones.append(ContactPhone(e164=e164, label=item.label, position=len(phones)))
    return phones


def _emails(items: list[str]) -> list[ContactEmail]:
    unique = list(dict.fromkeys(a.strip().lower() for a in items))
    return [ContactEmail(address=a, position=i) for i, a in enumerate(unique)]


def create_contact(
    session: Session, principal: Principal, data: ContactCreate, settings: Settings
) -> Contact:
    """Create a contact; every phone number is normalised first, so a bad one changes nothing."""
    require(principal, Permission.CONTACT_WRITE)
    contact = Contact(
        name=data.name,
        postal_address=data.postal_address,
        phones=_phones(data.phones, settings),
        emails=_emails(list(data.emails)),
    )
    session.add(contact)
    session.flush()
    record(session, principal, "contact.created", "contact", contact.id)
    return contact


def get_contact(session: Session, principal: Principal, contact_id: uuid.UUID) -> Contact:
    """One contact."""
    require(principal, Permission.CONTACT_READ)
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} does not exist")
    return contact


def update_contact(
    session: Session,
    principal: Principal,
    contact_id: uuid.UUID,
    data: ContactUpdate,
    settings: Settings,
) -> Contact:
    """Change a contact."""
    require(principal, Permission.CONTACT_WRITE)
    contact = get_contact(session, principal, contact_id)
    if data.phones is not None:
        new_phones = _phones(data.phones, settings)
        contact.phones.clear()
        session.flush()
        contact.phones.extend(new_phones)
    if data.emails is not None:
        new_emails = _emails(list(data.emails))
        contact.emails.clear()
        session.flush()
        contact.emails.extend(new_emails)
    for name in ("name", "postal_address"):
        if name in data.model_fields_set:
            setattr(contact, name, getattr(data, name))
    session.flush()
    record(
        session,
        principal,
        "contact.updated",
        "contact",
        contact.id,
        fields=sorted(data.model_fields_set),
    )
    return contact


def find_contacts(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    phone: str | None = None,
    email: str | None = None,
    name: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Contact]:
    """Contacts by phone (any notation), e-mail or part of the name."""
    require(principal, Permission.CONTACT_READ)
    e164 = normalise(phone, settings.default_region, settings.local_area_code) if phone else None
    return repository.find(
        session,
        e164=e164,
        email=email.strip().lower() if email else None,
        name=name,
        limit=limit,
        offset=offset,
    )

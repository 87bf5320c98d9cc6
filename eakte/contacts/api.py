"""HTTP routes of contacts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, status

from eakte.contacts import service
from eakte.contacts.models import Contact
from eakte.contacts.schemas import ContactCreate, ContactOut, ContactUpdate
from eakte.deps import OffsetQuery, PrincipalDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ContactOut)
def create_contact(
    data: ContactCreate, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> Contact:
    """Create a contact; phone numbers are stored in E.164."""
    return service.create_contact(session, principal, data, settings)


@router.get("", response_model=list[ContactOut])
def find_contacts(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    phone: Annotated[str | None, Query(max_length=40, description="any notation")] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    name: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQuery = 0,
) -> Sequence[Contact]:
    """Find contacts by phone number in any notation, e-mail address or name."""
    return service.find_contacts(
        session,
        principal,
        settings,
        phone=phone,
        email=email,
        name=name,
        limit=limit,
        offset=offset,
    )


@router.get("/{contact_id}", response_model=ContactOut)
def get_contact(contact_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Contact:
    """One contact."""
    return service.get_contact(session, principal, contact_id)


@router.patch("/{contact_id}", response_model=ContactOut)
def update_contact(
    contact_id: uuid.UUID,
    data: ContactUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> Contact:
    """Change a contact."""
    return service.update_contact(session, principal, contact_id, data, settings)

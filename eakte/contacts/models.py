"""Contact tables with the phone and e-mail indexes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eakte.db import Base, UUIDPrimaryKey, utcnow


class Contact(UUIDPrimaryKey, Base):
    """A contact (Beteiligter): usually a citizen or a company."""

    __tablename__ = "contacts"

    name: Mapped[str] = mapped_column(String(300), index=True)
    postal_address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    phones: Mapped[list[ContactPhone]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ContactPhone.position"
    )
    emails: Mapped[list[ContactEmail]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ContactEmail.position"
    )


class ContactPhone(UUIDPrimaryKey, Base):
    """A phone number of a contact, stored normalised to E.164 for lookup."""

    __tablename__ = "contact_phones"

    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(20), index=True)
    label: Mapped[str | None] = mapped_column(String(50))
    position: Mapped[int] = mapped_column(default=0)


class ContactEmail(UUIDPrimaryKey, Base):
    """An e-mail address of a contact, stored lower-cased for lookup."""

    __tablename__ = "contact_emails"

    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320), index=True)
    position: Mapped[int] = mapped_column(default=0)

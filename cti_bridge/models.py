"""Tables of the CTI bridge: which clerk answers which phone extension."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from eakte.auth.principal import CLEARANCE_LEVELS
from eakte.db import Base, UUIDPrimaryKey, utcnow


class Extension(UUIDPrimaryKey, Base):
    """A phone extension (Durchwahl) and the clerk who answers it.

    The bridge has no token of the clerk when a call comes in, so the mapping keeps the
    clerk's org units and clearance: a pop-up shows only files of these units whose
    confidentiality is at or below the clearance (one of CLEARANCE_LEVELS).
    """

    __tablename__ = "cti_extensions"

    extension: Mapped[str] = mapped_column(String(40), unique=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    units: Mapped[list[str]] = mapped_column(JSON)
    clearance: Mapped[str] = mapped_column(
        String(20), default=CLEARANCE_LEVELS[0], server_default=CLEARANCE_LEVELS[0]
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))

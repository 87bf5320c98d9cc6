"""File plan table."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from eakte.db import Base, UUIDPrimaryKey, utcnow


class ArchiveValue(StrEnum):
    """What happens to a file when it falls due: archive, destroy, or appraise."""

    ARCHIVE = "A"
    DESTROY = "V"
    APPRAISE = "B"


class FilePlanItem(UUIDPrimaryKey, Base):
    """A file plan item (Aktenplan position) such as `32.10.05`, with its retention rule."""

    __tablename__ = "file_plan_items"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("file_plan_items.id"))
    # None means permanent retention.
    retention_years: Mapped[int | None]
    archive_value: Mapped[str] = mapped_column(String(1), default=ArchiveValue.APPRAISE.value)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

"""SQL of the file plan."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from eakte.plan.models import FilePlanItem


def by_code(session: Session, code: str) -> FilePlanItem | None:
    """The plan item with this code."""
    return session.scalar(select(FilePlanItem).where(FilePlanItem.code == code))


def list_items(session: Session, active_only: bool) -> Sequence[FilePlanItem]:
    """All plan items ordered by code."""
    stmt = select(FilePlanItem).order_by(FilePlanItem.code)
    if active_only:
        stmt = stmt.where(FilePlanItem.active.is_(True))
    return session.scalars(stmt).all()

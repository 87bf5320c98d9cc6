"""HTTP route of full-text search."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from eakte.deps import PrincipalDep, SessionDep
from eakte.search import service

router = APIRouter(prefix="/api/v1", tags=["search"])


class HitOut(BaseModel):
    """A document found by a search, with the text around the match."""

    model_config = ConfigDict(from_attributes=True)

    document_id: uuid.UUID
    file_id: uuid.UUID
    reference: str
    title: str
    snippet: str
    rank: float


@router.get("/search", response_model=list[HitOut])
def search(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="words to find")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[HitOut]:
    """Full-text search over titles and OCR text of documents in the caller's files."""
    return [HitOut.model_validate(h) for h in service.search(session, principal, q, limit)]

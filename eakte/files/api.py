"""HTTP routes of files, their processes and contact links."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict

from eakte.deps import OffsetQuery, PrincipalDep, SessionDep
from eakte.files import service
from eakte.files.models import File, FileContact, FileStatus, Process
from eakte.files.schemas import (
    FileContactLink,
    FileCreate,
    FileOut,
    FileUpdate,
    ProcessCreate,
    ProcessOut,
    ProcessUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["files"])


class FileContactOut(BaseModel):
    """A contact's link to a file."""

    model_config = ConfigDict(from_attributes=True)

    contact_id: uuid.UUID
    role: str


@router.post("/files", status_code=status.HTTP_201_CREATED, response_model=FileOut)
def create_file(data: FileCreate, session: SessionDep, principal: PrincipalDep) -> File:
    """Open a file; its reference (Aktenzeichen) is generated."""
    return service.create_file(session, principal, data)


@router.get("/files", response_model=list[FileOut])
def list_files(
    session: SessionDep,
    principal: PrincipalDep,
    reference: str | None = None,
    contact_id: uuid.UUID | None = None,
    status: FileStatus | None = None,
    plan_code: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> Sequence[File]:
    """Files of the caller's org units, most recently active first."""
    return service.list_files(
        session,
        principal,
        reference=reference,
        contact_id=contact_id,
        status=status,
        plan_code=plan_code,
        limit=limit,
        offset=offset,
    )


@router.get("/files/{file_id}", response_model=FileOut)
def get_file(file_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> File:
    """One file."""
    return service.get_file(session, principal, file_id)


@router.patch("/files/{file_id}", response_model=FileOut)
def update_file(
    file_id: uuid.UUID, data: FileUpdate, session: SessionDep, principal: PrincipalDep
) -> File:
    """Change an open file's title, confidentiality or paper note."""
    return service.update_file(session, principal, file_id, data)


@router.post(
    "/files/{file_id}/contacts", status_code=status.HTTP_201_CREATED, response_model=FileContactOut
)
def link_contact(
    file_id: uuid.UUID, data: FileContactLink, session: SessionDep, principal: PrincipalDep
) -> FileContact:
    """Link a contact to the file."""
    return service.link_contact(session, principal, file_id, data)


@router.get("/files/{file_id}/contacts", response_model=list[FileContactOut])
def list_file_contacts(
    file_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Sequence[FileContact]:
    """Contacts linked to the file."""
    return service.file_contacts(session, principal, file_id)


@router.post(
    "/files/{file_id}/processes", status_code=status.HTTP_201_CREATED, response_model=ProcessOut
)
def create_process(
    file_id: uuid.UUID, data: ProcessCreate, session: SessionDep, principal: PrincipalDep
) -> Process:
    """Start a process in the file."""
    return service.create_process(session, principal, file_id, data)


@router.get("/files/{file_id}/processes", response_model=list[ProcessOut])
def list_processes(
    file_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Sequence[Process]:
    """The file's processes."""
    return service.list_processes(session, principal, file_id)


@router.get("/processes/{process_id}", response_model=ProcessOut)
def get_process(process_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Process:
    """One process."""
    return service.get_process(session, principal, process_id)


@router.patch("/processes/{process_id}", response_model=ProcessOut)
def update_process(
    process_id: uuid.UUID, data: ProcessUpdate, session: SessionDep, principal: PrincipalDep
) -> Process:
    """Rename a process or mark it done."""
    return service.update_process(session, principal, process_id, data)

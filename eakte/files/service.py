"""Use cases of files (Akten) and processes (Vorgänge), including who may see them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.contacts.models import Contact
from eakte.db import first_lock, utcnow
from eakte.errors import Conflict, Forbidden, InvalidInput, NotFound
from eakte.files import repository
from eakte.files.models import File, FileContact, FileStatus, Process
from eakte.files.schemas import (
    FileContactLink,
    FileCreate,
    FileUpdate,
    ProcessCreate,
    ProcessUpdate,
)
from eakte.guards import require
from eakte.orgunits import service as orgunits
from eakte.plan import service as plan

WRITABLE_STATUSES = {FileStatus.OPEN.value}

_LOCK_FILE = (
    select(File)
    .where(File.id == bindparam("file_id"))
    .with_for_update(of=File)
    .execution_options(populate_existing=True)
)


def format_reference(plan_code: str, year: int, number: int) -> str:
    """The file reference (Aktenzeichen): plan code, year and sequence, e.g. 32.10.05-2026/0042."""
    return f"{plan_code}-{year}/{number:04d}"


def get_file(
    session: Session,
    principal: Principal,
    file_id: uuid.UUID,
    permission: Permission = Permission.FILE_READ,
) -> File:
    """A file the principal may see; NotFound otherwise, so other units' files stay invisible."""
    require(principal, permission)
    return _visible(session, principal, file_id, session.get(File, file_id))


def _visible(session: Session, principal: Principal, file_id: uuid.UUID, file: File | None) -> File:
    """The loaded file if the principal may see it; NotFound otherwise."""
    if (
        file is None
        or not principal.cleared_for(file.confidentiality)
        or not (
            principal.in_unit(file.unit_code)
            or repository.has_active_grant(session, principal, file.id)
        )
    ):
        raise NotFound(f"file {file_id} does not exist")
    return file


def get_writable_file(
    session: Session,
    principal: Principal,
    file_id: uuid.UUID,
    permission: Permission = Permission.FILE_WRITE,
    *,
    lock: bool = False,
) -> File:
    """A visible file that may still change: open, and the principal may write."""
    if lock:
        # Serialises with closure (which locks the same row): a version added first is seen
        # and locked by the closure; one added after it finds the file closed. The row is
        # locked and loaded in one statement, overwriting anything read before the lock
        # (e.g. through its document), so the status checked below is the one under the
        # lock. FOR UPDATE OF files: the eager joins' plan item and org unit stay unlocked.
        # (SQLite took its write lock at BEGIN and renders no FOR UPDATE.)
        # A second call in the same transaction (authorised before the content was stored,
        # then recorded) finds the row locked already and reads it from the session.
        require(principal, Permission.FILE_READ)
        if first_lock(session, "files", file_id):
            locked = session.execute(_LOCK_FILE, {"file_id": file_id}).scalar_one_or_none()
        else:
            locked = session.get(File, file_id)
        file = _visible(session, principal, file_id, locked)
    else:
        file = get_file(session, principal, file_id, Permission.FILE_READ)
    require(principal, permission)
    _require_own(principal, file)
    if file.status not in WRITABLE_STATUSES:
        raise Conflict(f"file {file.reference} is {file.status}; it can no longer change")
    return file


def get_own_file(
    session: Session,
    principal: Principal,
    file_id: uuid.UUID,
    permission: Permission = Permission.FILE_READ,
) -> File:
    """A visible file of one of the principal's units, whatever its status.

    For actions on a file that are not edits of its content (closing, reopening, holds):
    a unit that only reads it through a forwarding gets Forbidden.
    """
    file = get_file(session, principal, file_id, permission)
    _require_own(principal, file)
    return file


def _require_own(principal: Principal, file: File) -> None:
    if not principal.in_unit(file.unit_code):
        # Visible only through a forwarding's access grant, which never allows changes.
        raise Forbidden(f"file {file.reference} was forwarded to you for reading only")


def _require_clearance(principal: Principal, confidentiality: str) -> None:
    # A file classified above the author's clearance would vanish from its author's view.
    if not principal.cleared_for(confidentiality):
        raise Forbidden(f"your clearance does not reach {confidentiality} files")


def _free_reference(session: Session, plan_item_id: uuid.UUID, plan_code: str, year: int) -> str:
    """The next generated reference that no file carries yet.

    A legacy file taken over with its old reference may hold a number the counter has not
    reached. Refusing the new file would roll the counter back with it, so every later file
    under the plan item would meet the same number; the counter moves past it instead.
    """
    while True:
        reference = format_reference(
            plan_code, year, repository.next_sequence(session, plan_item_id, year)
        )
        if not repository.reference_exists(session, reference):
            return reference


def create_file(session: Session, principal: Principal, data: FileCreate) -> File:
    """Open a new file under a plan item in one of the principal's org units."""
    require(principal, Permission.FILE_WRITE)
    unit_code = data.org_unit
    if unit_code is None:
        if len(principal.units) != 1:
            raise InvalidInput("org_unit is required: you belong to several or no org units")
        (unit_code,) = principal.units
    if not principal.in_unit(unit_code):
        raise Forbidden(f"you may not create files in org unit {unit_code}")
    _require_clearance(principal, data.confidentiality.value)
    unit = orgunits.get_by_code(session, unit_code)
    item = plan.get_by_code(session, data.plan_code)
    if not item.active:
        raise InvalidInput(f"file plan item {item.code} is inactive; no new files under it")
    now = utcnow()
    if data.reference is not None:
        if not data.reference.startswith(item.code + "-"):
            raise InvalidInput(
                f"reference {data.reference} does not belong to plan item {item.code}"
            )
        reference = data.reference
        if repository.reference_exists(session, reference):
            raise Conflict(f"a file with reference {reference} exists already")
    else:
        reference = _free_reference(session, item.id, item.code, now.year)
    file = File(
        reference=reference,
        title=data.title,
        plan_item=item,
        org_unit=unit,
        confidentiality=data.confidentiality.value,
        paper_note=data.paper_note,
        created_by=principal.subject,
        opened_at=now,
        last_activity_at=now,
    )
    session.add(file)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # A concurrent request took the same legacy reference between check and insert.
        raise Conflict(f"a file with reference {reference} exists already") from None
    for contact_id in data.contact_ids:
        _link(session, file, FileContactLink(contact_id=contact_id))
    record(
        session,
        principal,
        "file.created",
        "file",
        file.id,
        reference=reference,
        title=file.title,
        org_unit=unit.code,
    )
    return file


def update_file(
    session: Session, principal: Principal, file_id: uuid.UUID, data: FileUpdate
) -> File:
    """Change title, confidentiality or paper note of an open file."""
    file = get_writable_file(session, principal, file_id)
    changes = data.model_dump(exclude_unset=True)
    if data.confidentiality is not None:
        _require_clearance(principal, data.confidentiality.value)
    for name, value in changes.items():
        setattr(file, name, value.value if hasattr(value, "value") else value)
    file.last_activity_at = utcnow()
    session.flush()
    record(
        session,
        principal,
        "file.updated",
        "file",
        file.id,
        changes={k: str(v) for k, v in changes.items()},
    )
    return file


def list_files(
    session: Session,
    principal: Principal,
    *,
    reference: str | None = None,
    contact_id: uuid.UUID | None = None,
    status: FileStatus | None = None,
    plan_code: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[File]:
    """Files of the principal's org units, filtered."""
    require(principal, Permission.FILE_READ)
    plan_item_id = plan.get_by_code(session, plan_code).id if plan_code else None
    return repository.list_files(
        session,
        principal,
        reference=reference,
        contact_id=contact_id,
        status=status.value if status else None,
        plan_item_id=plan_item_id,
        limit=limit,
        offset=offset,
    )


def touch(file: File) -> None:
    """Mark the file as just worked on (orders the phone pop-up's file list)."""
    file.last_activity_at = utcnow()


def _link(session: Session, file: File, link: FileContactLink) -> FileContact:
    if session.get(Contact, link.contact_id) is None:
        raise NotFound(f"contact {link.contact_id} does not exist")
    existing = session.get(FileContact, (file.id, link.contact_id, link.role))
    if existing is not None:
        return existing
    row = FileContact(file_id=file.id, contact_id=link.contact_id, role=link.role)
    try:
        # Added inside the savepoint: begin_nested flushes what is pending before it starts.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent request made the same link between the check and the insert (a
        # double click): linking is idempotent, so that link is the answer.
        existing = session.get(FileContact, (file.id, link.contact_id, link.role))
        if existing is None:
            raise
        return existing
    return row


def link_contact(
    session: Session, principal: Principal, file_id: uuid.UUID, link: FileContactLink
) -> FileContact:
    """Link a contact to a file in a role (idempotent)."""
    file = get_writable_file(session, principal, file_id)
    row = _link(session, file, link)
    touch(file)
    record(
        session,
        principal,
        "file.contact_linked",
        "file",
        file.id,
        contact_id=str(link.contact_id),
        role=link.role,
    )
    return row


def file_contacts(
    session: Session, principal: Principal, file_id: uuid.UUID
) -> Sequence[FileContact]:
    """The contact links of a visible file."""
    get_file(session, principal, file_id)
    return repository.contact_links(session, file_id)


def create_process(
    session: Session, principal: Principal, file_id: uuid.UUID, data: ProcessCreate
) -> Process:
    """Start a process in an open file."""
    file = get_writable_file(session, principal, file_id)
    process = Process(file_id=file.id, title=data.title, created_by=principal.subject)
    session.add(process)
    touch(file)
    session.flush()
    record(
        session,
        principal,
        "process.created",
        "process",
        process.id,
        file_id=str(file.id),
        title=process.title,
    )
    return process


def get_process(session: Session, principal: Principal, process_id: uuid.UUID) -> Process:
    """A process of a visible file."""
    process = session.get(Process, process_id)
    if process is None:
        raise NotFound(f"process {process_id} does not exist")
    try:
        get_file(session, principal, process.file_id)
    except NotFound:
        raise NotFound(f"process {process_id} does not exist") from None
    return process


def list_processes(session: Session, principal: Principal, file_id: uuid.UUID) -> Sequence[Process]:
    """Processes of a visible file."""
    get_file(session, principal, file_id)
    return repository.processes_of(session, file_id)


def update_process(
    session: Session, principal: Principal, process_id: uuid.UUID, data: ProcessUpdate
) -> Process:
    """Rename a process or mark it done."""
    process = get_process(session, principal, process_id)
    file = get_writable_file(session, principal, process.file_id)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        setattr(process, name, value.value if hasattr(value, "value") else value)
    touch(file)
    session.flush()
    record(
        session,
        principal,
        "process.updated",
        "process",
        process.id,
        changes={k: str(v) for k, v in changes.items()},
    )
    return process

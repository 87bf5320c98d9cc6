"""Use cases of the CTI bridge: look up callers, map extensions, enroll and withdraw desktops."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from cti_bridge import keys, repository
from cti_bridge.events import CallEvent
from cti_bridge.models import Extension
from cti_bridge.numbers import caller_e164, is_withheld
from cti_bridge.schemas import DesktopEnrolled, ExtensionIn
from eakte.audit.service import pending_event, record
from eakte.auth.principal import Principal, Role
from eakte.db import on_commit, utcnow
from eakte.errors import Conflict, Forbidden, InvalidInput, NotFound
from eakte.settings import Settings


def _require_admin(principal: Principal) -> None:
    if Role.ADMIN not in principal.roles:
        raise Forbidden("only admins map phone extensions")


def file_url(settings: Settings, file_id: uuid.UUID) -> str:
    """The address of a file's page, for the desktop agent to open."""
    return f"{settings.public_url.rstrip('/')}/files/{file_id}"


@dataclass(frozen=True)
class PopAudit:
    """What the audit events of a pop-up name: the contacts shown to the called clerk.

    `shown` maps each contact the pop-up names (as the caller, or as the contact of a
    listed file) to the files listed with it; each contact gets an audit event of its own.
    """

    actor: str
    call_id: str
    extension: str
    clerk: str | None
    shown: dict[str, list[str]]


@dataclass(frozen=True)
class Pop:
    """A looked-up call: the pop-up encoded as JSON, its recipient and its audit.

    `clerk` answers the extension according to the same lookup that chose the files, so
    the pop-up goes to no one else. A pop-up with an audit may only be published once its
    events have committed.
    """

    extension: str
    clerk: str | None
    payload: bytes
    audit: PopAudit | None
    files: int


def lookup(find: repository.CallerFinder, settings: Settings, event: CallEvent) -> Pop:
    """Recognise the caller and list the open files the called clerk may see.

    `find` runs `repository.caller_lookup` (or its PostgreSQL fast path). Files are
    limited to the org units and clearance of the clerk mapped to the extension; an
    unmapped extension gets the contact but no files, and no one receives it. Several
    contacts may share a number: each file is listed with its own contact, and the
    pop-up's `contact` is the likeliest caller (the contact of the most recently active
    file). The lookup only reads: the disclosure's audit is returned, for `pop_events`.
    This is the hot path of every ringing call: one Core statement (contacts, files and
    the extension's mapping together) and the pop-up encoded once, in the shape of
    `PopEvent`, without ORM objects or model validation.
    """
    e164 = caller_e164(event.caller, settings.default_region, settings.local_area_code)
    # Looked up even without a number: the extension's clerk is the pop-up's recipient.
    rows = find(e164, event.called_extension, settings.cti_max_files)
    clerk = rows[0][5] if rows else None
    contact: dict[str, str] | None = None
    files: list[dict[str, Any]] = []
    shown: dict[str, list[str]] = {}
    if e164 is not None and rows and rows[0][0] is not None:
        # The first row is the contact of the most recently active visible file, or
        # (no file visible) the first contact by name: the likeliest caller.
        contact = {"id": str(rows[0][0]), "name": rows[0][1] or ""}
        shown[contact["id"]] = []
        seen: set[uuid.UUID] = set()
        for contact_id, name, file_id, reference, title, _ in rows:
            if contact_id is None or file_id is None or file_id in seen:
                continue
            seen.add(file_id)
            owner = {"id": str(contact_id), "name": name or ""}
            files.append(
                {
                    "id": str(file_id),
                    "reference": reference or "",
                    "title": title or "",
                    "url": file_url(settings, file_id),
                    "contact": owner,
                }
            )
            shown.setdefault(owner["id"], []).append(str(file_id))
            if len(files) == settings.cti_max_files:
                break
    payload = json.dumps(
        {
            "call_id": event.call_id,
            "extension": event.called_extension,
            "caller": e164,
            "withheld": is_withheld(event.caller),
            "contact": contact,
            "files": files,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    audit = None
    if shown:
        audit = PopAudit(
            actor=f"cti:{event.source}",
            call_id=event.call_id,
            extension=event.called_extension,
            clerk=clerk,
            shown=shown,
        )
    return Pop(event.called_extension, clerk, payload, audit, len(files))


def pop_events(audit: PopAudit) -> list[dict[str, Any]]:
    """The audit events of a pop-up: one per contact it showed to the extension's clerk."""
    return [
        pending_event(
            audit.actor,
            "cti.call_popped",
            "contact",
            contact_id,
            call_id=audit.call_id,
            extension=audit.extension,
            clerk=audit.clerk,
            files=files,
        )
        for contact_id, files in audit.shown.items()
    ]


def list_extensions(session: Session, principal: Principal) -> Sequence[Extension]:
    """Every mapped extension (admin)."""
    _require_admin(principal)
    return repository.extensions(session)


def map_extension(
    session: Session, principal: Principal, number: str, data: ExtensionIn
) -> Extension:
    """Create or change who answers an extension, in which units and up to which level (admin)."""
    _require_admin(principal)
    units = sorted({u.strip() for u in data.units if u.strip()})
    if not units:
        raise InvalidInput("units must name at least one org unit")
    row = repository.extension(session, number)
    if row is None:
        row = Extension(extension=number, subject=data.subject, units=units)
        session.add(row)
    row.subject, row.units, row.clearance = data.subject, units, data.clearance
    row.updated_at, row.updated_by = utcnow(), principal.subject
    session.flush()
    record(
        session,
        principal,
        "cti.extension_mapped",
        "cti_extension",
        row.id,
        extension=number,
        subject=data.subject,
        units=units,
        clearance=data.clearance,
    )
    return row


def unmap_extension(session: Session, principal: Principal, number: str) -> Extension:
    """Remove an extension's mapping (admin)."""
    _require_admin(principal)
    row = repository.extension(session, number)
    if row is None:
        raise NotFound(f"extension {number} is not mapped")
    session.delete(row)
    session.flush()
    record(session, principal, "cti.extension_unmapped", "cti_extension", row.id, extension=number)
    return row


def extensions_of(session: Session, principal: Principal) -> list[str]:
    """The extensions the principal answers."""
    return [row.extension for row in repository.extensions_of(session, principal.subject)]


def enroll_desktop(
    session: Session,
    principal: Principal,
    settings: Settings,
    public_key: str,
    name: str,
) -> DesktopEnrolled:
    """Register a desktop's CURVE public key so it receives its clerk's pop-ups.

    Only a clerk who answers an extension may enroll: the desktop then receives the
    pop-ups of the extensions mapped to that clerk, and no others. A key enrolled already
    is refused, so a key always belongs to one clerk. The key file is written after the
    audit event commits, so an enrollment is never effective without its record.
    """
    if Role.CLERK not in principal.roles:
        raise Forbidden("only clerks enroll desktop agents")
    key = keys.check_public_key(public_key)
    if not repository.extensions_of(session, principal.subject):
        raise Forbidden(
            f"no phone extension is mapped to {principal.subject}: an admin maps one first"
        )
    if any(d.public_key == public_key for d in keys.enrolled_desktops(settings.cti_key_dir)):
        raise Conflict("this public key is enrolled already; enroll with a new keypair")
    server_public, _ = keys.server_keys(settings.cti_key_dir)
    desktop_id = f"{name}-{uuid.uuid4().hex[:12]}"
    if not keys.valid_desktop_id(desktop_id):
        # Checked here, not when the key file is written after the commit.
        raise InvalidInput("name may hold letters, digits, '.', '_' and '-' only")
    record(
        session,
        principal,
        "cti.desktop_enrolled",
        "cti_desktop",
        desktop_id,
        public_key=public_key,
    )
    key_dir, enrolled_at = settings.cti_key_dir, utcnow()

    def register() -> None:
        keys.write_desktop_key(
            key_dir, desktop_id, key, principal.subject, name=name, enrolled_at=enrolled_at
        )

    on_commit(session, register)
    return DesktopEnrolled(
        id=desktop_id,
        endpoint=settings.cti_public_endpoint or settings.cti_pub_endpoint,
        server_public_key=server_public.decode(),
    )


def list_desktops(principal: Principal, settings: Settings) -> list[keys.Desktop]:
    """The enrolled desktops: a clerk's own, or every one for an admin."""
    desktops = keys.enrolled_desktops(settings.cti_key_dir)
    if Role.ADMIN in principal.roles:
        return desktops
    if Role.CLERK not in principal.roles:
        raise Forbidden("only clerks and admins list desktop agents")
    return [d for d in desktops if d.enrolled_by == principal.subject]


def withdraw_desktop(
    session: Session, principal: Principal, settings: Settings, desktop_id: str
) -> keys.Desktop:
    """Withdraw an enrolled desktop (the clerk who enrolled it, or an admin).

    The key file is removed once the audit event has committed. From then on the
    publisher addresses no pop-up to the key and refuses it at the CURVE handshake; it
    also drops open connections when its set of keys shrinks (see
    `Publisher.reload_keys`), so a desktop that is connected now is cut off too.
    """
    desktop = keys.desktop(settings.cti_key_dir, desktop_id)
    if desktop is None:
        raise NotFound(f"desktop {desktop_id} is not enrolled")
    if Role.ADMIN not in principal.roles and not (
        Role.CLERK in principal.roles and desktop.enrolled_by == principal.subject
    ):
        raise Forbidden("only the clerk who enrolled a desktop, or an admin, withdraws it")
    record(
        session,
        principal,
        "cti.desktop_withdrawn",
        "cti_desktop",
        desktop.id,
        public_key=desktop.public_key,
        enrolled_by=desktop.enrolled_by,
    )
    key_dir = settings.cti_key_dir

    def withdraw() -> None:
        keys.remove_desktop_key(key_dir, desktop.id)

    on_commit(session, withdraw)
    return desktop

"""The authenticated principal and what each role may do."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """Roles a principal can hold."""

    CLERK = "clerk"
    MAILROOM = "mailroom"
    ARCHIVIST = "archivist"
    ADMIN = "admin"
    SERVICE = "service"


class Permission(StrEnum):
    """Actions checked by the services; roles grant them below."""

    FILE_READ = "file:read"
    FILE_WRITE = "file:write"
    DOCUMENT_READ = "document:read"
    DOCUMENT_WRITE = "document:write"
    CONTACT_READ = "contact:read"
    CONTACT_WRITE = "contact:write"
    PLAN_WRITE = "plan:write"
    UNIT_WRITE = "unit:write"
    AUDIT_READ = "audit:read"
    APIKEY_MANAGE = "apikey:manage"
    # Retention (retention/): closing files (zdA), holds, disposal runs, fixity reports.
    FILE_CLOSE = "file:close"
    RETENTION_MANAGE = "retention:manage"
    INBOX_SUBMIT = "inbox:submit"
    INBOX_READ = "inbox:read"
    INBOX_ASSIGN = "inbox:assign"
    INBOX_REQUEUE = "inbox:requeue"


_ALL_READ = {Permission.FILE_READ, Permission.DOCUMENT_READ, Permission.CONTACT_READ}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CLERK: frozenset(
        _ALL_READ
        | {
            Permission.FILE_WRITE,
            Permission.DOCUMENT_WRITE,
            Permission.CONTACT_WRITE,
            Permission.FILE_CLOSE,
        }
    ),
    Role.MAILROOM: frozenset(
        _ALL_READ
        | {
            Permission.DOCUMENT_WRITE,
            Permission.INBOX_SUBMIT,
            Permission.INBOX_READ,
            Permission.INBOX_ASSIGN,
        }
    ),
    Role.ARCHIVIST: frozenset(
        _ALL_READ | {Permission.AUDIT_READ, Permission.FILE_CLOSE, Permission.RETENTION_MANAGE}
    ),
    Role.ADMIN: frozenset(
        {
            Permission.FILE_READ,
            Permission.CONTACT_READ,
            Permission.PLAN_WRITE,
            Permission.UNIT_WRITE,
            Permission.AUDIT_READ,
            Permission.APIKEY_MANAGE,
            Permission.INBOX_READ,
            Permission.INBOX_REQUEUE,
        }
    ),
    Role.SERVICE: frozenset(
        _ALL_READ
        | {
            Permission.FILE_WRITE,
            Permission.DOCUMENT_WRITE,
            Permission.CONTACT_WRITE,
            Permission.INBOX_SUBMIT,
        }
    ),
}


# Confidentiality levels of files, lowest first. A principal's clearance is one of them; a file
# above it is invisible to the principal (404), as a file of another org unit is.
CLEARANCE_LEVELS: tuple[str, ...] = ("normal", "confidential", "secret")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (JWT) or a service account (API key)."""

    subject: str
    roles: frozenset[Role]
    units: frozenset[str] = field(default_factory=frozenset)
    kind: str = "user"
    clearance: str = "normal"

    def can(self, permission: Permission) -> bool:
        """True if any of the principal's roles grants `permission`."""
        return any(permission in ROLE_PERMISSIONS[role] for role in self.roles)

    def in_unit(self, unit_code: str) -> bool:
        """True if the principal works in (or for) the org unit."""
        return unit_code in self.units

    def cleared_levels(self) -> tuple[str, ...]:
        """The confidentiality levels the principal may read.

        System principals (pipeline workers, importers) act for the unit that owns a file and
        must be able to file into any of its files, so they are cleared for every level.
        """
        if self.kind == "system":
            return CLEARANCE_LEVELS
        if self.clearance not in CLEARANCE_LEVELS:
            return CLEARANCE_LEVELS[:1]
        return CLEARANCE_LEVELS[: CLEARANCE_LEVELS.index(self.clearance) + 1]

    def cleared_for(self, confidentiality: str) -> bool:
        """True if the principal's clearance reaches the level of a file."""
        return confidentiality in self.cleared_levels()


SYSTEM = Principal(subject="system", roles=frozenset(Role), units=frozenset(), kind="system")

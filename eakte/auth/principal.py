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


_ALL_READ = {Permission.FILE_READ, Permission.DOCUMENT_READ, Permission.CONTACT_READ}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CLERK: frozenset(
        _ALL_READ | {Permission.FILE_WRITE, Permission.DOCUMENT_WRITE, Permission.CONTACT_WRITE}
    ),
    Role.MAILROOM: frozenset(_ALL_READ | {Permission.DOCUMENT_WRITE}),
    Role.ARCHIVIST: frozenset(_ALL_READ | {Permission.AUDIT_READ}),
    Role.ADMIN: frozenset(
        {
            Permission.FILE_READ,
            Permission.CONTACT_READ,
            Permission.PLAN_WRITE,
            Permission.UNIT_WRITE,
            Permission.AUDIT_READ,
            Permission.APIKEY_MANAGE,
        }
    ),
    Role.SERVICE: frozenset(
        _ALL_READ | {Permission.FILE_WRITE, Permission.DOCUMENT_WRITE, Permission.CONTACT_WRITE}
    ),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (JWT) or a service account (API key)."""

    subject: str
    roles: frozenset[Role]
    units: frozenset[str] = field(default_factory=frozenset)
    kind: str = "user"

    def can(self, permission: Permission) -> bool:
        """True if any of the principal's roles grants `permission`."""
        return any(permission in ROLE_PERMISSIONS[role] for role in self.roles)

    def in_unit(self, unit_code: str) -> bool:
        """True if the principal works in (or for) the org unit."""
        return unit_code in self.units


SYSTEM = Principal(subject="system", roles=frozenset(Role), units=frozenset(), kind="system")

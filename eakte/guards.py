"""Authorisation checks shared by the services."""

from __future__ import annotations

from eakte.auth.principal import Permission, Principal
from eakte.errors import Forbidden


def require(principal: Principal, permission: Permission) -> None:
    """Raise Forbidden unless one of the principal's roles grants `permission`."""
    if not principal.can(permission):
        roles = ", ".join(sorted(principal.roles)) or "none"
        raise Forbidden(f"your roles ({roles}) do not allow {permission.value}")

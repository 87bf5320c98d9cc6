"""HTTP routes of authentication: who am I, and service-account API keys (admin)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from eakte.audit.service import record
from eakte.auth import apikeys
from eakte.auth.models import ApiKey
from eakte.auth.principal import Permission, Role
from eakte.deps import PrincipalDep, SessionDep
from eakte.guards import require

router = APIRouter(prefix="/api/v1", tags=["auth"])


class MeOut(BaseModel):
    """The calling principal."""

    subject: str
    roles: list[Role]
    units: list[str]
    kind: str


class ApiKeyCreate(BaseModel):
    """A new service-account key."""

    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1)
    units: list[str] = Field(default_factory=list)


class ApiKeyOut(BaseModel):
    """A key's metadata; never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    key_id: str
    roles: list[str]
    units: list[str]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """A new key, with its secret shown this once."""

    key: str


@router.get("/me", response_model=MeOut)
def me(principal: PrincipalDep) -> MeOut:
    """The caller's identity, roles and org units."""
    return MeOut(
        subject=principal.subject,
        roles=sorted(principal.roles),
        units=sorted(principal.units),
        kind=principal.kind,
    )


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(
    data: ApiKeyCreate, session: SessionDep, principal: PrincipalDep
) -> ApiKeyCreated:
    """Create a service-account key (admin); the key is shown once."""
    require(principal, Permission.APIKEY_MANAGE)
    row, key = apikeys.create_api_key(session, data.name, data.roles, data.units, principal.subject)
    record(
        session,
        principal,
        "api_key.created",
        "api_key",
        row.id,
        name=row.name,
        roles=row.roles,
        units=row.units,
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=key)


@router.get("/api-keys", response_model=list[ApiKeyOut])
def list_api_keys(session: SessionDep, principal: PrincipalDep) -> Sequence[ApiKey]:
    """All service-account keys (admin)."""
    require(principal, Permission.APIKEY_MANAGE)
    return apikeys.list_api_keys(session)


@router.delete("/api-keys/{name}", response_model=ApiKeyOut)
def revoke_api_key(name: str, session: SessionDep, principal: PrincipalDep) -> ApiKey:
    """Revoke a key (admin); it stops working at once."""
    require(principal, Permission.APIKEY_MANAGE)
    row = apikeys.revoke_api_key(session, name)
    record(session, principal, "api_key.revoked", "api_key", row.id, name=row.name)
    return row

"""Test data made through the services and the API, never by raw inserts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.conftest import Api


def unique(prefix: str) -> str:
    """A code unique within the test session's shared database."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class Unit:
    """An org unit with a clerk working in it."""

    code: str
    clerk: dict[str, str]


def org_unit(api: Api, code: str | None = None) -> Unit:
    """Create an org unit through the API (as admin) and a clerk's header for it."""
    code = code or unique("OU")
    admin = api.auth(["admin"], [])
    r = api.client.post(
        "/api/v1/org-units", json={"code": code, "name": f"Amt {code}"}, headers=admin
    )
    assert r.status_code == 201, r.text
    return Unit(code, api.auth(["clerk"], [code]))


def plan_item(api: Api, code: str | None = None, **fields: Any) -> dict[str, Any]:
    """Create a file plan item through the API (as admin)."""
    body = {
        "code": code or f"{uuid.uuid4().int % 90 + 10}.{uuid.uuid4().hex[:6]}",
        "title": "Bauanträge",
        "retention_years": 10,
        "archive_value": "V",
        **fields,
    }
    r = api.client.post("/api/v1/plan-items", json=body, headers=api.auth(["admin"], []))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def file(
    api: Api, unit: Unit, plan_code: str, title: str = "Bauantrag Musterstraße 1", **fields: Any
) -> dict[str, Any]:
    """Create a file through the API as the unit's clerk."""
    r = api.client.post(
        "/api/v1/files",
        json={"title": title, "plan_code": plan_code, "org_unit": unit.code, **fields},
        headers=unit.clerk,
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def upload(
    api: Api,
    headers: dict[str, str],
    file_id: str,
    content: bytes,
    name: str = "brief.pdf",
    **fields: str,
) -> Any:
    """Upload a document; returns the response (tests check the status)."""
    return api.client.post(
        f"/api/v1/files/{file_id}/documents",
        files={"file": (name, content, "application/octet-stream")},
        data=fields,
        headers=headers,
    )

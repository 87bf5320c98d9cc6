"""Changes with null where a value is required, and list offsets beyond what a database
takes: 422 problems, never a 500, and nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories
from tests.conftest import Api


def _assert_refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert ["body", field] in [e["loc"] for e in r.json()["errors"]]


@pytest.mark.parametrize("field", ["title", "confidentiality"])
def test_a_files_required_field_cannot_be_set_to_null(api: Api, field: str) -> None:
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    r = api.client.patch(f"/api/v1/files/{f['id']}", json={field: None}, headers=unit.clerk)
    _assert_refused(r, field)
    after = api.client.get(f"/api/v1/files/{f['id']}", headers=unit.clerk).json()
    assert after[field] == f[field]
    # The paper note may be cleared.
    r = api.client.patch(f"/api/v1/files/{f['id']}", json={"paper_note": None}, headers=unit.clerk)
    assert r.status_code == 200 and r.json()["paper_note"] is None


@pytest.mark.parametrize("field", ["title", "status"])
def test_a_process_required_field_cannot_be_set_to_null(api: Api, field: str) -> None:
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    process = api.client.post(
        f"/api/v1/files/{f['id']}/processes", json={"title": "Anhörung"}, headers=unit.clerk
    ).json()
    r = api.client.patch(
        f"/api/v1/processes/{process['id']}", json={field: None}, headers=unit.clerk
    )
    _assert_refused(r, field)
    after = api.client.get(f"/api/v1/processes/{process['id']}", headers=unit.clerk).json()
    assert after[field] == process[field]


@pytest.mark.parametrize("field", ["title", "archive_value", "active"])
def test_a_plan_items_required_field_cannot_be_set_to_null(api: Api, field: str) -> None:
    item = factories.plan_item(api)
    admin = api.auth(["admin"], [])
    r = api.client.patch(f"/api/v1/plan-items/{item['id']}", json={field: None}, headers=admin)
    _assert_refused(r, field)
    assert api.client.get(f"/api/v1/plan-items/{item['id']}", headers=admin).json() == item
    # Null retention means permanent and stays allowed.
    r = api.client.patch(
        f"/api/v1/plan-items/{item['id']}", json={"retention_years": None}, headers=admin
    )
    assert r.status_code == 200 and r.json()["retention_years"] is None


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/api/v1/files", "clerk"),
        ("/api/v1/contacts", "clerk"),
        ("/api/v1/files/{file}/documents", "clerk"),
        ("/api/v1/inbox", "mailroom"),
        ("/api/v1/retention/runs", "archivist"),
    ],
)
def test_an_offset_beyond_64_bits_is_a_422_problem(api: Api, path: str, role: str) -> None:
    unit = factories.org_unit(api)
    path = path.format(file=factories.file(api, unit, factories.plan_item(api)["code"])["id"])
    headers = api.auth([role], [unit.code])
    r = api.client.get(path, params={"offset": 2**63}, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert ["query", "offset"] in [e["loc"] for e in r.json()["errors"]]
    r = api.client.get(path, params={"offset": 2**63 - 1}, headers=headers)
    assert r.status_code == 200 and r.json() == [], r.text

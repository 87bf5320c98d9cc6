"""Forwarding, the work list and the access grants it opens, proven through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests import factories
from tests.conftest import Api


def test_forwarding_across_units_grants_read_access_to_that_file_only_until_done(
    api: Api,
) -> None:
    plan = factories.plan_item(api)
    a, b = factories.org_unit(api), factories.org_unit(api)
    shared = factories.file(api, a, plan["code"], title="Weitergeleitet")
    private = factories.file(api, a, plan["code"], title="Nicht weitergeleitet")
    assert api.client.get(f"/api/v1/files/{shared['id']}", headers=b.clerk).status_code == 404

    r = api.client.post(
        "/api/v1/forwardings",
        json={
            "file_id": shared["id"],
            "to_unit": b.code,
            "purpose": "action",
            "note": "Bitte prüfen",
        },
        headers=a.clerk,
    )
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["grant_id"]

    assert api.client.get(f"/api/v1/files/{shared['id']}", headers=b.clerk).status_code == 200
    docs = api.client.get(f"/api/v1/files/{shared['id']}/documents", headers=b.clerk)
    assert docs.status_code == 200
    assert api.client.get(f"/api/v1/files/{private['id']}", headers=b.clerk).status_code == 404
    listed = {f["id"] for f in api.client.get("/api/v1/files", headers=b.clerk).json()}
    assert shared["id"] in listed and private["id"] not in listed
    # Read only: no change, no upload, no onward forwarding.
    r = api.client.patch(f"/api/v1/files/{shared['id']}", json={"title": "x"}, headers=b.clerk)
    assert r.status_code == 403
    assert factories.upload(api, b.clerk, shared["id"], b"%PDF-1.4 x").status_code == 403

    worklist = api.client.get("/api/v1/worklist", headers=b.clerk).json()
    (mine,) = [i for i in worklist if i["id"] == item["id"]]
    assert mine["file_reference"] == shared["reference"] and mine["purpose"] == "action"

    grants = api.client.get(f"/api/v1/files/{shared['id']}/grants", headers=a.clerk).json()
    assert [(g["unit_code"], g["active"]) for g in grants] == [(b.code, True)]
    events = api.client.get(
        "/api/v1/audit",
        params={"object_id": shared["id"], "action": "access_grant.created"},
        headers=api.auth(["admin"], []),
    ).json()
    assert len(events) == 1

    # Only an assignee can mark it done.
    assert (
        api.client.post(f"/api/v1/worklist/{item['id']}/done", headers=a.clerk).status_code == 404
    )
    r = api.client.post(f"/api/v1/worklist/{item['id']}/done", headers=b.clerk)
    assert r.status_code == 200 and r.json()["done_at"]
    assert api.client.get(f"/api/v1/files/{shared['id']}", headers=b.clerk).status_code == 404
    grants = api.client.get(f"/api/v1/files/{shared['id']}/grants", headers=a.clerk).json()
    assert grants[0]["active"] is False and grants[0]["revoked_at"]
    assert item["id"] not in {
        i["id"] for i in api.client.get("/api/v1/worklist", headers=b.clerk).json()
    }


def test_forwarding_to_an_unknown_principal_is_refused_and_changes_nothing(api: Api) -> None:
    plan = factories.plan_item(api)
    a = factories.org_unit(api)
    file = factories.file(api, a, plan["code"])
    r = api.client.post(
        "/api/v1/forwardings",
        json={"file_id": file["id"], "to_subject": "nobody-" + factories.unique("x")},
        headers=a.clerk,
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "unknown principal" in r.json()["detail"]
    r = api.client.post(
        "/api/v1/forwardings",
        json={"file_id": file["id"], "to_unit": "NOUNIT", "to_subject": "x"},
        headers=a.clerk,
    )
    assert r.status_code == 422
    assert api.client.get(f"/api/v1/files/{file['id']}/grants", headers=a.clerk).json() == []


def test_worklist_shows_overdue_items_first_and_colleagues_in_the_unit(api: Api) -> None:
    plan = factories.plan_item(api)
    a = factories.org_unit(api)
    file = factories.file(api, a, plan["code"])
    colleague_sub = factories.unique("carla")
    colleague = api.auth(["clerk"], [a.code], sub=colleague_sub)
    assert api.client.get("/api/v1/worklist", headers=colleague).json() == []
    now = datetime.now(UTC)
    ids = []
    for due in (now + timedelta(days=3), now - timedelta(days=1), None):
        body = {"file_id": file["id"], "to_subject": colleague_sub, "purpose": "information"}
        if due is not None:
            body["due_at"] = due.isoformat()
        r = api.client.post("/api/v1/forwardings", json=body, headers=a.clerk)
        assert r.status_code == 201, r.text
        assert r.json()["grant_id"] is None  # same unit: no grant needed
        ids.append(r.json()["id"])
    items = api.client.get("/api/v1/worklist", headers=colleague).json()
    assert [i["id"] for i in items] == [ids[1], ids[0], ids[2]]
    assert [i["overdue"] for i in items] == [True, False, False]

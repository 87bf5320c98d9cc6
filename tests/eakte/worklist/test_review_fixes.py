"""Work-list ordering under a limit, clearance, due dates at the calendar's edge, races."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eakte.auth.principal import Principal, Role
from eakte.auth.tokens import issue_token
from eakte.db import make_session_factory, unit_of_work
from eakte.worklist import service
from tests import factories
from tests.conftest import Api

# How long the first transaction stays open once it has completed the item.
HOLD_SECONDS = 0.5


def _forward(api: Api, headers: dict[str, str], **body: object) -> dict[str, Any]:
    r = api.client.post("/api/v1/forwardings", json=body, headers=headers)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def test_short_worklist_keeps_overdue_items_first(api: Api) -> None:
    plan = factories.plan_item(api)
    a, b = factories.org_unit(api), factories.org_unit(api)
    file = factories.file(api, a, plan["code"])
    _forward(api, a.clerk, file_id=file["id"], to_unit=b.code)
    _forward(api, a.clerk, file_id=file["id"], to_unit=b.code)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    overdue = _forward(api, a.clerk, file_id=file["id"], to_unit=b.code, due_at=past)

    r = api.client.get("/api/v1/worklist", params={"limit": 2}, headers=b.clerk)
    assert r.status_code == 200, r.text
    listed = r.json()
    assert listed[0]["id"] == overdue["id"] and listed[0]["overdue"] is True
    again = api.client.get("/api/v1/worklist", params={"limit": 2}, headers=b.clerk).json()
    assert [i["id"] for i in again] == [i["id"] for i in listed]


def test_worklist_hides_items_of_files_above_clerks_clearance(api: Api) -> None:
    plan = factories.plan_item(api)
    a, b = factories.org_unit(api), factories.org_unit(api)
    cleared = {
        "Authorization": "Bearer "
        + issue_token(api.settings, "cleared", ["clerk"], [a.code], clearance="secret")
    }
    r = api.client.post(
        "/api/v1/files",
        json={
            "title": "Geheim",
            "plan_code": plan["code"],
            "org_unit": a.code,
            "confidentiality": "secret",
        },
        headers=cleared,
    )
    assert r.status_code == 201, r.text
    secret = r.json()
    item = _forward(api, cleared, file_id=secret["id"], to_unit=b.code, note="vertraulich")

    listed = api.client.get("/api/v1/worklist", headers=b.clerk).json()
    assert item["id"] not in [i["id"] for i in listed]
    assert secret["reference"] not in [i["file_reference"] for i in listed]
    b_cleared = {
        "Authorization": "Bearer "
        + issue_token(api.settings, "b-cleared", ["clerk"], [b.code], clearance="secret")
    }
    listed = api.client.get("/api/v1/worklist", headers=b_cleared).json()
    assert item["id"] in [i["id"] for i in listed]


@pytest.mark.parametrize("due_at", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"])
def test_due_date_without_utc_equivalent_is_refused_as_invalid_input(api: Api, due_at: str) -> None:
    plan = factories.plan_item(api)
    a, b = factories.org_unit(api), factories.org_unit(api)
    file = factories.file(api, a, plan["code"])
    r = api.client.post(
        "/api/v1/forwardings",
        json={"file_id": file["id"], "to_unit": b.code, "due_at": due_at},
        headers=a.clerk,
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "/problems/invalid-input"


def test_two_clerks_completing_the_same_item_at_once_complete_it_once(pg_api: Api) -> None:
    api = pg_api
    plan = factories.plan_item(api)
    a, b = factories.org_unit(api), factories.org_unit(api)
    file = factories.file(api, a, plan["code"])
    item = _forward(api, a.clerk, file_id=file["id"], to_unit=b.code)
    first = Principal("first", frozenset({Role.CLERK}), frozenset({b.code}))
    second = Principal("second", frozenset({Role.CLERK}), frozenset({b.code}))
    factory = make_session_factory(api.engine)
    inside = threading.Event()

    def one() -> None:
        with unit_of_work(factory) as session:
            service.complete(session, first, uuid.UUID(item["id"]))
            inside.set()
            time.sleep(HOLD_SECONDS)

    def two() -> None:
        assert inside.wait(10)
        with unit_of_work(factory) as session:
            service.complete(session, second, uuid.UUID(item["id"]))

    with ThreadPoolExecutor(2) as pool:
        done_first = pool.submit(one)
        done_second = pool.submit(two)
        done_first.result()
        done_second.result()

    events = api.client.get(
        "/api/v1/audit",
        params={"object_id": file["id"], "action": "work_item.done"},
        headers=api.auth(["admin"], []),
    ).json()
    assert len(events) == 1
    r = api.client.post(f"/api/v1/worklist/{item['id']}/done", headers=b.clerk)
    assert r.status_code == 200 and r.json()["done_by"] == "first"

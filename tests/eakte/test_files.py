"""Files and processes through the API, with clear errors for bad input."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from eakte.auth.principal import Principal, Role
from eakte.files import service as files
from tests import factories
from tests.conftest import Api


def test_file_life_with_processes(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    f = factories.file(api, unit, item["code"], paper_note="Altakte im Keller, Regal 4")
    assert f["status"] == "open" and f["org_unit"] == unit.code and f["plan_code"] == item["code"]

    r = api.client.post(
        f"/api/v1/files/{f['id']}/processes", json={"title": "Anhörung"}, headers=unit.clerk
    )
    assert r.status_code == 201
    process = r.json()
    r = api.client.patch(
        f"/api/v1/processes/{process['id']}", json={"status": "done"}, headers=unit.clerk
    )
    assert r.json()["status"] == "done"
    assert [
        p["id"]
        for p in api.client.get(f"/api/v1/files/{f['id']}/processes", headers=unit.clerk).json()
    ] == [process["id"]]

    r = api.client.patch(
        f"/api/v1/files/{f['id']}", json={"title": "Neuer Titel"}, headers=unit.clerk
    )
    assert r.status_code == 200 and r.json()["title"] == "Neuer Titel"
    by_ref = api.client.get(
        "/api/v1/files", params={"reference": f["reference"]}, headers=unit.clerk
    ).json()
    assert [x["id"] for x in by_ref] == [f["id"]]


def test_unknown_plan_item_is_404_problem(api: Api) -> None:
    unit = factories.org_unit(api)
    r = api.client.post(
        "/api/v1/files", json={"title": "x", "plan_code": "99.99.99"}, headers=unit.clerk
    )
    assert r.status_code == 404
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["status"] == 404 and body["title"] and "99.99.99" in body["detail"]
    assert body["instance"] == "/api/v1/files"


def test_schema_violations_are_422_problems_listing_the_fields(api: Api) -> None:
    unit = factories.org_unit(api)
    r = api.client.post("/api/v1/files", json={"plan_code": "1"}, headers=unit.clerk)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert ["body", "title"] in [e["loc"] for e in r.json()["errors"]]


def test_inactive_plan_item_takes_no_new_files(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    r = api.client.patch(
        f"/api/v1/plan-items/{item['id']}", json={"active": False}, headers=api.auth(["admin"], [])
    )
    assert r.status_code == 200
    r = api.client.post(
        "/api/v1/files", json={"title": "x", "plan_code": item["code"]}, headers=unit.clerk
    )
    assert r.status_code == 422
    assert "inactive" in r.json()["detail"]


def test_duplicate_plan_item_code_is_409(api: Api) -> None:
    item = factories.plan_item(api)
    r = api.client.post(
        "/api/v1/plan-items",
        json={"code": item["code"], "title": "again"},
        headers=api.auth(["admin"], []),
    )
    assert r.status_code == 409


def test_unknown_process_is_404(api: Api) -> None:
    unit = factories.org_unit(api)
    r = api.client.get("/api/v1/processes/00000000-0000-0000-0000-000000000001", headers=unit.clerk)
    assert r.status_code == 404


def test_a_file_locked_twice_in_one_transaction_is_read_once(api: Api) -> None:
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    file_id = uuid.UUID(f["id"])
    clerk = Principal("clerk-1", frozenset({Role.CLERK}), frozenset({unit.code}))
    selects: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("SELECT files."):
            selects.append(statement)

    event.listen(api.engine, "before_cursor_execute", count)
    try:
        with Session(api.engine) as session:
            first = files.get_writable_file(session, clerk, file_id, lock=True)
            again = files.get_writable_file(session, clerk, file_id, lock=True)
            assert again is first and len(selects) == 1
            if api.engine.dialect.name == "postgresql":
                # The row really is locked: another transaction cannot take it.
                with api.engine.connect() as other, pytest.raises(OperationalError):
                    other.execute(
                        text("SELECT id FROM files WHERE id = :id FOR UPDATE NOWAIT"),
                        {"id": file_id},
                    )
            # After the transaction the lock is gone, so the next one locks afresh.
            session.rollback()
            files.get_writable_file(session, clerk, file_id, lock=True)
            assert len(selects) == 2
    finally:
        event.remove(api.engine, "before_cursor_execute", count)


def test_a_nul_character_is_refused_alike_by_both_databases(api: Api) -> None:
    """SQLite would store what PostgreSQL refuses; the embedded database refuses it too."""
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    title = factories.unique("Bauakte ")
    r = api.client.post(
        "/api/v1/files", json={"title": f"{title}\x00", "plan_code": item["code"]},
        headers=unit.clerk,
    )  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    listed = api.client.get("/api/v1/files", headers=unit.clerk).json()
    assert not [f for f in listed if f["title"].startswith(title)]
    # And a title without one goes through on the same connection.
    r = api.client.post(
        "/api/v1/files", json={"title": title, "plan_code": item["code"]}, headers=unit.clerk
    )
    assert r.status_code == 201, r.text


def test_a_taken_over_reference_takes_ascii_digits_only(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    r = api.client.post(
        "/api/v1/files",
        json={"title": "Altakte", "plan_code": item["code"],
              "reference": f"{item['code']}-\u0662\u0660\u0662\u0666/\u0660\u0660\u0660\u0661"},
        headers=unit.clerk,
    )  # fmt: skip
    assert r.status_code == 422, r.text

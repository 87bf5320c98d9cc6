"""Two requests creating the same thing at once: one wins, the other gets a 409 problem (or,
for an idempotent link, the same answer), never a 500 from the unique index."""

from __future__ import annotations

import threading
from typing import Any

from tests import factories
from tests.conftest import Api

ROUNDS = 4
REQUESTS = 4


def _post_at_once(api: Api, path: str, body: dict[str, Any], headers: dict[str, str]) -> list[int]:
    """The status codes of REQUESTS identical POSTs, released together."""
    start = threading.Barrier(REQUESTS)
    codes: list[int] = []

    def run() -> None:
        start.wait()
        codes.append(api.client.post(path, json=body, headers=headers).status_code)

    threads = [threading.Thread(target=run) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def test_a_contact_linked_twice_at_once_is_linked_once(pg_api: Api) -> None:
    unit = factories.org_unit(pg_api)
    f = factories.file(pg_api, unit, factories.plan_item(pg_api)["code"])
    contact = pg_api.client.post("/api/v1/contacts", json={"name": "Erika"}, headers=unit.clerk)
    for n in range(ROUNDS):
        link = {"contact_id": contact.json()["id"], "role": f"role{n}"}
        codes = _post_at_once(pg_api, f"/api/v1/files/{f['id']}/contacts", link, unit.clerk)
        assert codes == [201] * REQUESTS
    links = pg_api.client.get(f"/api/v1/files/{f['id']}/contacts", headers=unit.clerk).json()
    assert len(links) == ROUNDS


def test_an_org_unit_created_twice_at_once_is_one_201_and_409s(pg_api: Api) -> None:
    admin = pg_api.auth(["admin"], [])
    for _ in range(ROUNDS):
        body = {"code": factories.unique("OU"), "name": "Ordnungsamt"}
        codes = _post_at_once(pg_api, "/api/v1/org-units", body, admin)
        assert sorted(codes) == [201] + [409] * (REQUESTS - 1)


def test_a_plan_item_created_twice_at_once_is_one_201_and_409s(pg_api: Api) -> None:
    admin = pg_api.auth(["admin"], [])
    for _ in range(ROUNDS):
        body = {"code": f"88.{factories.unique('p')}", "title": "Gewerbe"}
        codes = _post_at_once(pg_api, "/api/v1/plan-items", body, admin)
        assert sorted(codes) == [201] + [409] * (REQUESTS - 1)

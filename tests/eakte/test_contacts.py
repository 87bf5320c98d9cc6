"""Contacts with phone numbers: stored in E.164, found by any notation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from eakte.contacts.models import Contact
from eakte.contacts.repository import name_contains
from eakte.db import make_engine
from tests import factories
from tests.conftest import Api


def _new_contact(api: Api, headers: dict[str, str], phone: str) -> dict[str, object]:
    r = api.client.post(
        "/api/v1/contacts",
        json={
            "name": f"Erika Mustermann {factories.unique('')}",
            "postal_address": "Musterstraße 1\n25421 Pinneberg",
            "phones": [{"number": phone, "label": "mobil"}],
            "emails": ["Erika@Example.org"],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    result: dict[str, object] = r.json()
    return result


@pytest.mark.parametrize(
    "query", ["040 1234567", "+49 40 1234567", "0049401234567", "+49(0)40-123 45 67"]
)
def test_contact_is_found_by_any_notation(api: Api, query: str) -> None:
    unit = factories.org_unit(api)
    contact = _new_contact(api, unit.clerk, "040 1234567")
    assert contact["phones"] == [{"e164": "+49401234567", "label": "mobil"}]
    found = api.client.get("/api/v1/contacts", params={"phone": query}, headers=unit.clerk)
    assert found.status_code == 200
    assert contact["id"] in [c["id"] for c in found.json()]


def test_contact_is_found_by_email_case_insensitively(api: Api) -> None:
    unit = factories.org_unit(api)
    contact = _new_contact(api, unit.clerk, "030 9876543")
    found = api.client.get(
        "/api/v1/contacts", params={"email": "ERIKA@example.ORG"}, headers=unit.clerk
    ).json()
    assert contact["id"] in [c["id"] for c in found]


def test_malformed_phone_number_is_422_and_nothing_is_stored(api: Api) -> None:
    unit = factories.org_unit(api)
    name = factories.unique("Niemand ")
    r = api.client.post(
        "/api/v1/contacts",
        json={"name": name, "phones": [{"number": "030 1234567"}, {"number": "12ab"}]},
        headers=unit.clerk,
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "12ab" in r.json()["detail"]
    found = api.client.get("/api/v1/contacts", params={"name": name}, headers=unit.clerk)
    assert found.json() == []


def test_malformed_phone_in_a_lookup_is_422(api: Api) -> None:
    unit = factories.org_unit(api)
    r = api.client.get("/api/v1/contacts", params={"phone": "not a number"}, headers=unit.clerk)
    assert r.status_code == 422


def test_files_can_be_filtered_by_contact(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    contact = _new_contact(api, unit.clerk, "040 7654321")
    linked = factories.file(api, unit, item["code"], contact_ids=[contact["id"]])
    factories.file(api, unit, item["code"])
    files = api.client.get(
        "/api/v1/files", params={"contact_id": contact["id"]}, headers=unit.clerk
    ).json()
    assert [f["id"] for f in files] == [linked["id"]]


def test_a_contacts_name_cannot_be_cleared(api: Api) -> None:
    unit = factories.org_unit(api)
    contact = _new_contact(api, unit.clerk, "040 1234567")
    url = f"/api/v1/contacts/{contact['id']}"
    r = api.client.patch(url, json={"name": None}, headers=unit.clerk)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert ["body", "name"] in [e["loc"] for e in r.json()["errors"]]
    r = api.client.patch(url, json={"postal_address": None}, headers=unit.clerk)
    assert r.status_code == 200 and r.json()["name"] == contact["name"]


def test_a_name_search_finds_parts_of_names_and_takes_wildcards_literally(api: Api) -> None:
    clerk = factories.org_unit(api).clerk
    tag = factories.unique("")
    for name in (f"Meier_{tag} Hans", f"Meierhof{tag} GmbH", f"Anna Obermeier {tag}"):
        r = api.client.post("/api/v1/contacts", json={"name": name}, headers=clerk)
        assert r.status_code == 201, r.text

    def names(query: str) -> list[str]:
        r = api.client.get("/api/v1/contacts", params={"name": query}, headers=clerk)
        assert r.status_code == 200, r.text
        return sorted(c["name"] for c in r.json())

    assert names(f"MEIER_{tag}") == [f"Meier_{tag} Hans"]  # `_` is no wildcard
    assert names(f"meier%{tag}") == []  # nor is `%`
    assert names(f"hof{tag}") == [f"Meierhof{tag} GmbH"]
    assert len(names(tag)) == 3


def test_a_name_search_ignores_the_case_of_umlauts_on_both_databases(api: Api) -> None:
    clerk = factories.org_unit(api).clerk
    tag = factories.unique("")
    r = api.client.post("/api/v1/contacts", json={"name": f"Özdemir Ärger {tag}"}, headers=clerk)
    assert r.status_code == 201, r.text
    for query in (f"özdemir ärger {tag}", f"ÖZDEMIR ÄRGER {tag}", f"ärger {tag}"):
        found = api.client.get("/api/v1/contacts", params={"name": query}, headers=clerk)
        assert [c["id"] for c in found.json()] == [r.json()["id"]], query


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def test_the_name_search_is_served_by_the_trigram_index(pg_engine: Engine) -> None:
    """PostgreSQL: an unanchored ILIKE on names can use the GIN trigram index (0010)."""
    query = select(Contact.id).where(name_contains("meier"))
    sql = str(query.compile(pg_engine, compile_kwargs={"literal_binds": True}))
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # the table is small here
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}").scalars())
    assert "ix_contacts_name_trgm" in plan, plan

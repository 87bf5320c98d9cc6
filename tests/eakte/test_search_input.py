"""What a search query may hold: control characters are no error of the database."""

from __future__ import annotations

from tests import factories
from tests.conftest import Api


def test_control_characters_in_a_query_are_ignored(api: Api) -> None:
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    word = factories.unique("Gewerbeanmeldung")
    r = factories.upload(api, unit.clerk, f["id"], b"Antrag", name="antrag.txt", title=word)
    assert r.status_code == 201, r.text

    found = api.client.get("/api/v1/search", params={"q": f"\x00{word}\x07"}, headers=unit.clerk)
    assert found.status_code == 200, found.text
    assert r.json()["id"] in [h["document_id"] for h in found.json()]
    r = api.client.get("/api/v1/search", params={"q": "\x00\x01"}, headers=unit.clerk)
    assert r.status_code == 422 and "empty" in r.json()["detail"]


def test_a_document_with_many_matching_versions_leaves_room_for_others(api: Api) -> None:
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    word = factories.unique("Zauberwort")
    # A longer title ranks lower, so every version of the other document ranks above it.
    other = factories.upload(
        api, unit.clerk, f["id"], b"eins", name="b.txt", title=f"{word} und ein langer Titel"
    ).json()
    revised = factories.upload(api, unit.clerk, f["id"], b"eins", name="a.txt", title=word)
    for n in range(8):
        r = api.client.post(
            f"/api/v1/documents/{revised.json()['id']}/versions",
            files={"file": ("a.txt", f"Fassung {n}".encode(), "text/plain")},
            headers=unit.clerk,
        )
        assert r.status_code == 201, r.text
    for limit in (2, 3):
        hits = api.client.get(
            "/api/v1/search", params={"q": word, "limit": limit}, headers=unit.clerk
        ).json()
        assert {h["document_id"] for h in hits} == {revised.json()["id"], other["id"]}
        assert len(hits) == 2

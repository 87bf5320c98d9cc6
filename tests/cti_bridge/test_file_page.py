"""The file page the desktop agent opens: sign-in by cookie, escaping, visibility, downloads."""

from __future__ import annotations

from tests import factories
from tests.conftest import Api


def _sign_in(api: Api, token: str, next_path: str) -> None:
    r = api.client.post("/signin", data={"token": token, "next": next_path}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == next_path
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_file_page_signs_in_and_shows_contacts_and_documents_escaped(api: Api) -> None:
    unit = factories.org_unit(api)
    plan = factories.plan_item(api)
    r = api.client.post(
        "/api/v1/contacts",
        json={"name": "<script>alert(1)</script>", "phones": [{"number": "040 1234567"}]},
        headers=unit.clerk,
    )
    contact_id = r.json()["id"]
    f = factories.file(
        api, unit, plan["code"], title="Bau & <b>Abriss</b>", contact_ids=[contact_id]
    )
    doc = factories.upload(api, unit.clerk, f["id"], b"%PDF-1.4 hello", title="Antrag").json()
    page = f"/files/{f['id']}"

    r = api.client.get(page, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/signin?next={page}"
    bad = api.client.post("/signin", data={"token": "garbage", "next": page})
    assert bad.status_code == 401 and "set-cookie" not in bad.headers

    _sign_in(api, api.token(["clerk"], [unit.code], sub="anna"), page)
    r = api.client.get(page)
    assert r.status_code == 200
    html = r.text
    assert f["reference"] in html and "Bau &amp; &lt;b&gt;Abriss&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "+49401234567" in html
    link = f"/files/{f['id']}/documents/{doc['id']}/versions/1"
    assert link in html
    assert "default-src 'none'" in r.headers["content-security-policy"]

    download = api.client.get(link)
    assert download.status_code == 200 and download.content == b"%PDF-1.4 hello"
    assert download.headers["content-disposition"].startswith("attachment")

    audit = api.client.get(
        "/api/v1/audit",
        params={"object_id": doc["id"], "action": "version.content_read"},
        headers=api.auth(["admin"], []),
    ).json()
    assert [e["actor"] for e in audit] == ["anna"]


def test_other_units_file_page_is_not_found(api: Api) -> None:
    mine, theirs = factories.org_unit(api), factories.org_unit(api)
    plan = factories.plan_item(api)
    f = factories.file(api, theirs, plan["code"])
    _sign_in(api, api.token(["clerk"], [mine.code]), "/")
    assert api.client.get(f"/files/{f['id']}").status_code == 404


def test_sign_in_never_redirects_to_another_site(api: Api) -> None:
    token = api.token(["clerk"], ["10"])
    for target in ("https://evil.example", "//evil.example/x", "/\\evil.example"):
        r = api.client.post(
            "/signin", data={"token": token, "next": target}, follow_redirects=False
        )
        assert r.headers["location"] == "/"

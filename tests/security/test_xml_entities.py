"""XML external entities and entity bombs in e-mail attachments and uploaded invoices.

Nothing in eakte may resolve an entity: a file named by an external entity never shows up in
a document, its text or a search, and an entity bomb neither hangs nor crashes the pipeline.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests import factories
from tests.conftest import Api
from tests.inbox import corpus
from tests.inbox.conftest import Office, office  # noqa: F401 - the fixture, for this module


def _canary(tmp_path: Path) -> tuple[Path, str]:
    secret = f"canary{uuid.uuid4().hex}"
    path = tmp_path / "canary.txt"
    path.write_text(secret)
    return path, secret


def _hostile_xml(canary: Path) -> dict[str, bytes]:
    xxe = (
        f'<?xml version="1.0"?>\n<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file://{canary}">]>\n'
        '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">'
        "<cbc:Note xmlns:cbc=\"urn:x\">&xxe;</cbc:Note></Invoice>\n"
    ).encode()
    laughs = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [' + "".join(laughs) + "]>\n<lolz>&lol9;</lolz>\n"
    ).encode()
    parameter = (
        f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY % p SYSTEM "file://{canary}"> %p;]>\n'
        "<x/>\n"
    ).encode()
    return {"xrechnung.xml": xxe, "lol.xml": bomb, "param.xml": parameter}


@pytest.mark.slow
def test_xml_attachments_are_kept_verbatim_and_never_expanded(
    office: Office,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    canary, secret = _canary(tmp_path)
    attachments = [(name, "application/xml", data) for name, data in _hostile_xml(canary).items()]
    raw = corpus.simple(f"Rechnung zu {office.file['reference']}", "Anbei die Rechnung.\n",
                        attachments=attachments)
    r = office.api.client.post("/api/v1/inbox", files={"file": ("rechnung.eml", raw)},
                               headers=office.mailroom)
    assert r.status_code == 202, r.text
    started = time.monotonic()
    office.worker().run_until_idle()
    assert time.monotonic() - started < 60
    item = office.item(r.json()["id"])
    assert item["state"] == "filed", item

    clerk = office.unit.clerk
    docs = office.api.client.get(f"/api/v1/files/{office.file['id']}/documents",
                                 headers=clerk).json()
    by_name = {d["latest"]["original_name"]: d for d in docs}
    for name, data in _hostile_xml(canary).items():
        assert name in by_name, sorted(by_name)
        got = office.api.client.get(f"/api/v1/documents/{by_name[name]['id']}/versions/1/content",
                                    headers=clerk)
        assert got.content == data  # stored as sent: no entity was resolved or expanded
    for d in docs:
        body = office.api.client.get(f"/api/v1/documents/{d['id']}", headers=clerk).content
        assert secret.encode() not in body
    hits = office.api.client.get("/api/v1/search", params={"q": secret}, headers=clerk).json()
    assert hits == []


def test_uploaded_xml_invoice_is_stored_verbatim(api: Api, tmp_path: Path) -> None:
    canary, secret = _canary(tmp_path)
    unit = factories.org_unit(api)
    file = factories.file(api, unit, factories.plan_item(api)["code"])
    for name, data in _hostile_xml(canary).items():
        r = factories.upload(api, unit.clerk, file["id"], data, name=name, kind="invoice")
        assert r.status_code == 201, r.text
        doc = r.json()
        assert secret not in r.text
        got = api.client.get(f"/api/v1/documents/{doc['id']}/versions/1/content",
                             headers=unit.clerk)
        assert got.content == data
    hits = api.client.get("/api/v1/search", params={"q": secret}, headers=unit.clerk).json()
    assert hits == []

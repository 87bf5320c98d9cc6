"""From scan to filed document: OCR with real tesseract, filing by reference, triage."""

from __future__ import annotations

from pathlib import Path

import pikepdf

from tests.inbox.conftest import Office, letter_scan


def test_scan_naming_a_reference_is_filed_and_searchable(office: Office, tmp_path: Path) -> None:
    api = office.api
    item = office.submit(letter_scan(tmp_path, office.file["reference"]))
    assert item["state"] == "received"

    assert office.worker().run_until_idle() >= 1

    item = office.item(item["id"])
    assert item["state"] == "filed", item
    assert item["classification"]["method"] == "reference"
    assert item["classification"]["reference"] == office.file["reference"]
    docs = api.client.get(f"/api/v1/files/{office.file['id']}/documents",
                          headers=office.unit.clerk).json()
    assert [d["id"] for d in docs] == [item["filed_document_id"]]
    assert docs[0]["source"] == "scan"
    assert docs[0]["latest"]["mime_type"] == "application/pdf"
    assert docs[0]["latest"]["page_count"] == 1

    content = api.client.get(f"/api/v1/documents/{docs[0]['id']}/versions/1/content",
                             headers=office.unit.clerk)
    (tmp_path / "out.pdf").write_bytes(content.content)
    with pikepdf.open(tmp_path / "out.pdf") as pdf:
        assert len(pdf.pages) == 1

    hits = api.client.get("/api/v1/search", params={"q": "Abstandsflächen"},
                          headers=office.unit.clerk).json()
    assert item["filed_document_id"] in [h["document_id"] for h in hits]
    # The inbox copies are gone once the document holds the content.
    assert not api.store.exists(f"inbox/{item['id']}/original")


def test_search_does_not_reach_into_other_units(office: Office, tmp_path: Path) -> None:
    office.submit(letter_scan(tmp_path, office.file["reference"]))
    office.worker().run_until_idle()
    stranger = office.api.auth(["clerk"], ["another-unit"])
    hits = office.api.client.get("/api/v1/search", params={"q": "Abstandsflächen"},
                                 headers=stranger).json()
    assert office.file["id"] not in [h["file_id"] for h in hits]


def test_scan_without_reference_waits_in_triage_until_assigned(
    office: Office, tmp_path: Path
) -> None:
    api = office.api
    item = office.submit(letter_scan(tmp_path, None))
    office.worker().run_until_idle()

    triage = api.client.get("/api/v1/inbox", params={"state": "triage"},
                            headers=office.mailroom).json()
    mine = next(i for i in triage if i["id"] == item["id"])
    assert "Abstandsfl" in mine["preview"]
    assert mine["classification"]["triage_reason"]

    r = api.client.post(f"/api/v1/inbox/{item['id']}/assign",
                        json={"file_id": office.file["id"], "title": "Nachforderung"},
                        headers=office.mailroom)
    assert r.status_code == 200, r.text
    document = r.json()
    assert document["file_id"] == office.file["id"] and document["title"] == "Nachforderung"
    assert office.item(item["id"])["state"] == "filed"

    again = api.client.post(f"/api/v1/inbox/{item['id']}/assign",
                            json={"file_id": office.file["id"]}, headers=office.mailroom)
    assert again.status_code == 409
    docs = api.client.get(f"/api/v1/files/{office.file['id']}/documents",
                          headers=office.unit.clerk).json()
    assert len(docs) == 1


def test_assigning_into_a_file_of_another_unit_is_refused(office: Office, tmp_path: Path) -> None:
    item = office.submit(letter_scan(tmp_path, None))
    office.worker().run_until_idle()
    outsider = office.api.auth(["mailroom"], ["elsewhere"])
    r = office.api.client.post(f"/api/v1/inbox/{item['id']}/assign",
                               json={"file_id": office.file["id"]}, headers=outsider)
    assert r.status_code == 404
    assert office.item(item["id"])["state"] == "triage"


def test_clerks_cannot_submit_or_read_the_inbox(office: Office, tmp_path: Path) -> None:
    path = letter_scan(tmp_path, None)
    r = office.api.client.post("/api/v1/inbox", files={"file": ("a.png", path.read_bytes())},
                               headers=office.unit.clerk)
    assert r.status_code == 403
    assert office.api.client.get("/api/v1/inbox", headers=office.unit.clerk).status_code == 403

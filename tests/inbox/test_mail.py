"""E-mail through the inbox: .eml upload, one item into several documents, awkward MIME."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from inbox import mail
from inbox.text import storable, storable_or_none
from tests.factories import unique
from tests.inbox import corpus
from tests.inbox.conftest import Office, letter_scan


def submit_eml(office: Office, raw: bytes, name: str = "nachricht.eml") -> dict[str, Any]:
    """Hand a mail to the inbox through the API as the mailroom."""
    r = office.api.client.post("/api/v1/inbox", files={"file": (name, raw)},
                               headers=office.mailroom)
    assert r.status_code == 202, r.text
    result: dict[str, Any] = r.json()
    return result


def documents_of(office: Office) -> list[dict[str, Any]]:
    """The documents of the office's file, as its clerk sees them."""
    r = office.api.client.get(f"/api/v1/files/{office.file['id']}/documents",
                              headers=office.unit.clerk)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()
    return result


def content(office: Office, document: dict[str, Any]) -> bytes:
    """The latest version's bytes of a document."""
    r = office.api.client.get(f"/api/v1/documents/{document['id']}/versions/1/content",
                              headers=office.unit.clerk)
    assert r.status_code == 200, r.text
    return r.content


def test_mail_naming_a_reference_becomes_body_attachments_and_original(
    office: Office, tmp_path: Path
) -> None:
    scan = letter_scan(tmp_path, None, name="anlage.png").read_bytes()
    raw = corpus.simple(
        f"Ihr Zeichen {office.file['reference']}: Nachreichung",
        "Sehr geehrte Damen und Herren,\nanbei der Lageplan.\n",
        attachments=[("lageplan.png", "image/png", scan),
                     ("notiz.txt", "text/plain", "Bitte prüfen.".encode())],
    )
    item = submit_eml(office, raw)

    office.worker().run_until_idle()

    item = office.item(item["id"])
    assert item["state"] == "filed", item
    assert item["classification"]["method"] == "reference"
    assert item["subject"].startswith("Ihr Zeichen")
    assert item["sender_address"] == "erika@example.org"
    docs = sorted(documents_of(office), key=lambda d: d["title"])
    assert len(docs) == 4, docs
    by_name = {d["latest"]["original_name"]: d for d in docs}
    body = by_name["Nachricht.txt"]
    assert body["id"] == item["filed_document_id"]
    assert body["source"] == "email"
    assert body["title"] == item["subject"]
    assert b"anbei der Lageplan" in content(office, body)
    # The scanned attachment was OCRed into a searchable PDF.
    plan = by_name["lageplan.pdf"]
    assert plan["latest"]["mime_type"] == "application/pdf"
    assert plan["latest"]["page_count"] == 1
    assert content(office, by_name["notiz.txt"]) == "Bitte prüfen.".encode()
    original = by_name["nachricht.eml"]
    assert original["latest"]["mime_type"] == "message/rfc822"
    assert content(office, original) == raw
    hits = office.api.client.get("/api/v1/search", params={"q": "Abstandsflächen"},
                                 headers=office.unit.clerk).json()
    assert plan["id"] in [h["document_id"] for h in hits]
    # Filed once: a second worker run and a late triage assignment change nothing.
    assert office.worker().run_until_idle() == 0
    again = office.api.client.post(f"/api/v1/inbox/{item['id']}/assign",
                                   json={"file_id": office.file["id"]}, headers=office.mailroom)
    assert again.status_code == 409
    assert len(documents_of(office)) == 4
    assert not office.api.store.exists(f"inbox/{item['id']}/original")
    assert not office.api.store.exists(f"inbox/{item['id']}/parts/0")


def test_mail_from_a_contact_with_one_open_file_is_filed_there(office: Office) -> None:
    api = office.api
    # The session's database is shared: a fresh address keeps other tests' contacts out.
    local = unique("erika")
    r = api.client.post("/api/v1/contacts", headers=office.unit.clerk,
                        json={"name": "Erika Mustermann", "emails": [f"{local}@Example.org"]})
    assert r.status_code == 201, r.text
    contact = r.json()
    r = api.client.post(f"/api/v1/files/{office.file['id']}/contacts", headers=office.unit.clerk,
                        json={"contact_id": contact["id"]})
    assert r.status_code == 201, r.text

    item = submit_eml(office, corpus.simple("Frage zur Garage", "Wann kommt der Bescheid?",
                                            sender=f"Erika M. <{local.upper()}@example.org>"))
    office.worker().run_until_idle()

    item = office.item(item["id"])
    assert item["state"] == "filed", str(item["classification"])
    assert item["classification"]["method"] == "sender-email"
    assert f"{local}@example.org" in item["classification"]["why"]
    docs = documents_of(office)
    assert {d["sender_contact_id"] for d in docs} == {contact["id"]}


def test_sender_with_two_open_files_goes_to_triage(office: Office) -> None:
    api = office.api
    second = api.client.post("/api/v1/files", headers=office.unit.clerk,
                             json={"title": "Zweite Akte", "plan_code": office.file["plan_code"],
                                   "org_unit": office.unit.code}).json()
    address = f"{unique('max')}@example.org"
    contact = api.client.post("/api/v1/contacts", headers=office.unit.clerk,
                              json={"name": unique("Max Muster"), "emails": [address]}).json()
    for file in (office.file, second):
        r = api.client.post(f"/api/v1/files/{file['id']}/contacts", headers=office.unit.clerk,
                            json={"contact_id": contact["id"]})
        assert r.status_code == 201, r.text

    item = submit_eml(office, corpus.simple("Frage", "Text", sender=address))
    office.worker().run_until_idle()

    item = office.item(item["id"])
    assert item["state"] == "triage"
    assert "2 open files" in item["classification"]["why"]
    proposals = item["classification"]["proposals"]
    assert {p["file_id"] for p in proposals} == {office.file["id"], second["id"]}
    assert all(p["why"].startswith("matched sender") and p["confidence"] == 0.5
               for p in proposals)
    r = api.client.post(f"/api/v1/inbox/{item['id']}/assign", headers=office.mailroom,
                        json={"file_id": second["id"]})
    assert r.status_code == 200, r.text
    docs = api.client.get(f"/api/v1/files/{second['id']}/documents",
                          headers=office.unit.clerk).json()
    assert {d["latest"]["original_name"] for d in docs} == {"Nachricht.txt", "nachricht.eml"}


@pytest.mark.parametrize("name", sorted(corpus.awkward()))
def test_awkward_mime_never_crashes_the_parser(name: str) -> None:
    parsed = mail.unpack(corpus.awkward()[name])
    assert parsed.subject
    assert all(part.data for part in parsed.parts)


def test_awkward_shapes_are_read_as_a_person_would() -> None:
    shapes = {name: mail.unpack(raw) for name, raw in corpus.awkward().items()}
    alt = shapes["alternative"]
    assert [(p.role, p.mime_type) for p in alt.parts] == [("body", "text/plain"),
                                                         ("inline", "image/png")]
    assert shapes["encodings"].subject == "Straßenausbau"
    assert shapes["encodings"].parts[0].text == "Straße, Größe, Öffnungszeiten"
    assert shapes["encodings"].parts[1].name == "Listeü.txt"
    assert any("x-klingon-42" in w for w in shapes["unknown_charset"].warnings)
    assert "Grüße" in (shapes["unknown_charset"].parts[0].text or "")
    assert any("Boundary" in w for w in shapes["missing_boundary"].warnings)
    assert "Text ohne Grenze" in shapes["missing_boundary"].text
    assert any("empty attachment leer.pdf" in w for w in shapes["empty_attachment"].warnings)
    nested = shapes["nested"]
    assert "Innerster Text" in nested.text
    assert any(p.name.endswith("daten.bin") for p in nested.parts)
    deep = shapes["deep"]
    assert any("nested deeper" in w for w in deep.warnings)
    assert deep.parts[-1].mime_type == "message/rfc822"
    assert any("multipart nesting" in w for w in shapes["deep_multipart"].warnings)


def test_awkward_mails_are_filed_with_warnings_and_keep_the_original(office: Office) -> None:
    items = {}
    for name, raw in corpus.awkward().items():
        # Each names the file, so each must end filed (with warnings), never crash the worker.
        marked = raw.replace(b"Subject: ", f"Subject: {office.file['reference']} ".encode(), 1)
        items[name] = (submit_eml(office, marked, f"{name}.eml"), marked)

    office.worker().run_until_idle()

    originals = {}
    for d in documents_of(office):
        if d["latest"]["mime_type"] == "message/rfc822" and d["title"].startswith("E-Mail"):
            originals[d["latest"]["original_name"]] = content(office, d)
    for name, (item, raw) in items.items():
        shown = office.item(item["id"])
        assert shown["state"] == "filed", (name, shown)
        assert originals[f"{name}.eml"] == raw
    assert office.item(items["unknown_charset"][0]["id"])["warnings"]
    assert office.item(items["deep"][0]["id"])["warnings"]


def test_html_only_mail_becomes_a_pdf_without_fetching_anything(office: Office) -> None:
    raw = corpus.html_only().replace(b"Subject: ", f"Subject: {office.file['reference']} ".encode())
    item = submit_eml(office, raw)
    office.worker().run_until_idle()
    assert office.item(item["id"])["state"] == "filed"
    body = next(d for d in documents_of(office) if d["id"] == office.item(item["id"])
                ["filed_document_id"])
    assert body["latest"]["mime_type"] == "application/pdf"
    assert content(office, body).startswith(b"%PDF")


def test_a_mail_nested_beyond_the_parser_is_quarantined_with_its_original(
    office: Office,
) -> None:
    raw = corpus.deep_multipart(3000)
    with pytest.raises(mail.MailUnreadable):
        mail.unpack(raw)
    item = submit_eml(office, raw)
    good = submit_eml(office, corpus.simple(office.file["reference"], "Danach geht es weiter."))

    office.worker().run_until_idle()

    shown = office.item(item["id"])
    assert shown["state"] == "quarantined"
    assert "nested too deeply" in shown["quarantine_reason"]
    r = office.api.client.get(f"/api/v1/inbox/{item['id']}/original", headers=office.mailroom)
    assert r.status_code == 200 and r.content == raw
    assert office.item(good["id"])["state"] == "filed"


def test_nul_characters_in_a_mail_are_dropped_before_it_is_stored(office: Office) -> None:
    # NULs hidden where MIME lets any byte through: encoded words in Subject and From, and a
    # base64 body. PostgreSQL refuses a NUL in any text column.
    reference = office.file["reference"]
    body = base64.b64encode(f"Sehr geehrte\x00 Damen und Herren,\nzu {reference}.\n".encode())
    raw = (b"From: =?utf-8?q?Erika=00_Mustermann?= <erika@example.org>\r\n"
           b"To: post@stadt.example\r\n"
           b"Subject: =?utf-8?q?Nachreichung=00?= " + reference.encode() + b"\r\n"
           b"Message-ID: <nul@example.org>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"\r\n")
    item = submit_eml(office, raw)

    office.worker().run_until_idle()

    shown = office.item(item["id"])
    assert shown["state"] == "filed", shown
    assert shown["subject"] == f"Nachreichung {reference}"
    assert shown["sender_name"] == "Erika Mustermann"
    (text,) = [d for d in documents_of(office) if d["id"] == shown["filed_document_id"]]
    assert text["title"] == shown["subject"]
    assert content(office, text) == ("Sehr geehrte\x00 Damen und Herren,\n"
                                     f"zu {reference}.\n").encode()
    hits = office.api.client.get("/api/v1/search", params={"q": "geehrte"},
                                 headers=office.unit.clerk).json()
    assert text["id"] in [h["document_id"] for h in hits]


def test_storable_text_has_no_nul_characters() -> None:
    assert storable("a\x00b\x00") == "ab"
    assert storable_or_none(None) is None
    assert storable_or_none("\x00") == ""

"""Outgoing letters end to end: template, co-signature, SMTP delivery, print batch, replies."""

from __future__ import annotations

import subprocess
import time
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, select

from eakte.db import make_session_factory, unit_of_work
from eakte.documents.models import Document
from eakte.outgoing.delivery import deliver_pending
from eakte.outgoing.service import match_reply
from tests import factories
from tests.conftest import Api
from tests.eakte.outgoing.conftest import SmtpServer

TEMPLATE = """
<p>Sehr geehrte Damen und Herren,</p>
<p>Ihr Antrag vom {{ fields.antrag_vom }} ist eingegangen. Gebühr: {{ fields.gebuehr }} EUR.</p>
<p>Mit freundlichen Grüßen<br>{{ sender.clerk }}</p>
"""
ADDRESS = "Musterweg 7\n25421 Pinneberg"


def _setup(api: Api) -> dict[str, Any]:
    unit = factories.org_unit(api)
    plan = factories.plan_item(api)
    file = factories.file(api, unit, plan["code"])
    author = api.auth(["clerk"], [unit.code], sub=factories.unique("anna"))
    cosigner_sub = factories.unique("ben")
    cosigner = api.auth(["clerk"], [unit.code], sub=cosigner_sub)
    for headers in (author, cosigner):  # entering the directory of known principals
        assert api.client.get("/api/v1/worklist", headers=headers).status_code == 200
    name = factories.unique("bescheid")
    r = api.client.post(
        "/api/v1/letter-templates",
        json={"name": name, "body_html": TEMPLATE},
        headers=api.auth(["admin"], []),
    )
    assert r.status_code == 201, r.text
    return {
        "unit": unit,
        "file": file,
        "author": author,
        "cosigner": cosigner,
        "cosigner_sub": cosigner_sub,
        "template": name,
    }


def _letter(api: Api, ctx: dict[str, Any], **overrides: Any) -> Any:
    body: dict[str, Any] = {
        "subject": "Eingangsbestätigung Bauantrag",
        "recipient": {"name": "Erika Mustermann", "address": ADDRESS, "email": "erika@example.org"},
        "channel": "email",
        "template": ctx["template"],
        "fields": {"antrag_vom": "01.11.2026", "gebuehr": "42,00"},
    }
    body.update(overrides)
    return api.client.post(
        f"/api/v1/files/{ctx['file']['id']}/letters", json=body, headers=ctx["author"]
    )


def _deliver(api: Api) -> Any:
    return deliver_pending(make_session_factory(api.engine), api.store, api.settings)


def _pdf_text(pdf: bytes) -> str:
    result = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, timeout=60, check=True
    )
    return result.stdout.decode()


def _approved(api: Api, ctx: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    r = _letter(api, ctx, **overrides)
    assert r.status_code == 201, r.text
    letter = r.json()
    r = api.client.post(f"/api/v1/letters/{letter['id']}/approve", headers=ctx["author"])
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_clerk_drafts_cosigns_sends_and_finds_a_letter(
    outgoing_api: Api, smtp_server: SmtpServer
) -> None:
    api = outgoing_api
    ctx = _setup(api)
    r = _letter(api, ctx, cosigner=ctx["cosigner_sub"])
    assert r.status_code == 201, r.text
    letter = r.json()
    assert letter["state"] == "draft"
    lid = letter["id"]

    # Not approved yet: refused, nothing queued.
    r = api.client.post(f"/api/v1/letters/{lid}/send", headers=ctx["author"])
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert "approved" in r.json()["detail"]

    assert api.client.post(f"/api/v1/letters/{lid}/approve", headers=ctx["author"]).is_success
    r = api.client.post(f"/api/v1/letters/{lid}/send", headers=ctx["author"])
    assert r.status_code == 409 and "co-signature" in r.json()["detail"]

    items = api.client.get("/api/v1/worklist", headers=ctx["cosigner"]).json()
    cosign_items = [i for i in items if i["purpose"] == "cosign" and i["object_id"] == lid]
    assert len(cosign_items) == 1
    assert cosign_items[0]["file_reference"] == ctx["file"]["reference"]
    # Only the named co-signer may co-sign.
    assert (
        api.client.post(f"/api/v1/letters/{lid}/cosign", headers=ctx["author"]).status_code == 403
    )
    r = api.client.post(f"/api/v1/letters/{lid}/cosign", headers=ctx["cosigner"])
    assert r.status_code == 200 and r.json()["cosigned_by"] == ctx["cosigner_sub"]
    items = api.client.get("/api/v1/worklist", headers=ctx["cosigner"]).json()
    assert not [i for i in items if i["object_id"] == lid]

    # An approved letter is frozen: no new version by upload.
    r = api.client.post(
        f"/api/v1/documents/{letter['document_id']}/versions",
        files={"file": ("x.pdf", b"%PDF-1.4 changed", "application/pdf")},
        headers=ctx["author"],
    )
    assert r.status_code == 409

    r = api.client.post(f"/api/v1/letters/{lid}/send", headers=ctx["author"])
    assert r.status_code == 200, r.text
    message_id = r.json()["message_id"]
    assert r.json()["state"] == "queued" and message_id

    report = _deliver(api)
    assert [str(x) for x in report.sent] == [lid]
    assert len(smtp_server.mailbox.messages) == 1
    msg: EmailMessage = smtp_server.mailbox.messages[0]
    assert msg["Message-ID"].strip() == message_id
    assert ctx["file"]["reference"] in msg["Subject"]
    assert msg["To"].addresses[0].addr_spec == "erika@example.org"
    (attachment,) = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    text = _pdf_text(attachment.get_content())
    assert ctx["file"]["reference"] in text
    assert "Erika Mustermann" in text and "Musterweg 7" in text and "25421 Pinneberg" in text
    sent = api.client.get(f"/api/v1/letters/{lid}", headers=ctx["author"]).json()
    assert sent["state"] == "sent" and sent["sent_at"]
    date = sent["letter_date"][:10]
    assert f"{date[8:10]}.{date[5:7]}.{date[0:4]}" in text
    assert "42,00" in text

    # Found again in the file; the sent .eml is kept as a version, the PDF stays frozen.
    found = api.client.get(f"/api/v1/files/{ctx['file']['id']}/letters", headers=ctx["author"])
    assert [x["id"] for x in found.json()] == [lid]
    assert sent["eml_version"] == 2 and sent["approved_version"] == 1
    eml = api.client.get(
        f"/api/v1/documents/{letter['document_id']}/versions/2/content", headers=ctx["author"]
    )
    assert eml.status_code == 200 and message_id.encode() in eml.content
    events = api.client.get(
        "/api/v1/audit",
        params={"object_id": letter["document_id"], "action": "letter.sent"},
        headers=api.auth(["admin"], []),
    ).json()
    assert len(events) == 1
    assert events[0]["details"]["message_id"] == message_id
    assert events[0]["details"]["recipient"] == "erika@example.org"

    # Sending again is refused; a second delivery pass sends nothing.
    assert api.client.post(f"/api/v1/letters/{lid}/send", headers=ctx["author"]).status_code == 409
    _deliver(api)
    assert len(smtp_server.mailbox.messages) == 1

    # Replies find their file by Message-ID or by the reference in the subject.
    with unit_of_work(make_session_factory(api.engine)) as session:
        match = match_reply(session, ["<unrelated@x>", message_id], "Re: Ihr Schreiben")
        assert match is not None and str(match[0].id) == ctx["file"]["id"]
        match = match_reply(session, [], f"AW: Antrag Az. {ctx['file']['reference']} bitte")
        assert match is not None and str(match[0].id) == ctx["file"]["id"]
        assert match_reply(session, ["<nobody@x>"], "Hallo 99.99-1999/9999") is None


def test_smtp_down_then_back_sends_the_letter_exactly_once(
    outgoing_api: Api, smtp_server: SmtpServer
) -> None:
    api = outgoing_api
    ctx = _setup(api)
    letter = _approved(api, ctx)
    smtp_server.stop()
    assert api.client.post(f"/api/v1/letters/{letter['id']}/send", headers=ctx["author"]).is_success
    report = _deliver(api)
    assert [str(x) for x in report.retried] == [letter["id"]]
    state = api.client.get(f"/api/v1/letters/{letter['id']}", headers=ctx["author"]).json()
    assert state["state"] == "queued" and state["attempts"] == 1 and state["last_error"]
    # Not due yet: the backoff holds it back even though the server is back.
    smtp_server.start()
    assert not _deliver(api).sent
    time.sleep(1.2)
    report = _deliver(api)
    assert [str(x) for x in report.sent] == [letter["id"]]
    time.sleep(1.2)
    _deliver(api)
    received = [
        m for m in smtp_server.mailbox.messages if m["Message-ID"].strip() == state["message_id"]
    ]
    assert len(received) == 1
    final = api.client.get(f"/api/v1/letters/{letter['id']}", headers=ctx["author"]).json()
    assert final["state"] == "sent" and final["attempts"] == 2


def test_smtp_permanent_refusal_marks_the_letter_failed_with_the_reason(
    outgoing_api: Api, smtp_server: SmtpServer
) -> None:
    api = outgoing_api
    ctx = _setup(api)
    letter = _approved(api, ctx)
    smtp_server.mailbox.refuse_rcpt = "550 5.1.1 mailbox unavailable"
    assert api.client.post(f"/api/v1/letters/{letter['id']}/send", headers=ctx["author"]).is_success
    report = _deliver(api)
    assert [str(x) for x in report.failed] == [letter["id"]]
    final = api.client.get(f"/api/v1/letters/{letter['id']}", headers=ctx["author"]).json()
    assert final["state"] == "failed"
    assert "550" in final["failure_reason"] and "mailbox unavailable" in final["failure_reason"]
    assert final["eml_version"] is None
    smtp_server.mailbox.refuse_rcpt = None
    time.sleep(1.1)
    _deliver(api)
    assert smtp_server.mailbox.messages == []


def _document_count(api: Api) -> int:
    with unit_of_work(make_session_factory(api.engine)) as session:
        return int(session.scalar(select(func.count()).select_from(Document)) or 0)


def test_bad_input_gets_a_problem_and_changes_nothing(outgoing_api: Api) -> None:
    api = outgoing_api
    ctx = _setup(api)
    admin = api.auth(["admin"], [])
    before = _document_count(api)

    r = api.client.post(
        "/api/v1/letter-templates",
        json={"name": factories.unique("kaputt"), "body_html": "<p>{% if %}</p>"},
        headers=admin,
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "does not render" in r.json()["detail"]

    # A placeholder the letter does not fill: the template fails at rendering.
    r = _letter(api, ctx, fields={"antrag_vom": "01.11.2026"})
    assert r.status_code == 422 and "gebuehr" in r.json()["detail"]

    r = _letter(
        api, ctx, recipient={"name": "Erika", "address": ADDRESS, "email": "erika@@example"}
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert any("email" in str(e["loc"]) for e in r.json()["errors"])

    r = _letter(api, ctx, cosigner="nobody-of-that-name")
    assert r.status_code == 422 and "unknown principal" in r.json()["detail"]

    # Line breaks in what goes into e-mail headers.
    r = _letter(api, ctx, subject="Bescheid\r\nBcc: spy@evil.example")
    assert r.status_code == 422 and ["body", "subject"] in [e["loc"] for e in r.json()["errors"]]
    r = _letter(api, ctx, recipient={"name": "Erika\nMustermann", "address": ADDRESS})
    assert r.status_code == 422

    # A template that divides by a field: the field's value makes it fail, not the server.
    dividing = factories.unique("teilen")
    r = api.client.post(
        "/api/v1/letter-templates",
        json={"name": dividing, "body_html": "<p>{{ 10 // (fields.n|int) }}</p>"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = _letter(api, ctx, template=dividing, fields={"n": "0"})
    assert r.status_code == 422 and "does not render" in r.json()["detail"]

    # A template that would make the server fetch something: refused, nothing rendered.
    fetching = factories.unique("fetch")
    r = api.client.post(
        "/api/v1/letter-templates",
        json={"name": fetching, "body_html": '<p><img src="http://127.0.0.1:9/logo.png"></p>'},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = _letter(api, ctx, template=fetching)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "external resources" in r.json()["detail"]

    # Clerks do not manage templates.
    r = api.client.post(
        "/api/v1/letter-templates",
        json={"name": factories.unique("t"), "body_html": "<p>x</p>"},
        headers=ctx["author"],
    )
    assert r.status_code == 403
    assert _document_count(api) == before
    letters = api.client.get(f"/api/v1/files/{ctx['file']['id']}/letters", headers=ctx["author"])
    assert letters.json() == []


def test_mailroom_prints_a_batch_and_marks_it_posted(outgoing_api: Api) -> None:
    api = outgoing_api
    ctx = _setup(api)
    mailroom = api.auth(["mailroom"], [])
    letter = _approved(
        api, ctx, channel="post", recipient={"name": "Max Muster", "address": ADDRESS}
    )
    r = api.client.post(f"/api/v1/letters/{letter['id']}/send", headers=ctx["author"])
    assert r.status_code == 200 and r.json()["state"] == "queued"
    assert api.client.post("/api/v1/print-batches", headers=ctx["author"]).status_code == 403
    r = api.client.post("/api/v1/print-batches", headers=mailroom)
    assert r.status_code == 201, r.text
    batch = r.json()
    assert letter["id"] in batch["letter_ids"]
    pdf = api.client.get(f"/api/v1/print-batches/{batch['id']}/pdf", headers=mailroom)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = _pdf_text(pdf.content)
    assert ctx["file"]["reference"] in text and "Max Muster" in text
    r = api.client.post(f"/api/v1/print-batches/{batch['id']}/posted", headers=mailroom)
    assert r.status_code == 200 and r.json()["posted_by"]
    final = api.client.get(f"/api/v1/letters/{letter['id']}", headers=ctx["author"]).json()
    assert final["state"] == "sent" and final["print_batch_id"] == batch["id"]
    again = api.client.post(f"/api/v1/print-batches/{batch['id']}/posted", headers=mailroom)
    assert again.status_code == 409


def test_a_file_closes_once_its_e_mail_letters_are_on_their_way(
    outgoing_api: Api, smtp_server: SmtpServer
) -> None:
    api = outgoing_api
    ctx = _setup(api)
    letter = _approved(api, ctx)
    assert api.client.post(f"/api/v1/letters/{letter['id']}/send", headers=ctx["author"]).is_success
    close = f"/api/v1/retention/files/{ctx['file']['id']}/close"
    r = api.client.post(close, headers=ctx["author"])
    assert r.status_code == 409 and "still being sent" in r.json()["detail"]
    assert [str(x) for x in _deliver(api).sent] == [letter["id"]]
    r = api.client.post(close, headers=ctx["author"])
    assert r.status_code == 200, r.text
    # The sent message joined the file before closure, so closure locked it with the rest.
    sent = api.client.get(f"/api/v1/letters/{letter['id']}", headers=ctx["author"]).json()
    versions = api.client.get(
        f"/api/v1/documents/{letter['document_id']}/versions", headers=ctx["author"]
    ).json()
    assert [v["number"] for v in versions] == [1, sent["eml_version"]]


def test_the_author_never_co_signs_and_a_replaced_co_signer_is_no_longer_asked(
    outgoing_api: Api,
) -> None:
    api = outgoing_api
    ctx = _setup(api)
    author_sub = api.client.get("/api/v1/me", headers=ctx["author"]).json()["subject"]
    letter = _approved(api, ctx, cosigner=ctx["cosigner_sub"])
    lid = letter["id"]
    # The colleague names the author as co-signer: refused, whoever asks.
    r = api.client.post(f"/api/v1/letters/{lid}/cosign-request", json={"cosigner": author_sub},
                        headers=ctx["cosigner"])  # fmt: skip
    assert r.status_code == 422 and "not the author" in r.json()["detail"]

    third_sub = factories.unique("cem")
    third = api.auth(["clerk"], [ctx["unit"].code], sub=third_sub)
    assert api.client.get("/api/v1/worklist", headers=third).status_code == 200
    r = api.client.post(f"/api/v1/letters/{lid}/cosign-request", json={"cosigner": third_sub},
                        headers=ctx["author"])  # fmt: skip
    assert r.status_code == 200, r.text

    def asked(headers: dict[str, str]) -> bool:
        items = api.client.get("/api/v1/worklist", headers=headers).json()
        return any(i["purpose"] == "cosign" and i["object_id"] == lid for i in items)

    assert asked(third) and not asked(ctx["cosigner"])
    r = api.client.post(f"/api/v1/letters/{lid}/cosign", headers=ctx["cosigner"])
    assert r.status_code == 403
    r = api.client.post(f"/api/v1/letters/{lid}/cosign", headers=third)
    assert r.status_code == 200 and r.json()["cosigned_by"] == third_sub


def test_only_pdf_content_is_approved_and_printed(outgoing_api: Api) -> None:
    api = outgoing_api
    ctx = _setup(api)
    r = _letter(api, ctx, channel="post")
    assert r.status_code == 201, r.text
    letter = r.json()
    r = api.client.post(
        f"/api/v1/documents/{letter['document_id']}/versions",
        files={"file": ("brief.txt", b"Sehr geehrte Frau Mustermann,", "text/plain")},
        headers=ctx["author"],
    )
    assert r.status_code == 201, r.text
    r = api.client.post(f"/api/v1/letters/{letter['id']}/approve", headers=ctx["author"])
    assert r.status_code == 409 and "not a PDF" in r.json()["detail"]


def test_a_recipient_name_cannot_add_recipients(
    outgoing_api: Api, smtp_server: SmtpServer
) -> None:
    api = outgoing_api
    ctx = _setup(api)
    name = 'Erika" <spy@evil.example>, "x'
    letter = _approved(api, ctx, recipient={"name": name, "address": ADDRESS,
                                            "email": "erika@example.org"})  # fmt: skip
    assert api.client.post(f"/api/v1/letters/{letter['id']}/send", headers=ctx["author"]).is_success
    assert [str(x) for x in _deliver(api).sent] == [letter["id"]]
    (msg,) = smtp_server.mailbox.messages
    assert [a.addr_spec for a in msg["To"].addresses] == ["erika@example.org"]
    assert msg["To"].addresses[0].display_name == name
    assert smtp_server.mailbox.recipients == [["erika@example.org"]]

"""A citizen's reply to a sent letter lands in the letter's file and process by itself."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from fastapi.testclient import TestClient

from eakte.app import create_app
from eakte.db import make_engine, make_session_factory
from eakte.settings import ImapMailbox
from inbox.imap import ImapSource
from inbox.pipeline import Worker
from tests import factories
from tests.conftest import Api, make_settings
from tests.eakte.outgoing.conftest import SmtpServer
from tests.eakte.outgoing.test_letters import TEMPLATE, _deliver
from tests.inbox.dovecot import Dovecot, start_dovecot
from tests.support.db import fresh_pg_database


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    yield from start_dovecot()


@pytest.fixture
def reply_api(pg_server: str, s3_store: object, smtp_server: SmtpServer) -> Iterator[Api]:
    """The app on a PostgreSQL database of its own (a worker takes every waiting item)."""
    with fresh_pg_database(pg_server) as url:
        settings = make_settings(url, smtp_host="127.0.0.1", smtp_port=smtp_server.port,
                                 smtp_security="none", smtp_timeout_seconds=5,
                                 smtp_from="Stadt Musterstadt <post@musterstadt.example>",
                                 outgoing_deliver_on_commit=False)
        engine = make_engine(url)
        app = create_app(settings, engine=engine, store=s3_store)  # type: ignore[arg-type]
        try:
            with TestClient(app, raise_server_exceptions=False) as client:
                yield Api(client, settings, engine, s3_store)  # type: ignore[arg-type]
        finally:
            engine.dispose()


def _reply(to_message_id: str, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Erika Mustermann <erika@example.org>"
    msg["To"] = "post@musterstadt.example"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    if to_message_id:
        msg["In-Reply-To"] = to_message_id
        msg["References"] = f"<older@example.org> {to_message_id}"
    msg.set_content(body)
    return msg.as_bytes()


def test_reply_naming_the_sent_message_id_is_filed_into_the_letters_process(
    reply_api: Api, smtp_server: SmtpServer, dovecot: Dovecot
) -> None:
    api = reply_api
    unit = factories.org_unit(api)
    file = factories.file(api, unit, factories.plan_item(api)["code"])
    clerk = api.auth(["clerk"], [unit.code], sub=factories.unique("anna"))
    process = api.client.post(f"/api/v1/files/{file['id']}/processes",
                              json={"title": "Anhörung"}, headers=clerk).json()
    template = factories.unique("bescheid")
    assert api.client.post("/api/v1/letter-templates",
                           json={"name": template, "body_html": TEMPLATE},
                           headers=api.auth(["admin"], [])).status_code == 201
    r = api.client.post(f"/api/v1/files/{file['id']}/letters", headers=clerk, json={
        "subject": "Anhörung zum Bauantrag", "channel": "email", "template": template,
        "process_id": process["id"],
        "recipient": {"name": "Erika Mustermann", "address": "Musterweg 1\n12345 Musterstadt",
                      "email": "erika@example.org"},
        "fields": {"antrag_vom": "01.11.2026", "gebuehr": "42,00"},
    })
    assert r.status_code == 201, r.text
    letter = r.json()
    assert api.client.post(f"/api/v1/letters/{letter['id']}/approve", headers=clerk).is_success
    assert api.client.post(f"/api/v1/letters/{letter['id']}/send", headers=clerk).is_success
    _deliver(api)
    sent_id = smtp_server.mailbox.messages[0]["Message-ID"]

    folder = f"R{uuid.uuid4().hex[:10]}"
    dovecot.create_folder(folder)
    # No reference in the subject: only the Message-ID ties the reply to the letter.
    dovecot.append(_reply(sent_id, "Re: Ihr Schreiben", "Ich nehme wie folgt Stellung."), folder)
    mailbox = ImapMailbox.model_validate_json(json.dumps({
        "host": "127.0.0.1", "port": dovecot.port, "security": "none",
        "username": dovecot.user, "password": dovecot.password, "folder": folder}))
    factory = make_session_factory(api.engine)
    assert ImapSource(mailbox, factory, api.store, api.settings).poll() == 1
    Worker(factory, api.store, api.settings).run_until_idle()

    mailroom = api.auth(["mailroom"], [unit.code])
    (item,) = [i for i in api.client.get("/api/v1/inbox", headers=mailroom).json()
               if i["source"] == "email"]
    assert item["state"] == "filed", item
    assert item["classification"]["method"] == "reply"
    docs = api.client.get(f"/api/v1/files/{file['id']}/documents", headers=clerk).json()
    filed = [d for d in docs if d["source"] == "email"]
    assert filed and all(d["process_id"] == process["id"] for d in filed)

"""Fixtures of the outgoing-post tests: the app with SMTP settings and a real SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient

from eakte.app import create_app
from eakte.db import make_engine
from tests.conftest import Api, make_settings
from tests.support.server import free_port


@dataclass
class Mailbox:
    """What the SMTP server received, and how it answers."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)  # each message's envelope
    refuse_rcpt: str | None = None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        self.recipients.append(list(envelope.rcpt_tos))
        self.messages.append(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
        return "250 2.0.0 queued"


class SmtpServer:
    """An aiosmtpd server on a loopback port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mailbox = Mailbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen on the port."""
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening (connections are refused afterwards)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, started for the test."""
    asyncio.set_event_loop_policy(None)
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["pg-s3", "sqlite-fs"])
def outgoing_api(
    request: pytest.FixtureRequest, tmp_path: Path, smtp_server: SmtpServer
) -> Iterator[Api]:
    """The app on both database/store pairs, sending to the test's SMTP server.

    Delivery after commit is off, so each test drives the delivery job itself.
    """
    if request.param == "pg-s3":
        url = str(request.getfixturevalue("pg_url"))
        store = request.getfixturevalue("s3_store")
    else:
        url = str(request.getfixturevalue("sqlite_url"))
        store = request.getfixturevalue("fs_store")
    settings = make_settings(
        url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_security="none",
        smtp_timeout_seconds=5,
        smtp_retry_base_seconds=1,
        smtp_from="Stadt Musterstadt <post@musterstadt.example>",
        outgoing_deliver_on_commit=False,
    )
    engine = make_engine(url)
    app = create_app(settings, engine=engine, store=store)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(client, settings, engine, store)
    finally:
        engine.dispose()

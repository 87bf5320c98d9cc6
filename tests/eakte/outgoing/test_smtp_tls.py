"""SMTP submission over TLS against a real aiosmtpd: STARTTLS, implicit TLS, untrusted certs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from eakte.outgoing.smtp import Outcome, send
from eakte.settings import Settings
from tests.conftest import make_settings
from tests.eakte.outgoing.conftest import Mailbox
from tests.support import tls
from tests.support.server import free_port

USER, PASSWORD = "post", "geheim"

# The implicit-TLS server must not demand STARTTLS before AUTH, and aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode()
    )
    return AuthResult(success=ok)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tls.ServerCertificate:
    return tls.issue(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def server(request: pytest.FixtureRequest, certificate: tls.ServerCertificate) -> Iterator[
    tuple[int, Mailbox]
]:
    """An SMTP server that takes mail only over TLS and only after a login.

    STARTTLS: plain connection, upgraded before anything else is accepted; TLS: TLS from
    the first byte (port 465 style).
    """
    asyncio.set_event_loop_policy(None)
    mailbox, port = Mailbox(), free_port()
    kwargs: dict[str, Any] = {"authenticator": _authenticate, "auth_required": True}
    if request.param == "starttls":
        kwargs.update(tls_context=certificate.server_context(), require_starttls=True)
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS throughout.
        kwargs.update(ssl_context=certificate.server_context(), auth_require_tls=False)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


def _settings(port: int, security: str, ca_file: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": security,
        "smtp_ca_file": ca_file, "smtp_username": USER, "smtp_password": PASSWORD,
        "smtp_timeout_seconds": 5,
    }  # fmt: skip
    return make_settings("sqlite://", **{**values, **extra})


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Stadt Musterstadt <post@musterstadt.example>"
    message["To"] = "buerger@example.org"
    message["Subject"] = "Ihr Antrag"
    message.set_content("Guten Tag,\n\nIhr Antrag ist eingegangen.\n")
    return message


@pytest.mark.parametrize("server", ["starttls", "tls"], indirect=True)
def test_a_letter_goes_out_encrypted_with_login(
    server: tuple[int, Mailbox], certificate: tls.ServerCertificate, request: pytest.FixtureRequest
) -> None:
    port, mailbox = server
    security = request.node.callspec.params["server"]

    result = send(_settings(port, security, certificate.ca_file), _message())

    assert result.outcome is Outcome.ACCEPTED, result.detail
    assert [m["Subject"] for m in mailbox.messages] == ["Ihr Antrag"]


@pytest.mark.parametrize("server", ["starttls", "tls"], indirect=True)
def test_a_server_certificate_from_another_ca_is_refused(
    server: tuple[int, Mailbox], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    port, mailbox = server
    security = request.node.callspec.params["server"]
    stranger = tls.issue(tmp_path, ca_name="some other CA")

    result = send(_settings(port, security, stranger.ca_file), _message())

    # Not sent, and retried later: the certificate may be fixed, the letter must not go
    # out to a server we cannot trust.
    assert result.outcome is Outcome.TRANSIENT
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert mailbox.messages == []


@pytest.mark.parametrize("server", ["starttls"], indirect=True)
def test_without_starttls_the_server_takes_nothing(
    server: tuple[int, Mailbox], certificate: tls.ServerCertificate
) -> None:
    # The negative control of the STARTTLS test: this server really insists on TLS.
    port, mailbox = server

    result = send(
        _settings(port, "none", certificate.ca_file, smtp_username=None), _message()
    )

    assert result.outcome is Outcome.PERMANENT
    assert result.detail.startswith("530")
    assert mailbox.messages == []

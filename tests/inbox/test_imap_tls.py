"""The IMAP source over TLS against a real Dovecot that takes logins only over TLS."""

from __future__ import annotations

import imaplib
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eakte.db import make_session_factory
from eakte.settings import ImapMailbox
from inbox.imap import TAKEN_KEYWORD, ImapSource
from tests.inbox import corpus
from tests.inbox.conftest import Office
from tests.inbox.dovecot import Dovecot, start_dovecot
from tests.support import tls


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tls.ServerCertificate:
    return tls.issue(tmp_path_factory.mktemp("imap-tls"))


@pytest.fixture(scope="module")
def dovecot(certificate: tls.ServerCertificate) -> Iterator[Dovecot]:
    yield from start_dovecot(tls=certificate)


def _mail_in_new_folder(dovecot: Dovecot) -> str:
    folder = f"T{uuid.uuid4().hex[:10]}"
    dovecot.create_folder(folder)
    dovecot.append(corpus.simple("Verschlüsselt abgeholt", "Anbei der Antrag."), folder)
    return folder


def _source(office: Office, dovecot: Dovecot, folder: str, security: str,
            ca_file: Path) -> ImapSource:
    port = dovecot.tls_port if security == "tls" else dovecot.port
    mailbox = ImapMailbox(host=dovecot.host, port=port, security=security,  # type: ignore[arg-type]
                          username=dovecot.user, password=dovecot.password,  # type: ignore[arg-type]
                          folder=folder, ca_file=ca_file)
    return ImapSource(mailbox, make_session_factory(office.api.engine), office.api.store,
                      office.api.settings)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_mails_are_taken_over_tls(
    office: Office, dovecot: Dovecot, certificate: tls.ServerCertificate, security: str
) -> None:
    folder = _mail_in_new_folder(dovecot)

    assert _source(office, dovecot, folder, security, certificate.ca_file).poll() == 1

    assert len(office.imap_items(folder)) == 1
    assert all(TAKEN_KEYWORD in f for f in dovecot.flags(folder).values())


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_a_server_certificate_from_another_ca_is_refused(
    office: Office, dovecot: Dovecot, tmp_path: Path, security: str
) -> None:
    folder = _mail_in_new_folder(dovecot)
    stranger = tls.issue(tmp_path, ca_name="some other CA")

    with pytest.raises(ssl.SSLCertVerificationError):
        _source(office, dovecot, folder, security, stranger.ca_file).poll()

    assert office.imap_items(folder) == []
    assert all(TAKEN_KEYWORD not in f for f in dovecot.flags(folder).values())


def test_this_server_refuses_a_login_without_tls(
    office: Office, dovecot: Dovecot, certificate: tls.ServerCertificate
) -> None:
    # The negative control of the STARTTLS case: the login there really went encrypted.
    folder = _mail_in_new_folder(dovecot)

    with pytest.raises(imaplib.IMAP4.error):
        _source(office, dovecot, folder, "none", certificate.ca_file).poll()

    assert office.imap_items(folder) == []

"""The IMAP source against a real Dovecot: mails are taken once, flagged only after storing."""

from __future__ import annotations

import imaplib
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.settings import ImapMailbox, Settings
from inbox import runner
from inbox.imap import TAKEN_KEYWORD, ImapSource
from inbox.models import InboundItem, MailReceipt
from storage import FilesystemStore
from tests.inbox import corpus
from tests.inbox.conftest import Office
from tests.inbox.dovecot import Dovecot, start_dovecot
from tests.support.server import clean_env


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    yield from start_dovecot()


def _folder(dovecot: Dovecot) -> str:
    # One folder per test: the server is shared by the module, the receipts are per folder.
    name = f"T{uuid.uuid4().hex[:10]}"
    dovecot.create_folder(name)
    return name


def _mailbox_json(dovecot: Dovecot, folder: str, **extra: object) -> str:
    return json.dumps({"host": "127.0.0.1", "port": dovecot.port, "security": "none",
                       "username": dovecot.user, "password": dovecot.password,
                       "folder": folder, **extra})


def _mailbox(dovecot: Dovecot, folder: str, **extra: object) -> ImapMailbox:
    return ImapMailbox.model_validate_json(_mailbox_json(dovecot, folder, **extra))


def _source(office: Office, mailbox: ImapMailbox) -> ImapSource:
    return ImapSource(mailbox, make_session_factory(office.api.engine), office.api.store,
                      office.api.settings)


def test_appended_mails_are_taken_once_flagged_and_filed(
    office: Office, dovecot: Dovecot
) -> None:
    folder = _folder(dovecot)
    reference = office.file["reference"]
    dovecot.append(corpus.simple(f"Az. {reference}", "Anbei die Unterlagen.",
                                 attachments=[("liste.txt", "text/plain", b"1, 2, 3")]), folder)
    dovecot.append(corpus.simple("Ohne Zeichen", "Bitte zuordnen."), folder)
    source = _source(office, _mailbox(dovecot, folder))

    assert source.poll() == 2
    flags = dovecot.flags(folder)
    assert len(flags) == 2
    assert all(TAKEN_KEYWORD in f and "\\Seen" in f for f in flags.values()), flags
    assert source.poll() == 0

    items = office.imap_items(folder)
    assert len(items) == 2 and {i.source for i in items} == {"email"}
    office.worker().run_until_idle()
    states = sorted(office.item(str(i.id))["state"] for i in items)
    assert states == ["filed", "triage"]
    docs = office.api.client.get(f"/api/v1/files/{office.file['id']}/documents",
                                 headers=office.unit.clerk).json()
    assert {d["latest"]["original_name"] for d in docs} >= {"Nachricht.txt", "liste.txt"}


def test_a_copy_with_the_same_message_id_is_not_imported_again(
    office: Office, dovecot: Dovecot
) -> None:
    folder = _folder(dovecot)
    raw = corpus.simple("Doppelt", "Zweimal zugestellt.",
                        message_id=f"<{uuid.uuid4().hex}@example.org>")
    dovecot.append(raw, folder)
    source = _source(office, _mailbox(dovecot, folder))
    assert source.poll() == 1
    dovecot.append(raw, folder)
    assert source.poll() == 0
    assert len(office.imap_items(folder)) == 1
    assert all(TAKEN_KEYWORD in f for f in dovecot.flags(folder).values())


def test_taken_mails_can_be_moved_instead_of_flagged(office: Office, dovecot: Dovecot) -> None:
    folder, archive = _folder(dovecot), _folder(dovecot)
    dovecot.append(corpus.simple("Verschieben", "Text"), folder)
    source = _source(office, _mailbox(dovecot, folder, move_to=archive))
    assert source.poll() == 1
    assert dovecot.flags(folder) == {}
    assert len(dovecot.flags(archive)) == 1
    assert source.poll() == 0


def test_a_wrong_password_stores_nothing(office: Office, dovecot: Dovecot) -> None:
    folder = _folder(dovecot)
    dovecot.append(corpus.simple("Geheim", "Text"), folder)
    mailbox = _mailbox(dovecot, folder).model_copy(update={"password": SecretStr("falsch")})
    with pytest.raises(imaplib.IMAP4.error):
        _source(office, mailbox).poll()
    assert office.imap_items(folder) == []
    assert all(TAKEN_KEYWORD not in f for f in dovecot.flags(folder).values())


def test_mailboxes_come_from_the_settings(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EAKTE_IMAP_MAILBOXES", f"[{_mailbox_json(dovecot, 'INBOX')}]")
    settings = Settings()
    store = FilesystemStore(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    found = runner.sources(make_session_factory(engine), store, settings)
    engine.dispose()
    assert [type(s).__name__ for s in found] == ["ImapSource"]
    assert settings.imap_mailboxes[0].port == dovecot.port
    assert dovecot.password not in repr(settings.imap_mailboxes[0])


KILLER = textwrap.dedent("""
    import os, signal, sys
    from eakte.db import make_engine, make_session_factory
    from eakte.settings import ImapMailbox, Settings
    from inbox.imap import ImapSource
    from storage import store_from_url

    class DiesBeforeFlagging(ImapSource):
        def let_go(self, conn, uid):
            # The worker dies after the item and .eml are stored, before the mail is flagged.
            os.kill(os.getpid(), signal.SIGKILL)

    db_url, storage_url, mailbox = sys.argv[1:4]
    settings = Settings()
    source = DiesBeforeFlagging(ImapMailbox.model_validate_json(mailbox),
                                make_session_factory(make_engine(db_url)),
                                store_from_url(storage_url), settings)
    source.poll()
""")


def test_killed_between_store_and_flag_the_mail_is_not_imported_twice(
    pg_url: str, dovecot: Dovecot, tmp_path: Path
) -> None:
    folder = _folder(dovecot)
    dovecot.append(corpus.simple("Absturz", "Einmal bitte."), folder)
    mailbox = _mailbox(dovecot, folder)
    store_dir = tmp_path / "blobs"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run(
        [sys.executable, str(script), pg_url, f"file://{store_dir}",
         _mailbox_json(dovecot, folder)],
        env=clean_env(), capture_output=True, timeout=60, cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == -9, proc.stderr.decode()
    assert all(TAKEN_KEYWORD not in f for f in dovecot.flags(folder).values())

    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    try:
        source = ImapSource(mailbox, factory, FilesystemStore(store_dir), Settings())
        assert source.poll() == 0  # recognised by its receipt: only flagged now
        assert all(TAKEN_KEYWORD in f for f in dovecot.flags(folder).values())
        with unit_of_work(factory) as session:
            items = session.scalar(select(func.count()).select_from(InboundItem).where(
                InboundItem.source_ref.like(f"imap:%/{folder}:%")))
            receipts = session.scalar(select(func.count()).select_from(MailReceipt).where(
                MailReceipt.mailbox == mailbox.label))
        assert (items, receipts) == (1, 1)
    finally:
        engine.dispose()

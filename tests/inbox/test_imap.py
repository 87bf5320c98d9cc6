"""The IMAP source against a real Dovecot: mails are taken once, flagged only after storing."""

from __future__ import annotations

import base64
import imaplib
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, make_url, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.settings import ImapMailbox, Settings
from inbox import runner
from inbox.imap import TAKEN_KEYWORD, ImapSource
from inbox.models import InboundItem, MailReceipt
from storage import FilesystemStore
from tests.inbox import corpus
from tests.inbox.conftest import Office, wait_for_lock_wait
from tests.inbox.dovecot import Dovecot, start_dovecot
from tests.support.db import fresh_pg_database
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


def _count(factory: sessionmaker[Session], label: str) -> tuple[int, int]:
    """Items and receipts recorded for a mailbox."""
    with unit_of_work(factory) as session:
        items = session.scalar(select(func.count()).select_from(InboundItem).where(
            InboundItem.source_ref.like(f"imap:{label}:%")))
        receipts = session.scalar(select(func.count()).select_from(MailReceipt).where(
            MailReceipt.mailbox == label))
    return items or 0, receipts or 0


def _mail(subject: str, message_id_header: str) -> bytes:
    return (f"From: Erika Mustermann <erika@example.org>\r\nTo: post@stadt.example\r\n"
            f"Subject: {subject}\r\nMessage-ID: {message_id_header}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nText.\r\n").encode()


def test_a_message_id_with_a_nul_byte_is_taken_without_it(
    office: Office, dovecot: Dovecot
) -> None:
    folder = _folder(dovecot)
    token = uuid.uuid4().hex
    # An encoded word can carry any byte, NUL included, past the IMAP server: this one
    # decodes to <ab\x00cd-token@x.de>, which PostgreSQL refuses in any text column.
    hidden = base64.b64encode(f"<ab\x00cd-{token}@x.de>".encode()).decode()
    dovecot.append(_mail("Mit Nullbyte", f"=?utf-8?b?{hidden}?="), folder)
    dovecot.append(corpus.simple("Danach", "Text"), folder)
    source = _source(office, _mailbox(dovecot, folder))

    assert source.poll() == 2
    assert all(TAKEN_KEYWORD in f for f in dovecot.flags(folder).values())
    with unit_of_work(make_session_factory(office.api.engine)) as session:
        ids = set(session.scalars(select(MailReceipt.message_id).where(
            MailReceipt.mailbox == source.mailbox.label)).all())
    assert f"abcd-{token}@x.de" in ids


def _refuse_receipts_of(engine: Engine, marker: str) -> None:
    """Make the database refuse a receipt whose Message-ID contains `marker`.

    A trigger stands for any fault of the database that one mail sets off every time:
    the error comes from the real database, at the insert where a real one would.
    """
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"""
                CREATE FUNCTION refuse_receipt() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.message_id LIKE '%{marker}%' THEN
                        RAISE EXCEPTION 'receipt refused' USING ERRCODE = 'data_exception';
                    END IF;
                    RETURN NEW;
                END $$"""))
            conn.execute(text("CREATE TRIGGER refuse_receipt BEFORE INSERT ON mail_receipts "
                              "FOR EACH ROW EXECUTE FUNCTION refuse_receipt()"))
        else:
            conn.execute(text(f"""
                CREATE TRIGGER refuse_receipt BEFORE INSERT ON mail_receipts
                WHEN NEW.message_id LIKE '%{marker}%'
                BEGIN SELECT RAISE(ABORT, 'receipt refused'); END"""))


def test_a_mail_that_always_fails_is_quarantined_and_the_next_mails_are_taken(
    office: Office, dovecot: Dovecot
) -> None:
    folder = _folder(dovecot)
    marker = f"refused{uuid.uuid4().hex[:8]}"
    _refuse_receipts_of(office.api.engine, marker)
    bad = _mail("Geht nie", f"<{marker}@example.org>")
    dovecot.append(bad, folder)
    dovecot.append(corpus.simple("Kommt danach", "Text"), folder)
    dovecot.append(corpus.simple("Und noch eine", "Text"), folder)
    source = _source(office, _mailbox(dovecot, folder))

    assert source.poll() == 3
    items = office.imap_items(folder)
    assert len(items) == 3
    (kept,) = [i for i in items if i.state == "quarantined"]
    reason = kept.quarantine_reason or ""
    assert "could not be taken in" in reason and "Error" in reason, reason
    original = office.api.client.get(f"/api/v1/inbox/{kept.id}/original",
                                     headers=office.mailroom)
    assert original.status_code == 200
    assert original.content.replace(b"\r\n", b"\n") == bad.replace(b"\r\n", b"\n")
    # Taken, so flagged: the next poll neither fetches it again nor stores it twice.
    assert all(TAKEN_KEYWORD in f for f in dovecot.flags(folder).values())
    assert source.poll() == 0
    assert len(office.imap_items(folder)) == 3


def test_a_receipt_another_poller_commits_first_counts_as_taken(
    pg_url: str, dovecot: Dovecot, tmp_path: Path
) -> None:
    folder = _folder(dovecot)
    raw = corpus.simple("Zweimal", "Text", message_id=f"<{uuid.uuid4().hex}@example.org>")
    dovecot.append(raw, folder)
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    try:
        source = ImapSource(_mailbox(dovecot, folder), factory, FilesystemStore(tmp_path),
                            Settings())
        label = source.mailbox.label
        assert source.poll() == 1
        dovecot.append(raw, folder)  # a copy, so the poll goes the repeated Message-ID way
        with unit_of_work(factory) as session:
            first = session.scalars(select(MailReceipt).where(MailReceipt.mailbox == label)).one()
            session.expunge(first)
        # The other poller of this mailbox: it has recorded UID 2 and not committed yet.
        other = factory()
        other.add(MailReceipt(mailbox=label, uidvalidity=first.uidvalidity, uid=first.uid + 1,
                              message_id=first.message_id, item_id=first.item_id))
        other.flush()
        outcome: dict[str, object] = {}

        def poll() -> None:
            try:
                outcome["taken"] = source.poll()
            except Exception as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=poll)
        thread.start()
        wait_for_lock_wait(engine, thread)
        other.commit()  # now the poll's insert of the same receipt is refused
        other.close()
        thread.join(timeout=30)
        assert outcome == {"taken": 0}
        assert source.poll() == 0  # the winner lets go of it; here the next poll does
        assert all(TAKEN_KEYWORD in f for f in dovecot.flags(folder).values())
        assert _count(factory, label) == (1, 2)
    finally:
        engine.dispose()



def test_the_poller_outlives_a_database_outage(
    pg_server: str, dovecot: Dovecot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _folder(dovecot)
    dovecot.append(corpus.simple("Während des Ausfalls", "Text"), folder)
    admin = make_engine(pg_server, isolation_level="AUTOCOMMIT")
    stop = threading.Event()
    with fresh_pg_database(pg_server) as url:
        name = make_url(url).database
        engine = make_engine(url)
        factory = make_session_factory(engine)
        settings = Settings().model_copy(update={"imap_poll_seconds": 0.1})
        source = ImapSource(_mailbox(dovecot, folder), factory, FilesystemStore(tmp_path),
                            settings)
        thread = threading.Thread(target=source.run, args=(stop,), daemon=True)
        try:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            with caplog.at_level(logging.ERROR, logger="inbox.imap"):
                thread.start()
                deadline = time.monotonic() + 15
                while not any("poll failed" in r.getMessage() for r in caplog.records):
                    assert thread.is_alive(), "the poller thread ended on the outage"
                    assert time.monotonic() < deadline, "the poll did not fail"
                    time.sleep(0.05)
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
            deadline = time.monotonic() + 30
            while _count(factory, source.mailbox.label) != (1, 1):
                assert thread.is_alive(), "the poller thread ended"
                assert time.monotonic() < deadline, "no mail taken after the outage"
                time.sleep(0.1)
        finally:
            stop.set()
            thread.join(timeout=30)
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
            engine.dispose()
    admin.dispose()


def test_an_oversized_mail_is_kept_as_its_header_and_not_fetched_again(
    office: Office, dovecot: Dovecot
) -> None:
    folder = _folder(dovecot)
    big = corpus.simple("Riesige Anlage", "Siehe Anhang.",
                        attachments=[("plan.bin", "application/octet-stream",
                                      os.urandom(30_000))])
    dovecot.append(big, folder)
    dovecot.append(corpus.simple("Klein", "Text"), folder)
    settings = office.api.settings.model_copy(update={"mail_max_bytes": 20_000})
    source = ImapSource(_mailbox(dovecot, folder), make_session_factory(office.api.engine),
                        office.api.store, settings)

    assert source.poll() == 2
    items = office.imap_items(folder)
    (oversized,) = [i for i in items if i.state == "quarantined"]
    shown = office.item(str(oversized.id))
    assert "more than the limit of 20000 bytes" in shown["quarantine_reason"]
    assert "not downloaded" in shown["quarantine_reason"]
    assert (shown["subject"], shown["sender_address"]) == ("Riesige Anlage",
                                                           "erika@example.org")
    kept = office.api.client.get(f"/api/v1/inbox/{oversized.id}/original",
                                 headers=office.mailroom).content
    assert b"Subject: Riesige Anlage" in kept
    assert b"Siehe Anhang" not in kept and len(kept) < 2000
    assert all(TAKEN_KEYWORD in f for f in dovecot.flags(folder).values())
    assert source.poll() == 0
    assert len(office.imap_items(folder)) == 2

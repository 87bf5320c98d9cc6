"""The IMAP source: takes mails from configured mailboxes into the inbox, each exactly once.

For each mail not yet let go of, the source fetches it with `BODY.PEEK[]` (so a person's
unread mark is untouched until we are done), stores the .eml, and commits the item together
with a receipt (mailbox, UIDVALIDITY, UID, Message-ID). Only then is the mail flagged (or
moved). A crash between commit and flag leaves a mail whose receipt exists: the next poll
recognises it and only flags it. The same Message-ID in another place (a copy, a re-delivery)
is recorded against the first item and not imported again.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import io
import logging
import re
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eakte.auth.principal import Principal, Role
from eakte.db import unit_of_work
from eakte.errors import PayloadTooLarge
from eakte.settings import ImapMailbox, Settings
from inbox import mail, repository, service
from inbox.models import ItemSource, MailReceipt
from storage import BlobStore

log = logging.getLogger(__name__)

IMAP_PRINCIPAL = Principal(subject="imap", roles=frozenset({Role.MAILROOM}), kind="system")
# A keyword of our own marks taken mails; a person reading the mailbox does not change it.
TAKEN_KEYWORD = "$EakteTaken"
FETCH_BATCH = 50


class ImapError(Exception):
    """The IMAP server refused a command or answered something we cannot use."""


def _check(result: tuple[str, Sequence[object]], what: str) -> list[object]:
    typ, data = result
    if typ != "OK":
        raise ImapError(f"{what} failed: {data!r}")
    return list(data)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class ImapSource:
    """One IMAP mailbox (folder) as an inbound source."""

    mailbox: ImapMailbox
    factory: Callable[[], Session]
    store: BlobStore
    settings: Settings
    name: str = "imap"

    # -- connection ---------------------------------------------------------------------------
    def connect(self) -> imaplib.IMAP4:
        """A logged-in connection to the mailbox's server."""
        box = self.mailbox
        timeout = self.settings.imap_timeout_seconds
        context = ssl.create_default_context(cafile=str(box.ca_file) if box.ca_file else None)
        conn: imaplib.IMAP4
        if box.security == "tls":
            conn = imaplib.IMAP4_SSL(box.host, box.port, ssl_context=context, timeout=timeout)
        else:
            conn = imaplib.IMAP4(box.host, box.port, timeout=timeout)
        try:
            if box.security == "starttls":
                conn.starttls(context)  # a refused certificate closes the connection below
            if box.oauth2_token is not None:
                token = box.oauth2_token.get_secret_value()
                auth = f"user={box.username}\x01auth=Bearer {token}\x01\x01".encode()
                conn.authenticate("XOAUTH2", lambda _challenge: auth)
            else:
                password = box.password.get_secret_value() if box.password else ""
                conn.login(box.username, password)
        except Exception:
            # After a failed STARTTLS the socket is gone already (ssl closed it).
            with contextlib.suppress(OSError):
                conn.shutdown()
            raise
        return conn

    # -- polling ------------------------------------------------------------------------------
    def poll(self) -> int:
        """Take every mail of the folder not taken before; returns the number of new items."""
        conn = self.connect()
        try:
            _check(conn.select(_quote(self.mailbox.folder)), "SELECT")
            validity = conn.response("UIDVALIDITY")[1]
            if not validity or validity[0] is None:
                raise ImapError("the server sent no UIDVALIDITY")
            uidvalidity = int(validity[0])
            criteria = "ALL" if self.mailbox.move_to else f"UNKEYWORD {TAKEN_KEYWORD}"
            data = _check(conn.uid("SEARCH", criteria), "UID SEARCH")
            found = data[0] if data and isinstance(data[0], bytes) else b""
            uids = [int(u) for u in found.split()]
            taken = 0
            for uid in uids:
                if self._take(conn, uidvalidity, uid):
                    taken += 1
            if self.mailbox.move_to:
                conn.expunge()
            return taken
        finally:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                log.info("IMAP logout from %s failed; the connection is dropped anyway",
                         self.mailbox.label)

    def _take(self, conn: imaplib.IMAP4, uidvalidity: int, uid: int) -> bool:
        label = self.mailbox.label
        with unit_of_work(self.factory) as session:
            seen = repository.receipt(session, label, uidvalidity, uid) is not None
        if seen:
            # Stored before, but the flag (or move) was lost: only let go of it now.
            self.let_go(conn, uid)
            return False
        raw = self._fetch(conn, uid)
        sha = hashlib.sha256(raw).hexdigest()
        message_id = mail.message_id(raw) or f"sha256:{sha}"
        with unit_of_work(self.factory) as session:
            earlier = repository.receipt_by_message_id(session, message_id)
            if earlier is not None:
                session.add(MailReceipt(mailbox=label, uidvalidity=uidvalidity, uid=uid,
                                        message_id=message_id, item_id=earlier.item_id))
        if earlier is not None:
            log.info("IMAP %s: UID %s repeats Message-ID %s; not imported again", label, uid,
                     message_id)
            self.let_go(conn, uid)
            return False
        try:
            stored = service.store_original(self.store, io.BytesIO(raw),
                                            max_size=self.settings.mail_max_bytes)
        except PayloadTooLarge:
            log.error("IMAP %s: UID %s is larger than %s bytes; left in the mailbox", label,
                      uid, self.settings.mail_max_bytes)
            return False
        try:
            with unit_of_work(self.factory) as session:
                item = service.record_item(
                    session, IMAP_PRINCIPAL, stored, source=ItemSource.EMAIL,
                    original_name=f"{_name_from(raw) or 'nachricht'}.eml",
                    source_ref=f"imap:{label}:{uidvalidity}:{uid}",
                )
                session.add(MailReceipt(mailbox=label, uidvalidity=uidvalidity, uid=uid,
                                        message_id=message_id, item_id=item.id))
        except IntegrityError:
            # Another poller took the same mail at the same moment; its item stands.
            self.store.delete(stored.key)
            log.info("IMAP %s: UID %s was taken concurrently", label, uid)
            return False
        log.info("IMAP %s: UID %s taken as item %s", label, uid, stored.item_id)
        self.let_go(conn, uid)
        return True

    def _fetch(self, conn: imaplib.IMAP4, uid: int) -> bytes:
        # PEEK: fetching must not mark the mail read; a person may still be working on it.
        data = _check(conn.uid("FETCH", str(uid), "(BODY.PEEK[])"), "UID FETCH")
        for entry in data:
            if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], bytes):
                return entry[1]
        raise ImapError(f"UID FETCH {uid} returned no message body")

    def let_go(self, conn: imaplib.IMAP4, uid: int) -> None:
        """Mark a stored mail as taken: move it, or flag it with our keyword."""
        if self.mailbox.move_to:
            _check(conn.uid("COPY", str(uid), _quote(self.mailbox.move_to)), "UID COPY")
            _check(conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
        else:
            _check(conn.uid("STORE", str(uid), "+FLAGS.SILENT", f"({TAKEN_KEYWORD} \\Seen)"),
                   "UID STORE")

    def run(self, stop: threading.Event) -> None:
        """Poll every `imap_poll_seconds` until `stop` is set; server trouble is retried."""
        while not stop.is_set():
            try:
                self.poll()
            except (imaplib.IMAP4.error, ImapError, OSError) as exc:
                log.warning("IMAP %s: %s; trying again in %.0f s", self.mailbox.label, exc,
                            self.settings.imap_poll_seconds)
            stop.wait(self.settings.imap_poll_seconds)


def _name_from(raw: bytes) -> str | None:
    """A file name for the .eml from its subject (letters, digits, a few separators)."""
    try:
        subject = str(mail.parse_headers(raw).get("Subject") or "")
    except Exception:  # an unreadable subject only costs the nice file name
        return None
    cleaned = re.sub(r"[^\w .,()-]+", "_", subject).strip(" ._")
    return cleaned[:80] or None

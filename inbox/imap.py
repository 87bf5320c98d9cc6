"""The IMAP source: takes mails from configured mailboxes into the inbox, each exactly once.

For each mail not yet let go of, the source fetches it with `BODY.PEEK[]` (so a person's
unread mark is untouched until we are done), stores the .eml, and commits the item together
with a receipt (mailbox, UIDVALIDITY, UID, Message-ID). Only then is the mail flagged (or
moved). A crash between commit and flag leaves a mail whose receipt exists: the next poll
recognises it and only flags it. The same Message-ID in another place (a copy, a re-delivery)
is recorded against the first item and not imported again.

Two kinds of mail are not taken in whole, but never dropped unseen either: each becomes a
quarantined item with a receipt, so a person finds it in the quarantine and it is not fetched
again. A mail over `mail_max_bytes` (its RFC822.SIZE is asked for first) is kept as its header
only; a mail whose intake fails for a reason of its own (the database refuses something in
it, say) is kept as its whole .eml. An outage (connection, database, blob store) is not the
mail's fault: those mails stay unflagged and the next poll tries again.
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
from typing import Literal

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from eakte.auth.principal import Principal, Role
from eakte.db import unit_of_work
from eakte.errors import PayloadTooLarge
from eakte.settings import ImapMailbox, Settings
from inbox import mail, repository, service
from inbox.models import InboundItem, ItemSource, MailReceipt
from inbox.text import storable
from storage import BlobStore, StorageUnavailable

log = logging.getLogger(__name__)

IMAP_PRINCIPAL = Principal(subject="imap", roles=frozenset({Role.MAILROOM}), kind="system")
# A keyword of our own marks taken mails; a person reading the mailbox does not change it.
TAKEN_KEYWORD = "$EakteTaken"
FETCH_BATCH = 50
# What is kept of a mail over the size limit: its header, up to this many bytes.
HEADER_BYTES = 64 * 1024
# A dropped connection, or the database or blob store out of reach: every further mail
# would fail the same way, so the poll ends and the next one starts over. Any other
# failure belongs to one mail.
POLL_ENDING_ERRORS: tuple[type[BaseException], ...] = (
    imaplib.IMAP4.abort, OSError, StorageUnavailable, OperationalError)
# What became of one fetched mail: a new item, a repeat of a Message-ID taken before, or
# a UID another poller of the same mailbox recorded first.
Outcome = Literal["new", "repeat", "concurrent"]


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
        """Take every mail of the folder not taken before; returns the number of new items.

        Each UID is handled on its own: a mail that fails is logged (and, if its bytes could
        be fetched, kept as a quarantined item) and the poll goes on with the next one, so
        one bad mail never holds up the mails behind it. Only a broken connection or an
        outage of the database or the blob store ends the poll early.
        """
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
                try:
                    if self._take(conn, uidvalidity, uid):
                        taken += 1
                except POLL_ENDING_ERRORS:
                    raise
                except (imaplib.IMAP4.error, ImapError) as exc:
                    # The server refused a command for this one mail (expunged meanwhile,
                    # say); it stays as it is and is looked at again next poll.
                    log.warning("IMAP %s: UID %s: %s; left on the server for the next poll",
                                self.mailbox.label, uid, exc)
                except Exception:
                    log.exception("IMAP %s: UID %s could not be taken in, nor kept as a "
                                  "quarantined item; it stays on the server, unflagged, and is "
                                  "tried again next poll", self.mailbox.label, uid)
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
        """Take one mail in (or set it aside); True if a new item was recorded."""
        label = self.mailbox.label
        if self._has_receipt(uidvalidity, uid):
            # Stored before, but the flag (or move) was lost: only let go of it now.
            self.let_go(conn, uid)
            return False
        # The size first: a mail over the limit is never downloaded, only its header.
        size = self._size(conn, uid)
        if size > self.settings.mail_max_bytes:
            header = self._fetch(conn, uid, f"BODY.PEEK[HEADER]<0.{HEADER_BYTES}>")
            self._set_aside_oversized(uidvalidity, uid, size, header)
            self.let_go(conn, uid)
            return True
        raw = self._fetch(conn, uid)
        try:
            outcome = self._record(uidvalidity, uid, raw)
        except POLL_ENDING_ERRORS:
            raise
        except Exception as exc:
            # The same mail would fail the same way at every poll: keep it where a person
            # sees it (the quarantine) instead of retrying it unseen forever.
            log.exception("IMAP %s: UID %s could not be taken in; kept as a quarantined item",
                          label, uid)
            self._set_aside(uidvalidity, uid, raw, exc)
            outcome = "new"
        if outcome != "concurrent":  # the poller that won the race lets go of it
            self.let_go(conn, uid)
        return outcome == "new"

    def _has_receipt(self, uidvalidity: int, uid: int) -> bool:
        with unit_of_work(self.factory) as session:
            return repository.receipt(session, self.mailbox.label, uidvalidity, uid) is not None

    def _record(self, uidvalidity: int, uid: int, raw: bytes) -> Outcome:
        """Store a fetched mail and commit its item and receipt; no IMAP command is sent."""
        label = self.mailbox.label
        sha = hashlib.sha256(raw).hexdigest()
        message_id = mail.message_id(raw) or f"sha256:{sha}"
        try:
            with unit_of_work(self.factory) as session:
                earlier = repository.receipt_by_message_id(session, message_id)
                if earlier is not None:
                    session.add(MailReceipt(mailbox=label, uidvalidity=uidvalidity, uid=uid,
                                            message_id=message_id, item_id=earlier.item_id))
        except IntegrityError:
            # Another poller of this mailbox recorded this UID a moment earlier.
            if not self._has_receipt(uidvalidity, uid):
                raise
            log.info("IMAP %s: UID %s was taken concurrently", label, uid)
            return "concurrent"
        if earlier is not None:
            log.info("IMAP %s: UID %s repeats Message-ID %s; not imported again", label, uid,
                     message_id)
            return "repeat"
        try:
            stored = service.store_original(self.store, io.BytesIO(raw),
                                            max_size=self.settings.mail_max_bytes)
        except PayloadTooLarge:
            # The server's RFC822.SIZE was smaller than the bytes it sent.
            self._set_aside_oversized(uidvalidity, uid, len(raw), _header_of(raw))
            return "new"
        try:
            with unit_of_work(self.factory) as session:
                item = service.record_item(
                    session, IMAP_PRINCIPAL, stored, source=ItemSource.EMAIL,
                    original_name=f"{_name_from(raw) or 'nachricht'}.eml",
                    source_ref=f"imap:{label}:{uidvalidity}:{uid}",
                )
                session.add(MailReceipt(mailbox=label, uidvalidity=uidvalidity, uid=uid,
                                        message_id=message_id, item_id=item.id))
        except Exception as exc:
            self._forget_blob(stored.key)
            if isinstance(exc, IntegrityError) and self._has_receipt(uidvalidity, uid):
                # Another poller took the same mail at the same moment; its item stands.
                log.info("IMAP %s: UID %s was taken concurrently", label, uid)
                return "concurrent"
            raise
        log.info("IMAP %s: UID %s taken as item %s", label, uid, stored.item_id)
        return "new"

    def _set_aside(self, uidvalidity: int, uid: int, raw: bytes, error: Exception) -> None:
        """Keep a mail that cannot be taken in as a quarantined item holding its .eml."""
        reason = (f"the mail could not be taken in from {self.mailbox.label} (UID {uid}): "
                  f"{type(error).__name__}: {_first_line(error)}. The .eml is kept here as it "
                  "came: download it, or re-queue it once the cause is fixed")
        stored = service.store_original(self.store, io.BytesIO(raw),
                                        max_size=self.settings.mail_max_bytes)
        # Nothing read from the mail goes into this row (it may be what failed): the name
        # is fixed and the receipt is keyed by the bytes' hash, not the Message-ID.
        self._record_quarantined(uidvalidity, uid, stored, "nachricht.eml",
                                 f"sha256:{stored.sha256}", reason, None)

    def _set_aside_oversized(self, uidvalidity: int, uid: int, size: int,
                             header: bytes) -> None:
        """Record a mail over the size limit: its header and a reason, without its body."""
        where = (f"folder {self.mailbox.move_to!r}" if self.mailbox.move_to
                 else f"{self.mailbox.label}, UID {uid}, flagged {TAKEN_KEYWORD}")
        reason = (f"the mail is {size} bytes, more than the limit of "
                  f"{self.settings.mail_max_bytes} bytes (EAKTE_MAIL_MAX_BYTES), so it was not "
                  f"downloaded; only its header is kept here. The whole mail stays on the mail "
                  f"server ({where}): file it from there by hand, or ask the sender for "
                  "smaller parts")
        stored = service.store_original(self.store, io.BytesIO(header),
                                        max_size=HEADER_BYTES)
        message_id = mail.message_id(header) or f"sha256:{stored.sha256}"
        name = f"{_name_from(header) or 'nachricht'} (nur Kopf).eml"
        self._record_quarantined(uidvalidity, uid, stored, name, message_id, reason, header)
        log.warning("IMAP %s: UID %s is %s bytes, over the limit; recorded without its body",
                    self.mailbox.label, uid, size)

    def _record_quarantined(self, uidvalidity: int, uid: int, stored: service.StoredOriginal,
                            name: str, message_id: str, reason: str,
                            header: bytes | None) -> None:
        """Commit a quarantined item with its receipt, so the mail is not fetched again."""
        label = self.mailbox.label
        try:
            with unit_of_work(self.factory) as session:
                item = service.record_item(session, IMAP_PRINCIPAL, stored,
                                           source=ItemSource.EMAIL, original_name=name,
                                           source_ref=f"imap:{label}:{uidvalidity}:{uid}")
                if header is not None:
                    _describe(item, header)
                service.quarantine_at_intake(session, IMAP_PRINCIPAL, item, reason)
                session.add(MailReceipt(mailbox=label, uidvalidity=uidvalidity, uid=uid,
                                        message_id=message_id, item_id=item.id))
        except BaseException:
            self._forget_blob(stored.key)
            raise

    def _forget_blob(self, key: str) -> None:
        """Delete a blob whose row was not committed (the sweeper would, later)."""
        try:
            self.store.delete(key)
        except Exception:
            log.warning("could not delete %s; the sweeper removes it later", key, exc_info=True)

    def _size(self, conn: imaplib.IMAP4, uid: int) -> int:
        data = _check(conn.uid("FETCH", str(uid), "(RFC822.SIZE)"), "UID FETCH RFC822.SIZE")
        for entry in data:
            line = entry[0] if isinstance(entry, tuple) else entry
            if isinstance(line, bytes):
                found = re.search(rb"RFC822\.SIZE (\d+)", line)
                if found:
                    return int(found.group(1))
        raise ImapError(f"UID FETCH {uid} returned no RFC822.SIZE")

    def _fetch(self, conn: imaplib.IMAP4, uid: int, what: str = "BODY.PEEK[]") -> bytes:
        # PEEK: fetching must not mark the mail read; a person may still be working on it.
        data = _check(conn.uid("FETCH", str(uid), f"({what})"), "UID FETCH")
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
        """Poll every `imap_poll_seconds` until `stop` is set; every failure is retried."""
        while not stop.is_set():
            try:
                self.poll()
            except (imaplib.IMAP4.error, ImapError, OSError) as exc:
                log.warning("IMAP %s: %s; trying again in %.0f s", self.mailbox.label, exc,
                            self.settings.imap_poll_seconds)
            except Exception:
                # The database or the store failing, or a bug: this thread is the only one
                # taking this mailbox's mail in, so it must outlive any single poll.
                log.exception("IMAP %s: the poll failed; trying again in %.0f s",
                              self.mailbox.label, self.settings.imap_poll_seconds)
            stop.wait(self.settings.imap_poll_seconds)


def _describe(item: InboundItem, header: bytes) -> None:
    """Subject and sender of a mail from its header, for an item that has no body to unpack."""
    try:
        parsed = mail.unpack(header)
    except Exception:  # a header this broken: the quarantine reason still says it all
        log.info("header of item %s unreadable", item.id, exc_info=True)
        return
    item.subject = storable(parsed.subject)[:500] or None
    item.sender_address = storable(parsed.sender_address or "")[:320] or None
    item.sender_name = storable(parsed.sender_name or "")[:300] or None


def _header_of(raw: bytes) -> bytes:
    """The header block of a mail (up to the first blank line), at most HEADER_BYTES."""
    head = re.split(rb"\r?\n\r?\n", raw[:HEADER_BYTES], maxsplit=1)[0]
    return head + b"\r\n\r\n"


def _first_line(error: Exception) -> str:
    """An exception's first line (SQLAlchemy appends the statement and its parameters)."""
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else "no message"


def _name_from(raw: bytes) -> str | None:
    """A file name for the .eml from its subject (letters, digits, a few separators)."""
    try:
        subject = str(mail.parse_headers(raw).get("Subject") or "")
    except Exception:  # an unreadable subject only costs the nice file name
        return None
    cleaned = re.sub(r"[^\w .,()-]+", "_", subject).strip(" ._")
    return cleaned[:80] or None

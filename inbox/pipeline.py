"""The inbound pipeline: workers claim items with leases and move them step by step.

    received -> typed -> ocred -> classified -> filed | triage      (quarantined from any step)

Each step does its slow work (reading blobs, OCR) outside any transaction, then applies its
result in one short transaction that first checks the worker still holds the item's lease. A
worker killed mid-step leaves the lease to expire; another worker claims the item and repeats
the step, which is safe because every step writes to fixed keys and fixed rows. A heartbeat
renews the lease while a long step runs, so a slow OCR is never mistaken for a dead worker.
Every claim counts as an attempt, so an item that kills each worker taking it (or fails each
time) ends quarantined after `inbox_max_attempts`, with the last error as its reason.
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import magic
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import ocr
from eakte.audit.service import record
from eakte.db import unit_of_work, utcnow
from eakte.documents.models import DocumentKind
from eakte.errors import InvalidInput, Unavailable
from eakte.files.models import File, FileStatus
from eakte.outgoing.service import match_reply
from eakte.settings import Settings
from inbox import invoices, mail, repository, service
from inbox.classifier import ModelCache, match_sender, sender_domain, train_and_save
from inbox.models import ACTIVE_STATES, InboundItem, InboundPart, ItemSource, ItemState
from inbox.references import find_references
from inbox.text import storable, storable_or_none
from storage import BlobStore, StorageUnavailable, download

log = logging.getLogger(__name__)

SUPPORTED_TYPES = {"application/pdf", "image/tiff", "image/jpeg", "image/png"}
MAX_RETRY_DELAY_SECONDS = 3600.0
# Mail headers come first; In-Reply-To and References are read from this much of the .eml.
REPLY_HEADER_BYTES = 64 * 1024
# PDFs up to this size are opened to look for an embedded e-invoice (ZUGFeRD, Factur-X).
MAX_INVOICE_PDF_BYTES = 50 * 1024 * 1024
TRAINING_CHECK_SECONDS = 600.0

Apply = Callable[[Session, InboundItem], None]


class PermanentError(Exception):
    """The item itself is the problem; trying again cannot help. It goes to quarantine."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (StorageUnavailable, OperationalError,
                                                     ConnectionError, TimeoutError)


def ocr_options(settings: Settings) -> ocr.OcrOptions:
    """OCR options from the settings; pages in parallel over the cores left per worker."""
    cores = len(os.sched_getaffinity(0))
    return ocr.OcrOptions(
        languages=tuple(settings.ocr_languages.split("+")),
        timeout_s=settings.ocr_timeout_seconds,
        jobs=max(1, cores // settings.ocr_workers),
        max_pages=settings.ocr_max_pages,
        max_memory_bytes=settings.ocr_max_memory_bytes,
    )


@dataclass
class Worker:
    """One pipeline worker; several may run in threads or processes against one database."""

    factory: sessionmaker[Session]
    store: BlobStore
    settings: Settings
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    models: ModelCache = field(init=False)
    _next_training_check: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.models = ModelCache(self.store, self.settings)

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event, idle_wait: float = 1.0) -> None:
        """Work until `stop` is set, waiting `idle_wait` seconds when there is nothing to do."""
        log.info("inbox worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except TRANSIENT_ERRORS as exc:
                log.warning("worker %s cannot reach a backing service: %s", self.worker_id, exc)
                busy = False
            except Exception:
                log.exception("worker %s: unexpected error; carrying on", self.worker_id)
                busy = False
            if not busy:
                self._maybe_retrain()
                stop.wait(idle_wait)
        log.info("inbox worker %s stopped", self.worker_id)

    def _maybe_retrain(self) -> None:
        """Train a new model when the newest is older than the interval (idle time only)."""
        now = time.monotonic()
        if now < self._next_training_check:
            return
        self._next_training_check = now + TRAINING_CHECK_SECONDS
        try:
            if self.models.due_for_training():
                train_and_save(self.factory, self.store, self.settings)
                self.models.forget()
        except (InvalidInput, Unavailable) as exc:
            log.info("classifier not trained: %s", exc.detail)
        except TRANSIENT_ERRORS as exc:
            log.warning("classifier training failed for now: %s", exc)
        except Exception:
            # A full disk, a model file from another scikit-learn version, a bug: training is
            # an extra, and the worker's real job (the post) goes on. Tried again next check.
            log.exception("worker %s: classifier training failed; next try in %.0f s",
                          self.worker_id, TRAINING_CHECK_SECONDS)

    def run_until_idle(self, max_items: int = 1000) -> int:
        """Process items until none is claimable; returns how many were taken (for tests, CLI)."""
        taken = 0
        while taken < max_items and self.run_once():
            taken += 1
        return taken

    def run_once(self) -> bool:
        """Claim one item and move it as far as it goes; False if there was none."""
        item_id = self._claim()
        if item_id is None:
            return False
        with _Heartbeat(self, item_id):
            self._advance(item_id)
        return True

    # -- leases -----------------------------------------------------------------------------
    def _lease_until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.settings.inbox_lease_seconds)

    def _claim(self) -> uuid.UUID | None:
        """Lease the next due item and count the attempt; None if no item is due.

        An attempt counts when it starts, not when it fails: a step that kills the worker
        process (the kernel's OOM killer, a crash in a native library) records no failure, and
        its item would be claimed again after every lease expiry, forever. So `attempts` is the
        number of times workers have started on the item, and one claimed that many times
        (`inbox_max_attempts`) without an outcome is quarantined rather than tried again.
        """
        while True:
            with unit_of_work(self.factory) as session:
                item = repository.claimable(session, utcnow())
                if item is None:
                    return None
                if item.lease_owner is not None:
                    # The lease ran out: its holder ended without recording an outcome.
                    item.last_error = (
                        f"attempt {item.attempts} stopped without a result in step "
                        f"{item.state}: worker {item.lease_owner} was killed, crashed or lost "
                        "its database while working on the item")
                if item.attempts < self.settings.inbox_max_attempts:
                    item.attempts += 1
                    item.lease_owner = self.worker_id
                    item.lease_expires_at = self._lease_until()
                    return item.id
                given_up, attempts = item.id, item.attempts
                self._give_up(session, item, item.state, item.last_error or "none recorded")
            log.warning("item %s quarantined: %s attempts used up, the last without a result",
                        given_up, attempts)

    def renew_lease(self, item_id: uuid.UUID) -> bool:
        """Extend the lease if it is still ours; False if another worker has the item."""
        with unit_of_work(self.factory) as session:
            item = repository.locked(session, item_id)
            if item is None or item.lease_owner != self.worker_id:
                return False
            item.lease_expires_at = self._lease_until()
            return True

    def _held(self, session: Session, item_id: uuid.UUID, state: str) -> InboundItem | None:
        item = repository.locked(session, item_id)
        if item is None or item.lease_owner != self.worker_id or item.state != state:
            log.warning("worker %s lost item %s (lease taken over)", self.worker_id, item_id)
            return None
        return item

    # -- steps ------------------------------------------------------------------------------
    def _advance(self, item_id: uuid.UUID) -> None:
        while True:
            # A detached copy: the step's slow work runs with no transaction open.
            with unit_of_work(self.factory) as session:
                snap = session.get(InboundItem, item_id)
                if snap is None or snap.lease_owner != self.worker_id:
                    return
            if snap.state not in ACTIVE_STATES:
                self._release(item_id)
                return
            if snap.state == self.settings.test_pause_after_step:  # fault-test hook, see Settings
                threading.Event().wait(self.settings.test_pause_seconds)
            step = _STEPS[ItemState(snap.state)]
            try:
                apply = step(self, snap)
                with unit_of_work(self.factory) as session:
                    item = self._held(session, item_id, snap.state)
                    if item is None:
                        return
                    apply(session, item)
                    log.info("item %s: %s -> %s", item_id, snap.state, item.state)
            except PermanentError as exc:
                self._quarantine(item_id, snap.state, str(exc))
                return
            except ocr.OcrError as exc:
                if exc.permanent:
                    self._quarantine(item_id, snap.state, exc.message)
                else:
                    self._retry(item_id, snap.state, exc.message)
                return
            except TRANSIENT_ERRORS as exc:
                self._retry(item_id, snap.state, f"{type(exc).__name__}: {exc}")
                return
            except Exception as exc:
                # A bug or an unforeseen condition (a missing blob, say): retried with backoff
                # and quarantined after the last attempt, never a dead worker or a lost item.
                log.exception("item %s: unexpected error in step %s", item_id, snap.state)
                self._retry(item_id, snap.state, f"unexpected {type(exc).__name__}: {exc}")
                return
            if snap.state == ItemState.CLASSIFIED.value:
                service.drop_inbox_copies(self.factory, self.store, item_id)

    def _type(self, snap: InboundItem) -> Apply:
        if snap.original_size == 0:
            raise PermanentError("the file is empty (0 bytes); scan or send the document again")
        end = min(snap.original_size, 8192) - 1
        with self.store.open(snap.original_key, 0, end) as reader:
            head = b"".join(reader)
        mime = magic.from_buffer(head, mime=True) or "application/octet-stream"
        if mime == service.MAIL_TYPE or snap.source == ItemSource.EMAIL.value or (
            mime.startswith("text/") and ((snap.original_name or "").lower().endswith(".eml")
                                          or mail.looks_like_mail(head))
        ):
            mime = service.MAIL_TYPE
        elif mime in invoices.XML_TYPES and snap.original_size <= invoices.MAX_XML_BYTES:
            # XML is taken only as an e-invoice (XRechnung); any other XML is not post.
            if invoices.from_xml(self._read(snap), embedded=False) is None:
                raise PermanentError("the XML file is no XRechnung (UBL or CII) invoice")
            mime = "application/xml"
        elif mime not in SUPPORTED_TYPES:
            raise PermanentError(
                f"unsupported file type {mime}: the inbox takes PDF, TIFF, JPEG, PNG, .eml "
                "and XRechnung XML"
            )

        def apply(session: Session, item: InboundItem) -> None:
            item.mime_type = mime
            item.state = ItemState.TYPED.value

        return apply

    def _read(self, snap: InboundItem) -> bytes:
        with self.store.open(snap.original_key) as reader:
            return b"".join(reader)

    def _ocr(self, snap: InboundItem) -> Apply:
        if service.is_mail(snap):
            return self._unpack(snap)
        invoice = None
        if snap.mime_type == "application/xml" or (
            snap.mime_type == "application/pdf" and snap.original_size <= MAX_INVOICE_PDF_BYTES
        ):
            invoice = invoices.recognise(self._read(snap), snap.mime_type)
        if invoice is not None:
            # Born digital: filed as it came, so a ZUGFeRD PDF keeps its embedded XML (an
            # OCR pass would rewrite the PDF and could drop it).
            found = invoice

            def keep_invoice(session: Session, item: InboundItem) -> None:
                item.ocr_key = None
                item.ocr_text = storable(found.summary)
                item.invoices = {"0": found.as_dict()}
                item.state = ItemState.OCRED.value

            return keep_invoice
        with tempfile.TemporaryDirectory(prefix="eakte-inbox-") as tmp:
            src = Path(tmp) / "original"
            out = Path(tmp) / "ocr.pdf"
            download(self.store, snap.original_key, src)
            try:
                result = ocr.run_ocr(src, out, ocr_options(self.settings))
            except ocr.SignedPdf:
                # A signature would break if we added a text layer: file the PDF as it came.
                log.info("item %s is a signed PDF; filed without OCR", snap.id)

                def keep_signed(session: Session, item: InboundItem) -> None:
                    item.ocr_key = None
                    item.state = ItemState.OCRED.value

                return keep_signed
            key = service.ocr_key(snap.id)
            with out.open("rb") as stream:
                put = self.store.put(key, stream)

        def apply(session: Session, item: InboundItem) -> None:
            item.ocr_key, item.ocr_sha256, item.ocr_size = key, put.sha256, put.size
            # A born-digital PDF's text layer is the sender's text, NULs included.
            item.ocr_text = storable("\f".join(result.page_texts))
            item.page_count = result.page_count
            item.state = ItemState.OCRED.value

        return apply

    def _unpack(self, snap: InboundItem) -> Apply:
        """Split a mail into parts, store each under the item's keys, OCR scanned attachments."""
        if snap.original_size > self.settings.mail_max_bytes:
            raise PermanentError(f"the mail is larger than {self.settings.mail_max_bytes} bytes")
        with self.store.open(snap.original_key) as reader:
            raw = b"".join(reader)
        try:
            parsed = mail.unpack(raw)
        except mail.MailUnreadable as exc:
            raise PermanentError(f"the mail cannot be read: {exc}") from exc
        except Exception as exc:  # any other parser failure: the mail is the problem, not us
            raise PermanentError(f"the mail cannot be read as MIME: {exc!r}") from exc
        warnings = list(parsed.warnings)
        parts: list[InboundPart] = []
        found: dict[str, object] = {}
        for position, part in enumerate(parsed.parts):
            invoice = invoices.recognise(part.data, part.mime_type) \
                if part.role == "attachment" else None
            content: tuple[bytes, str, str, str | None, int | None]
            if invoice is not None:
                # Filed as it came (a ZUGFeRD PDF keeps its XML); its fields are the text.
                found[str(position)] = invoice.as_dict()
                content = (part.data, part.mime_type, part.name, invoice.summary, None)
            else:
                content = self._part_content(snap, part, warnings)
            data, mime, name, text, pages = content
            key = service.part_key(snap.id, position)
            put = self.store.put(key, io.BytesIO(data))
            parts.append(InboundPart(item_id=snap.id, position=position, role=part.role,
                                     name=storable(name)[:500], mime_type=mime, key=key,
                                     sha256=put.sha256, size=put.size,
                                     text=storable_or_none(text), page_count=pages))
        texts = [parsed.text, *(p.text for p in parts if p.text and p.role != "body")]

        def apply(session: Session, item: InboundItem) -> None:
            repository.delete_parts(session, item.id)
            session.flush()
            session.add_all(parts)
            # Everything here comes from the sender; a NUL in any of it fails the write.
            item.subject = storable(parsed.subject)[:500] or None
            item.sender_address = storable(parsed.sender_address or "")[:320] or None
            item.sender_name = storable(parsed.sender_name or "")[:300] or None
            item.warnings = [storable(w) for w in warnings[:100]] or None
            item.invoices = found or None
            item.ocr_text = storable("\n".join(t for t in texts if t))
            item.state = ItemState.OCRED.value

        return apply

    def _part_content(
        self, snap: InboundItem, part: mail.MailPart, warnings: list[str]
    ) -> tuple[bytes, str, str, str | None, int | None]:
        """A part as it is filed: HTML bodies as PDF, scans OCRed, the rest as they came."""
        if part.role == "body" and part.mime_type == "text/html":
            try:
                pdf = mail.html_to_pdf(part.data.decode("utf-8"))
            except Exception as exc:  # WeasyPrint fails on odd markup; the HTML is kept
                warnings.append(f"{part.name}: could not be rendered as PDF ({exc!r}); "
                                "kept as HTML")
                return part.data, part.mime_type, part.name, part.text, None
            return pdf, "application/pdf", part.name.rsplit(".", 1)[0] + ".pdf", part.text, None
        if part.role != "attachment" or part.mime_type not in SUPPORTED_TYPES:
            return part.data, part.mime_type, part.name, part.text, None
        with tempfile.TemporaryDirectory(prefix="eakte-mail-") as tmp:
            src = Path(tmp) / "attachment"
            out = Path(tmp) / "ocr.pdf"
            src.write_bytes(part.data)
            try:
                result = ocr.run_ocr(src, out, ocr_options(self.settings))
            except ocr.OcrError as exc:
                if not exc.permanent:
                    raise
                # A signed, encrypted or damaged attachment is filed as it came.
                warnings.append(f"{part.name}: not OCRed ({exc.message})")
                return part.data, part.mime_type, part.name, part.text, None
            name = part.name
            if not name.lower().endswith(".pdf"):
                name = name.rsplit(".", 1)[0] + ".pdf"
            return (out.read_bytes(), "application/pdf", name, "\f".join(result.page_texts),
                    result.page_count)

    def _classify(self, snap: InboundItem) -> Apply:
        text = "\n".join(t for t in (snap.subject, snap.original_name, snap.ocr_text) if t)
        candidates = find_references(text)
        reply_refs = self._reply_refs(snap) if service.is_mail(snap) else []
        model = self.models.current()
        proposals = model.propose(snap.ocr_text or "", snap.subject or snap.original_name,
                                  sender_domain(snap.sender_address)) if model else []

        def apply(session: Session, item: InboundItem) -> None:
            if reply_refs:
                # A reply to a letter we sent goes to that letter's file and process. (A file
                # reference in the subject is found below, like one in the text.)
                replied = match_reply(session, reply_refs, None)
                if replied is not None:
                    file, process = replied
                    item.classification = {
                        "method": "reply", "reference": file.reference,
                        "file_id": str(file.id),
                        "process_id": str(process.id) if process else None,
                        "confidence": 1.0, "candidates": candidates,
                        "why": f"a reply to a letter sent from {file.reference}",
                    }
                    item.state = ItemState.CLASSIFIED.value
                    return
            by_reference = {f.reference: f for f in repository.files_by_reference(session,
                                                                                  candidates)}
            match = next((by_reference[r] for r in candidates if r in by_reference), None)
            # Built whole and assigned once: the JSON column does not see in-place changes.
            classification: dict[str, object] = {
                "method": "reference" if match else None,
                "reference": match.reference if match else None,
                "file_id": str(match.id) if match else None,
                "confidence": 1.0 if match else 0.0,
                "candidates": candidates,
                "why": (f"file reference {match.reference} found in the text" if match
                        else "no known file reference in the text"),
            }
            sender_candidates: list[dict[str, object]] = []
            if match is None and service.is_mail(item):
                sender = match_sender(session, address=item.sender_address,
                                      name=item.sender_name, text=item.ocr_text or "",
                                      region=self.settings.default_region)
                classification.update({
                    "method": sender.method,
                    "reference": sender.reference,
                    "file_id": str(sender.file_id) if sender.file_id else None,
                    "confidence": 1.0 if sender.file_id else 0.0,
                    "sender_contact_id": str(sender.contact_id) if sender.contact_id else None,
                    "why": (sender.why if sender.file_id
                            else f"{classification['why']}; {sender.why}"),
                })
                sender_candidates = [c.as_dict() for c in sender.candidates]
            # What triage shows: the sender's files first (a person knows them), then the
            # model's best guesses; three at most, each with its confidence and reason.
            shown: list[dict[str, object]] = []
            if match is None:
                for proposal in sender_candidates + [p.as_dict() for p in proposals]:
                    if all(proposal["file_id"] != s["file_id"] for s in shown):
                        shown.append(proposal)
            if shown:
                classification["proposals"] = shown[:3]
            if classification.get("file_id") is None and proposals:
                best = proposals[0]
                if best.confidence >= self.settings.classifier_threshold:
                    classification.update({
                        "method": "model", "reference": best.reference,
                        "file_id": best.file_id, "confidence": round(best.confidence, 4),
                        "kind": best.kind, "why": best.why,
                    })
                else:
                    classification["why"] = (
                        f"{classification['why']}; the model's best guess {best.reference} "
                        f"has confidence {best.confidence:.2f}, below "
                        f"{self.settings.classifier_threshold:.2f}")
            item.classification = classification
            item.state = ItemState.CLASSIFIED.value

        return apply

    def _file(self, snap: InboundItem) -> Apply:
        target = (snap.classification or {}).get("file_id")
        file = None
        if target:
            with unit_of_work(self.factory) as session:
                file = session.get(File, uuid.UUID(str(target)))
                if file is not None:
                    session.expunge(file)
        if file is None or file.status != FileStatus.OPEN.value:
            reason = ("the file it names is no longer open" if file is not None
                      else (snap.classification or {}).get("why", "not classified"))

            def to_triage(session: Session, item: InboundItem) -> None:
                item.state = ItemState.TRIAGE.value
                item.lease_owner = item.lease_expires_at = None
                item.classification = {**(item.classification or {}), "triage_reason": reason}
                record(session, "inbox-worker", "inbox.triage", "inbound_item", item.id,
                       reason=str(reason))

            return to_triage
        with unit_of_work(self.factory) as session:
            parts = service.item_parts(session, snap.id)
        prepared = service.prepare_documents(self.store, snap, parts)
        principal = service.worker_principal(file)
        file_id = file.id
        method = str((snap.classification or {}).get("method") or "reference")
        kind = _kind((snap.classification or {}).get("kind"))
        process = (snap.classification or {}).get("process_id")
        process_id = uuid.UUID(str(process)) if process else None

        def file_it(session: Session, item: InboundItem) -> None:
            service.file_item(session, principal, item.id, file_id, prepared, method=method,
                              kind=kind, process_id=process_id)

        return file_it

    def _reply_refs(self, snap: InboundItem) -> list[str]:
        """The Message-IDs a mail answers (In-Reply-To, References), read from its headers."""
        head_end = min(snap.original_size, REPLY_HEADER_BYTES) - 1
        if head_end < 0:
            return []
        with self.store.open(snap.original_key, 0, head_end) as reader:
            head = b"".join(reader)
        # Only the header block: the body may be cut anywhere by the byte limit.
        headers = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
        try:
            message = mail.parse_headers(headers + b"\r\n\r\n")
            values = [str(message.get(name) or "") for name in ("In-Reply-To", "References")]
        except Exception:  # a broken header only means: not recognisable as a reply
            return []
        return [ref for value in values for ref in re.findall(r"<[^<>\s]+>", value)]

    # -- outcomes ---------------------------------------------------------------------------
    def _release(self, item_id: uuid.UUID) -> None:
        with unit_of_work(self.factory) as session:
            item = repository.locked(session, item_id)
            if item is not None and item.lease_owner == self.worker_id:
                item.lease_owner = item.lease_expires_at = None

    def _quarantine(self, item_id: uuid.UUID, state: str, reason: str) -> None:
        reason = storable(reason)  # it may quote the input, NULs and all
        with unit_of_work(self.factory) as session:
            item = self._held(session, item_id, state)
            if item is None:
                return
            item.state = ItemState.QUARANTINED.value
            item.quarantine_reason = f"{state}: {reason}"
            item.lease_owner = item.lease_expires_at = None
            record(session, "inbox-worker", "inbox.quarantined", "inbound_item", item.id,
                   step=state, reason=reason)
        log.warning("item %s quarantined in step %s: %s", item_id, state, reason)

    def _retry(self, item_id: uuid.UUID, state: str, error: str) -> None:
        error = storable(error)
        with unit_of_work(self.factory) as session:
            item = self._held(session, item_id, state)
            if item is None:
                return
            # The attempt was counted when the item was claimed (see _claim).
            item.last_error = error
            item.lease_owner = item.lease_expires_at = None
            if item.attempts >= self.settings.inbox_max_attempts:
                self._give_up(session, item, state, error)
                return
            delay = min(self.settings.inbox_retry_base_seconds * 2 ** (item.attempts - 1),
                        MAX_RETRY_DELAY_SECONDS)
            item.next_attempt_at = utcnow() + timedelta(seconds=delay)
        log.warning("item %s: %s failed (%s); retry in %.0f s", item_id, state, error, delay)

    def _give_up(self, session: Session, item: InboundItem, state: str, error: str) -> None:
        """Quarantine an item whose attempts are used up, naming the last error."""
        item.state = ItemState.QUARANTINED.value
        item.quarantine_reason = (f"{state}: gave up after {item.attempts} attempts; "
                                  f"last error: {error}")
        item.lease_owner = item.lease_expires_at = None
        record(session, "inbox-worker", "inbox.quarantined", "inbound_item", item.id,
               step=state, reason=item.quarantine_reason)


def _kind(value: object) -> DocumentKind:
    try:
        return DocumentKind(str(value))
    except ValueError:
        return DocumentKind.INCOMING


_STEPS: dict[ItemState, Callable[[Worker, InboundItem], Apply]] = {
    ItemState.RECEIVED: Worker._type,
    ItemState.TYPED: Worker._ocr,
    ItemState.OCRED: Worker._classify,
    ItemState.CLASSIFIED: Worker._file,
}


class _Heartbeat:
    """Renews a worker's lease on an item while a step runs."""

    def __init__(self, worker: Worker, item_id: uuid.UUID) -> None:
        self._worker = worker
        self._item_id = item_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"lease-{item_id}")

    def _beat(self) -> None:
        interval = self._worker.settings.inbox_lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                if not self._worker.renew_lease(self._item_id):
                    return
            except TRANSIENT_ERRORS as exc:
                log.warning("could not renew lease on %s: %s", self._item_id, exc)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

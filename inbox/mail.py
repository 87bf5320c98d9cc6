"""Unpacking an e-mail (.eml) into the parts that become documents: body, attachments, images.

Parsing uses the standard library's `email` package with `policy.default`. Real mail is often
broken: missing boundaries, unknown charsets, absurdly deep nesting. None of that raises here;
each oddity becomes a warning on the item, and what can be read is kept. The original .eml is
never changed, so nothing is lost when the unpacking has to guess.
"""

from __future__ import annotations

import codecs
import html
import html.parser
import logging
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

import magic

from inbox.text import storable

log = logging.getLogger(__name__)

# Deeper nesting than this is kept as an unopened .eml attachment: a forward of a forward of
# a forward is real, a thousand levels is an attack on the parser's recursion.
MAX_DEPTH = 10
MAX_MULTIPART_NESTING = 50
MAX_PARTS = 200
MAGIC_HEAD = 8192


@dataclass
class MailPart:
    """One piece of a mail that becomes a document: the body, an attachment, an inline image."""

    role: str  # body | attachment | inline
    name: str
    mime_type: str  # detected from the bytes (python-magic), not the sender's claim
    data: bytes
    text: str | None = None  # readable text of a body, for classification and search


@dataclass
class ParsedMail:
    """What the inbox needs of a mail: its headers, its parts and what was odd about it."""

    message_id: str | None
    subject: str
    sender_address: str | None
    sender_name: str | None
    parts: list[MailPart] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Subject and every readable text of the mail, for references and classification."""
        texts = [self.subject, *(p.text for p in self.parts if p.text)]
        return "\n".join(t for t in texts if t)


def parse_headers(raw: bytes) -> EmailMessage:
    """The message with headers parsed (its body is parsed too; use for Message-ID and sender)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage):  # policy.default always makes EmailMessage
        raise TypeError("the parser did not return an EmailMessage")
    return message


def message_id(raw: bytes) -> str | None:
    """The Message-ID of a mail, without angle brackets and blanks, or None."""
    try:
        value = parse_headers(raw).get("Message-ID")
    except Exception:  # a header this broken just means: no usable id
        return None
    return _clean_message_id(str(value)) if value is not None else None


def _clean_message_id(value: str) -> str | None:
    # A NUL in the id would make PostgreSQL refuse every lookup and insert of the receipt.
    cleaned = "".join(storable(value).split()).strip("<>")
    return cleaned[:900] or None


def looks_like_mail(head: bytes) -> bool:
    """Whether the first bytes of a file read as an RFC 5322 message (headers, then a body)."""
    sample = head[:4096].decode("latin-1")
    names = {m.group(1).lower() for m in re.finditer(r"(?m)^([A-Za-z][\w-]*):", sample)}
    return len(names & {"from", "to", "subject", "date", "message-id", "mime-version",
                        "received", "return-path", "content-type"}) >= 3


def unpack(raw: bytes) -> ParsedMail:
    """Split a mail into its documents; oddities become warnings.

    Raises MailUnreadable only when the standard library's parser itself gives up (nesting
    so deep that it exhausts the recursion limit): then there is nothing to unpack.
    """
    try:
        message = parse_headers(raw)
        return _unpack(message)
    except RecursionError:
        raise MailUnreadable("the MIME parts are nested too deeply to read") from None


class MailUnreadable(Exception):
    """A mail the parser cannot read at all."""


def _unpack(message: EmailMessage) -> ParsedMail:
    subject = _header(message, "Subject", [])
    sender_name, sender_address = _sender(message)
    mid = message.get("Message-ID")
    mail = ParsedMail(
        message_id=_clean_message_id(str(mid)) if mid is not None else None,
        subject=" ".join(subject.split())[:500],
        sender_address=sender_address,
        sender_name=sender_name,
    )
    _walk(message, mail, depth=0, prefix="")
    if not any(p.role == "body" for p in mail.parts):
        mail.warnings.append("the mail has no readable body")
    return mail


def _header(message: Message, name: str, warnings: list[str]) -> str:
    try:
        value = message.get(name)
    except Exception as exc:  # policy.default parses lazily; a broken header raises here
        warnings.append(f"unreadable {name} header: {exc}")
        return ""
    return str(value) if value is not None else ""


def _sender(message: Message) -> tuple[str | None, str | None]:
    try:
        header = message.get("From")
        addresses: tuple[Address, ...] = getattr(header, "addresses", ())
        if addresses:
            address = addresses[0]
            addr = address.addr_spec.lower() if "@" in address.addr_spec else None
            return (address.display_name or None, addr)
    except Exception as exc:  # a From header the strict parser rejects; try leniently below
        log.info("strict parse of From failed (%s); using the lenient parser", exc)
    raw_from = message.get_all("From", []) if hasattr(message, "get_all") else []
    pairs = getaddresses([str(v) for v in raw_from]) or [parseaddr("")]
    name, addr = pairs[0]
    return (name or None, addr.lower() if "@" in addr else None)


def _walk(part: Message, mail: ParsedMail, depth: int, prefix: str, nesting: int = 0) -> None:
    if nesting > MAX_MULTIPART_NESTING:
        if not any("multipart nesting" in w for w in mail.warnings):
            mail.warnings.append(f"multipart nesting deeper than {MAX_MULTIPART_NESTING} levels "
                                 "is not opened; its content stays in the original")
        return
    if len(mail.parts) >= MAX_PARTS:
        mail.warnings.append(f"more than {MAX_PARTS} parts; the rest stays in the original")
        return
    for defect in getattr(part, "defects", []):
        mail.warnings.append(f"{prefix or 'message'}: {type(defect).__name__}")
    ctype = part.get_content_type()
    if part.is_multipart():
        payload = part.get_payload()
        children = [c for c in payload if isinstance(c, Message)] \
            if isinstance(payload, list) else []
        if ctype == "message/rfc822":
            _nested(children[0] if children else None, part, mail, depth, prefix)
        elif ctype == "multipart/alternative":
            _alternative(children, mail, depth, prefix, nesting + 1)
        else:
            for child in children:
                _walk(child, mail, depth, prefix, nesting + 1)
        return
    _leaf(part, mail, depth, prefix)


def _nested(inner: Message | None, outer: Message, mail: ParsedMail, depth: int,
            prefix: str) -> None:
    if inner is None:
        mail.warnings.append("an attached message is empty")
        return
    subject = " ".join(_header(inner, "Subject", mail.warnings).split())
    if depth + 1 > MAX_DEPTH:
        mail.warnings.append(f"messages nested deeper than {MAX_DEPTH} levels are kept unopened")
        data = inner.as_bytes(policy=policy.default.clone(linesep="\r\n"))
        mail.parts.append(MailPart("attachment", _safe_name(subject or "Nachricht") + ".eml",
                                   "message/rfc822", data))
        return
    # Only the innermost forward names a part; a chain of prefixes would outgrow any title.
    label = f"Weitergeleitet ({depth + 1}): {subject[:100] or 'Nachricht'} / "
    _walk(inner, mail, depth + 1, label)


def _alternative(children: list[Message], mail: ParsedMail, depth: int, prefix: str,
                 nesting: int) -> None:
    # The plain version is the sender's own text; the HTML one is only shown when it is all.
    by_type = {c.get_content_type(): c for c in children}
    chosen = by_type.get("text/plain") or by_type.get("text/html")
    for child in children:
        if child is chosen or child.is_multipart():
            _walk(child, mail, depth, prefix, nesting)


def _leaf(part: Message, mail: ParsedMail, depth: int, prefix: str) -> None:
    ctype = part.get_content_type()
    if ctype.startswith("multipart/"):
        # A multipart whose boundary is missing or never appears: the parser leaves its
        # whole payload as text, so it is read as the text it is (the defect is warned).
        ctype = "text/plain"
    filename: str | None
    try:
        filename = part.get_filename()
    except Exception as exc:
        mail.warnings.append(f"{prefix}unreadable file name: {exc}")
        filename = None
    disposition = (part.get_content_disposition() or "").lower()
    try:
        data = part.get_payload(decode=True) or b""
    except Exception as exc:
        mail.warnings.append(f"{prefix}undecodable part {ctype}: {exc}")
        data = b""
    if not isinstance(data, bytes):
        data = b""
    has_body = any(p.role == "body" and p.name.startswith(f"{prefix}Nachricht.")
                   for p in mail.parts)
    is_text_body = (ctype in ("text/plain", "text/html") and disposition != "attachment"
                    and not filename and not has_body)
    if is_text_body:
        text = _decode(part, data, mail.warnings, prefix)
        if ctype == "text/html":
            plain = html_to_text(text)
            mail.parts.append(MailPart("body", f"{prefix}Nachricht.html", "text/html",
                                       text.encode("utf-8"), plain))
        else:
            mail.parts.append(MailPart("body", f"{prefix}Nachricht.txt", "text/plain",
                                       text.encode("utf-8"), text))
        return
    if not data:
        mail.warnings.append(f"{prefix}empty attachment {filename or ctype} skipped")
        return
    role = "inline" if (disposition == "inline" or part.get("Content-ID")) and \
        ctype.startswith("image/") and not filename else "attachment"
    detected = magic.from_buffer(data[:MAGIC_HEAD], mime=True) or "application/octet-stream"
    readable: str | None = None
    if detected.startswith("text/") and ctype.startswith("text/"):
        readable = _decode(part, data, mail.warnings, prefix)
    name = _safe_name(filename) if filename else f"{role}-{len(mail.parts) + 1}{_suffix(detected)}"
    mail.parts.append(MailPart(role, f"{prefix}{name}", detected, data, readable))


def _decode(part: Message, data: bytes, warnings: list[str], prefix: str) -> str:
    charset = part.get_content_charset() or "us-ascii"
    try:
        codecs.lookup(charset)
    except LookupError:
        warnings.append(f"{prefix}unknown charset {charset!r}; read as UTF-8 or Latin-1")
        charset = "utf-8"
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        # Mislabelled text is common; Latin-1 reads every byte, so nothing is dropped.
        warnings.append(f"{prefix}text is not valid {charset}; read as Latin-1")
        return data.decode("latin-1")


def _safe_name(name: str) -> str:
    cleaned = "".join(ch for ch in name.replace("/", "_").replace("\\", "_") if ch.isprintable())
    return cleaned.strip()[:200] or "Anhang"


_SUFFIXES = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg",
             "image/tiff": ".tif", "image/gif": ".gif", "text/plain": ".txt",
             "text/html": ".html", "application/xml": ".xml", "text/xml": ".xml"}


def _suffix(mime: str) -> str:
    return _SUFFIXES.get(mime, ".bin")


class _TextExtractor(html.parser.HTMLParser):
    _SKIP = {"script", "style", "head", "title"}
    _BREAKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)


def html_to_text(markup: str) -> str:
    """The readable text of an HTML body (scripts and styles dropped)."""
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
    except Exception:  # HTMLParser is lenient; this is a last resort for absurd input
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    lines = (" ".join(line.split()) for line in "".join(extractor.chunks).splitlines())
    return "\n".join(line for line in lines if line)


def html_to_pdf(markup: str) -> bytes:
    """Render an HTML mail body as PDF, loading nothing from outside the mail."""
    import weasyprint  # type: ignore[import-untyped]  # imported late: it loads Pango
    from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

    # No protocol allowed: a mail's HTML must not make the server fetch anything (tracking
    # pixels, requests to internal addresses on the sender's behalf). Refused images are
    # left out of the PDF; the original .eml still has them.
    refuse_all = URLFetcher(allowed_protocols=(), fail_on_errors=False, timeout=1)
    pdf: bytes = weasyprint.HTML(string=markup, url_fetcher=refuse_all).write_pdf()
    return pdf

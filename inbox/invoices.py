"""Recognising electronic invoices: XRechnung (UBL and CII) and ZUGFeRD / Factur-X PDFs.

An XRechnung is plain XML in one of two syntaxes (OASIS UBL 2.1 or UN/CEFACT CII); a ZUGFeRD or
Factur-X invoice is a PDF carrying the CII XML as an embedded file. The embedded file is read
with pikepdf, and all XML is parsed with defusedxml, which refuses entity expansion and external
references: an invoice comes from outside and its XML is untrusted.
"""

from __future__ import annotations

import io
import logging
import zlib
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

if TYPE_CHECKING:
    import pikepdf

log = logging.getLogger(__name__)

UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "rsm": CII,
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
# Names the standards give the embedded XML (ZUGFeRD 1 and 2, Factur-X, XRechnung in a PDF).
EMBEDDED_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml", "zugferd_invoice.xml")
# Real invoices are kilobytes; even one with thousands of lines stays far below this. It also
# caps what an embedded file may decompress to: a few hundred kilobytes of Flate data can
# inflate to gigabytes, and a worker must never hold that in memory.
MAX_XML_BYTES = 20 * 1024 * 1024
XML_TYPES = ("application/xml", "text/xml")


@dataclass(frozen=True)
class Invoice:
    """What the inbox keeps of an e-invoice: who, which, when, how much."""

    format: str  # xrechnung-ubl | xrechnung-cii | zugferd
    profile: str | None
    seller: str | None
    number: str | None
    issue_date: str | None  # ISO date
    gross_amount: str | None  # decimal as text, exact
    currency: str | None
    buyer_reference: str | None = None  # BT-10: often the Leitweg-ID or the file reference

    def as_dict(self) -> dict[str, str | None]:
        """The fields as JSON-ready values."""
        return asdict(self)

    @property
    def title(self) -> str:
        """A document title: `Rechnung <number> von <seller>`."""
        title = f"Rechnung {self.number or 'ohne Nummer'}"
        return f"{title} von {self.seller}" if self.seller else title

    @property
    def summary(self) -> str:
        """A line of searchable text for the document."""
        parts = [self.title, self.issue_date or "", f"{self.gross_amount or ''} "
                 f"{self.currency or ''}".strip(), self.buyer_reference or ""]
        return " ".join(p for p in parts if p)


def recognise(data: bytes, mime: str) -> Invoice | None:
    """The invoice in a PDF or XML document, or None if it is none (or unreadable)."""
    if mime == "application/pdf":
        return from_pdf(data)
    if mime in XML_TYPES or data.lstrip()[:5] == b"<?xml":
        return from_xml(data, embedded=False)
    return None


def from_xml(data: bytes, *, embedded: bool) -> Invoice | None:
    """Read a UBL or CII invoice; None if the XML is no invoice or cannot be parsed safely."""
    if len(data) > MAX_XML_BYTES:
        return None
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        log.info("XML is not a readable invoice: %s", exc)
        return None
    if root.tag in (f"{{{UBL_INVOICE}}}Invoice", f"{{{UBL_CREDIT_NOTE}}}CreditNote"):
        return _ubl(root, embedded)
    if root.tag == f"{{{CII}}}CrossIndustryInvoice":
        return _cii(root, embedded)
    return None


def from_pdf(data: bytes) -> Invoice | None:
    """The invoice XML embedded in a ZUGFeRD / Factur-X PDF, if there is one."""
    import pikepdf  # here: a server that runs no inbox worker never needs it (15 MiB)

    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            attachments = {name.lower(): spec for name, spec in pdf.attachments.items()}
            for name in EMBEDDED_NAMES:
                spec = attachments.get(name)
                if spec is None:
                    continue
                xml = _embedded_xml(spec.get_file().obj, MAX_XML_BYTES)
                return from_xml(xml, embedded=True) if xml is not None else None
    except Exception as exc:  # pikepdf raises many kinds on hostile PDFs; none is fatal here
        log.info("PDF not checked for an embedded invoice: %s", exc)
    return None


def _embedded_xml(stream: pikepdf.Object, limit: int) -> bytes | None:
    """An embedded file's content if it decodes to at most `limit` bytes, else None.

    pikepdf's `read_bytes` would decode the whole stream first, and the size the PDF states
    for the file (`/Params /Size`) is the sender's claim. So the stream is read raw (never
    larger than the PDF) and inflated here with a cap on the output. Only the encodings
    invoice generators use are read: none, or Flate without a predictor. Anything else is
    treated as no invoice; the PDF is then filed as the scan or attachment it also is.
    """
    import pikepdf

    filters = stream.get("/Filter")
    names = ([] if filters is None
             else [str(f) for f in filters] if isinstance(filters, pikepdf.Array)
             else [str(filters)])
    params = stream.get("/DecodeParms")
    if isinstance(params, pikepdf.Array):
        params = params[0] if len(params) == 1 else None
    predictor = params.get("/Predictor", 1) if isinstance(params, pikepdf.Dictionary) else 1
    raw = stream.read_raw_bytes()
    if not names:
        content = raw
    elif names == ["/FlateDecode"] and int(predictor) == 1:
        try:
            # One byte beyond the cap tells "too large" from "exactly at the cap".
            content = zlib.decompressobj().decompress(raw, limit + 1)
        except zlib.error as exc:
            log.info("embedded invoice file is damaged Flate data: %s", exc)
            return None
    else:
        log.info("embedded invoice file uses encoding %s (predictor %s); not read", names,
                 predictor)
        return None
    if len(content) > limit:
        log.info("embedded invoice file decodes to more than %s bytes; not read", limit)
        return None
    return content


def _text(root: Element, path: str) -> str | None:
    found = root.find(path, NS)
    if found is None or found.text is None:
        return None
    return " ".join(found.text.split()) or None


def _amount(root: Element, path: str) -> tuple[str | None, str | None]:
    found = root.find(path, NS)
    if found is None or found.text is None:
        return None, None
    try:
        value = Decimal(found.text.strip())
    except InvalidOperation:
        return None, found.get("currencyID")
    return str(value), found.get("currencyID")


def _ubl(root: Element, embedded: bool) -> Invoice:
    seller = (_text(root, "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/"
                          "cbc:RegistrationName")
              or _text(root, "cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name"))
    amount, currency = _amount(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount")
    issued = _text(root, "cbc:IssueDate")
    return Invoice(
        format="zugferd" if embedded else "xrechnung-ubl",
        profile=_text(root, "cbc:CustomizationID"),
        seller=seller,
        number=_text(root, "cbc:ID"),
        issue_date=_iso(issued, "%Y-%m-%d"),
        gross_amount=amount,
        currency=currency or _text(root, "cbc:DocumentCurrencyCode"),
        buyer_reference=_text(root, "cbc:BuyerReference"),
    )


def _cii(root: Element, embedded: bool) -> Invoice:
    trade = "rsm:SupplyChainTradeTransaction/"
    amount, currency = _amount(
        root, trade + "ram:ApplicableHeaderTradeSettlement/"
        "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount")
    issued = _text(root, "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString")
    return Invoice(
        format="zugferd" if embedded else "xrechnung-cii",
        profile=_text(root, "rsm:ExchangedDocumentContext/"
                            "ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"),
        seller=_text(root, trade + "ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/"
                                   "ram:Name"),
        number=_text(root, "rsm:ExchangedDocument/ram:ID"),
        issue_date=_iso(issued, "%Y%m%d"),
        gross_amount=amount,
        currency=currency or _text(root, trade + "ram:ApplicableHeaderTradeSettlement/"
                                                 "ram:InvoiceCurrencyCode"),
        buyer_reference=_text(root, trade + "ram:ApplicableHeaderTradeAgreement/"
                                            "ram:BuyerReference"),
    )


def _iso(value: str | None, pattern: str) -> str | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.strip()[:10], pattern).date().isoformat()
    except ValueError:
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            return None

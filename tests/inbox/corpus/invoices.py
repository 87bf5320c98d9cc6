"""Small e-invoices in both XRechnung syntaxes and as a Factur-X PDF, made for the tests."""

from __future__ import annotations

import io
import zlib

import pikepdf


def ubl(number: str = "R-2026-0815", buyer_reference: str = "04011000-1234-56") -> bytes:
    """An XRechnung in UBL 2.1 syntax."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ubl:Invoice xmlns:ubl="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0</cbc:CustomizationID>
  <cbc:ID>{number}</cbc:ID>
  <cbc:IssueDate>2026-11-02</cbc:IssueDate>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cbc:BuyerReference>{buyer_reference}</cbc:BuyerReference>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyName><cbc:Name>Bauhof Nord</cbc:Name></cac:PartyName>
    <cac:PartyLegalEntity>
      <cbc:RegistrationName>Bauhof Nord GmbH</cbc:RegistrationName>
    </cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:LegalMonetaryTotal>
    <cbc:TaxExclusiveAmount currencyID="EUR">1000.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="EUR">1190.00</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="EUR">1190.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
</ubl:Invoice>
""".encode()


def cii(number: str = "FX-4711", buyer_reference: str = "") -> bytes:
    """An invoice in UN/CEFACT CII syntax (XRechnung CII, and the XML inside Factur-X)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice
  xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
  xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter>
      <ram:ID>urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended</ram:ID>
    </ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{number}</ram:ID><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime>
      <udt:DateTimeString format="102">20261103</udt:DateTimeString>
    </ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:BuyerReference>{buyer_reference}</ram:BuyerReference>
      <ram:SellerTradeParty><ram:Name>Müller &amp; Söhne KG</ram:Name></ram:SellerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:TaxBasisTotalAmount>200.00</ram:TaxBasisTotalAmount>
        <ram:GrandTotalAmount>238.00</ram:GrandTotalAmount>
        <ram:DuePayableAmount>238.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
""".encode()


def facturx_pdf(xml: bytes | None = None, name: str = "factur-x.xml") -> bytes:
    """A one-page PDF carrying CII XML as an embedded file, as Factur-X / ZUGFeRD do."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    spec = pikepdf.AttachedFileSpec(pdf, xml or cii(), mime_type="text/xml",
                                    description="Factur-X invoice")
    pdf.attachments[name] = spec
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def entity_bomb() -> bytes:
    """A billion-laughs document dressed as an invoice: must be refused, never expanded."""
    return b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol3;</Invoice>
"""


def external_entity() -> bytes:
    """An invoice that tries to read a local file through an external entity."""
    return b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:ID>&secret;</cbc:ID></Invoice>
"""


def inflating_pdf(inflated_bytes: int, claimed_size: int = 4096) -> bytes:
    """A Factur-X PDF whose embedded XML is a Flate bomb: a valid invoice, then blanks.

    A few hundred kilobytes in the PDF inflate to `inflated_bytes`, and the file
    specification claims `claimed_size`, as a hostile sender would write it.
    """
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    spec = pikepdf.AttachedFileSpec(pdf, cii(), mime_type="text/xml")
    pdf.attachments["factur-x.xml"] = spec
    deflate = zlib.compressobj(6)
    pieces = [deflate.compress(cii())]
    blanks = b" " * (1 << 20)
    for _ in range(max(0, inflated_bytes - len(cii())) // len(blanks)):
        pieces.append(deflate.compress(blanks))
    pieces.append(deflate.flush())
    stream = pdf.attachments["factur-x.xml"].get_file().obj
    stream.write(b"".join(pieces), filter=pikepdf.Name.FlateDecode)
    stream.Params.Size = claimed_size
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def facturx_pdf_encoded(xml: bytes, *, flate: bool) -> bytes:
    """A Factur-X PDF whose embedded XML is stored Flate-compressed or not encoded at all."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    pdf.attachments["factur-x.xml"] = pikepdf.AttachedFileSpec(pdf, xml, mime_type="text/xml")
    stream = pdf.attachments["factur-x.xml"].get_file().obj
    if flate:
        stream.write(zlib.compress(xml), filter=pikepdf.Name.FlateDecode)
    else:
        stream.write(xml)
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()

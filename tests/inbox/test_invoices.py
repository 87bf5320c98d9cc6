"""E-invoices (XRechnung UBL and CII, ZUGFeRD / Factur-X) are recognised and filed as invoices."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from inbox import invoices
from tests.inbox import corpus
from tests.inbox.conftest import Office
from tests.inbox.corpus import invoices as samples
from tests.inbox.test_mail import documents_of, submit_eml
from tests.support.server import clean_env


def test_xrechnung_ubl_fields_are_extracted() -> None:
    invoice = invoices.recognise(samples.ubl(), "text/xml")
    assert invoice is not None
    assert (invoice.format, invoice.seller, invoice.number, invoice.issue_date,
            invoice.gross_amount, invoice.currency) == (
        "xrechnung-ubl", "Bauhof Nord GmbH", "R-2026-0815", "2026-11-02", "1190.00", "EUR")
    assert invoice.profile and "xrechnung" in invoice.profile


def test_xrechnung_cii_fields_are_extracted() -> None:
    invoice = invoices.recognise(samples.cii(), "application/xml")
    assert invoice is not None
    assert (invoice.format, invoice.seller, invoice.number, invoice.issue_date,
            invoice.gross_amount) == ("xrechnung-cii", "Müller & Söhne KG", "FX-4711",
                                      "2026-11-03", "238.00")


def test_facturx_pdf_is_read_from_its_embedded_xml() -> None:
    invoice = invoices.recognise(samples.facturx_pdf(), "application/pdf")
    assert invoice is not None
    assert (invoice.format, invoice.number, invoice.gross_amount) == ("zugferd", "FX-4711",
                                                                      "238.00")
    legacy = invoices.recognise(samples.facturx_pdf(name="ZUGFeRD-invoice.xml"),
                                "application/pdf")
    assert legacy is not None and legacy.seller == "Müller & Söhne KG"


@pytest.mark.parametrize("data,mime", [
    (samples.entity_bomb(), "text/xml"),
    (samples.external_entity(), "text/xml"),
    (samples.facturx_pdf(samples.entity_bomb()), "application/pdf"),
    (b"<?xml version='1.0'?><html/>", "text/xml"),
    (b"%PDF-1.7 broken", "application/pdf"),
])
def test_hostile_or_foreign_documents_are_no_invoice(data: bytes, mime: str) -> None:
    assert invoices.recognise(data, mime) is None


def test_mail_with_an_xrechnung_attachment_files_it_as_an_invoice(office: Office) -> None:
    pdf = samples.facturx_pdf()
    raw = corpus.simple(f"Rechnung zu {office.file['reference']}", "Anbei unsere Rechnung.",
                        attachments=[("rechnung.xml", "application/xml", samples.ubl()),
                                     ("rechnung.pdf", "application/pdf", pdf)])
    item = submit_eml(office, raw)
    office.worker().run_until_idle()

    shown = office.item(item["id"])
    assert shown["state"] == "filed", shown
    assert {v["number"] for v in shown["invoices"].values()} == {"R-2026-0815", "FX-4711"}
    docs: dict[str, dict[str, Any]] = {d["title"]: d for d in documents_of(office)}
    ubl_doc = docs["Rechnung R-2026-0815 von Bauhof Nord GmbH"]
    assert ubl_doc["kind"] == "invoice"
    pdf_doc = docs["Rechnung FX-4711 von Müller & Söhne KG"]
    assert pdf_doc["kind"] == "invoice"
    # Filed as it came: the PDF still carries its XML.
    content = office.api.client.get(f"/api/v1/documents/{pdf_doc['id']}/versions/1/content",
                                    headers=office.unit.clerk).content
    assert content == pdf
    body = next(d for d in docs.values() if d["id"] == shown["filed_document_id"])
    assert body["kind"] == "incoming"


def test_uploaded_zugferd_pdf_and_xrechnung_xml_are_filed_as_invoices(office: Office) -> None:
    reference = office.file["reference"]
    uploads = {
        "zugferd.pdf": samples.facturx_pdf(samples.cii("FX-1", buyer_reference=reference)),
        "xrechnung.xml": samples.ubl("R-9", buyer_reference=reference),
    }
    ids = []
    for name, data in uploads.items():
        r = office.api.client.post("/api/v1/inbox", files={"file": (name, data)},
                                   headers=office.mailroom)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    office.worker().run_until_idle()

    for item_id in ids:
        assert office.item(item_id)["state"] == "filed", office.item(item_id)
    kinds = {d["title"]: d["kind"] for d in documents_of(office)}
    assert kinds == {"Rechnung FX-1 von Müller & Söhne KG": "invoice",
                     "Rechnung R-9 von Bauhof Nord GmbH": "invoice"}


def test_other_xml_is_quarantined_as_no_invoice(office: Office) -> None:
    r = office.api.client.post("/api/v1/inbox", headers=office.mailroom,
                               files={"file": ("bombe.xml", samples.entity_bomb())})
    item = r.json()
    office.worker().run_until_idle()
    shown = office.item(item["id"])
    assert shown["state"] == "quarantined"
    assert "no xrechnung" in shown["quarantine_reason"].lower()


MEASURE = textwrap.dedent("""
    import resource, sys
    import pikepdf  # loaded before the first measurement, like in a running worker
    from inbox import invoices

    data = open(sys.argv[1], "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    invoice = invoices.recognise(data, "application/pdf")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(invoice is None, (after - before) // 1024)
""")


def test_an_inflating_embedded_invoice_is_no_invoice_and_costs_no_memory(
    tmp_path: Path,
) -> None:
    # 256 MiB behind a quarter of a megabyte of Flate data, with a small size claimed. Read
    # whole, it would take at least twice that (the decoded buffer and its copy).
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(samples.inflating_pdf(256 * 1024 * 1024))
    assert bomb.stat().st_size < 1024 * 1024
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    proc = subprocess.run([sys.executable, str(script), str(bomb)], env=clean_env(),
                          cwd=Path(__file__).parents[2], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    no_invoice, grown_mib = proc.stdout.split()
    assert no_invoice == "True"
    assert int(grown_mib) < 96, f"recognising the bomb took {grown_mib} MiB"


@pytest.mark.parametrize("flate", [True, False])
def test_embedded_invoices_below_the_cap_are_read_whatever_their_encoding(flate: bool) -> None:
    # A valid invoice with a megabyte of trailing blanks: large, but a plausible size.
    xml = samples.cii("FX-77") + b" " * (1024 * 1024)
    invoice = invoices.recognise(samples.facturx_pdf_encoded(xml, flate=flate),
                                 "application/pdf")
    assert invoice is not None and invoice.number == "FX-77"
    padded = invoices.recognise(samples.inflating_pdf(2 * 1024 * 1024), "application/pdf")
    assert padded is not None and padded.number == "FX-4711"

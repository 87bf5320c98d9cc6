"""The handover package: complete, well-formed and readable by the archive, before any receipt."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest

from tests import factories
from tests.conftest import Api
from tests.retention.helpers import PDF, Office, approved_run, close, office

NS = {"x": "urn:xoev-de:xdomea:schema:3.0.0"}
LONG_AGO = "2012-06-01T10:00:00+02:00"


def _transferred(api: Api, o: Office) -> dict[str, Any]:
    """Approve and execute a run of everything due in the office's unit (value A)."""
    run = approved_run(api, o, date.today().isoformat())
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/execute", headers=o.anna)
    assert r.status_code == 200 and r.json()["items"] == {"transferred": 1}, r.text
    return run


def _package(api: Api, o: Office, run: dict[str, Any]) -> zipfile.ZipFile:
    r = api.client.get(f"/api/v1/retention/runs/{run['id']}/package", headers=o.anna)
    assert r.status_code == 200, r.text
    return zipfile.ZipFile(io.BytesIO(r.content))


def _message(package: zipfile.ZipFile, run: dict[str, Any]) -> Any:
    return SafeET.fromstring(package.read(f"{run['id']}_Aussonderung.Aussonderung.0503.xml"))


def _archive_file(api: Api, o: Office, title: str = "Bauantrag") -> dict[str, Any]:
    item = factories.plan_item(api, retention_years=5, archive_value="A")
    return factories.file(api, o.unit, item["code"], title=title)


def test_titles_with_control_characters_give_a_well_formed_message(api: Api) -> None:
    o = office(api)
    f = _archive_file(api, o, title="Bauantrag\x0bHofstraße\x1b")
    p = api.client.post(
        f"/api/v1/files/{f['id']}/processes",
        json={"title": "Nachtrag\x01"},
        headers=o.unit.clerk,
    )
    assert p.status_code == 201, p.text
    r = factories.upload(api, o.unit.clerk, f["id"], PDF, name="a.pdf", title="Brief\x08 <&>")
    assert r.status_code == 201, r.text
    close(api, o, f["id"], LONG_AGO)
    run = _transferred(api, o)

    root = _message(_package(api, o, run), run)
    (akte,) = root.findall("x:Schriftgutobjekt/x:Akte", NS)
    assert akte.findtext("x:AllgemeineMetadaten/x:Betreff", namespaces=NS) == (
        "Bauantrag\ufffdHofstraße\ufffd"
    )
    vorgang = akte.find("x:Akteninhalt/x:Vorgang", NS)
    assert vorgang is not None
    assert vorgang.findtext("x:AllgemeineMetadaten/x:Betreff", namespaces=NS) == "Nachtrag\ufffd"
    assert akte.findtext(".//x:Dokument/x:AllgemeineMetadaten/x:Betreff", namespaces=NS) == (
        "Brief\ufffd <&>"
    )


def test_paper_only_documents_are_in_the_message(api: Api) -> None:
    o = office(api)
    f = _archive_file(api, o)
    r = factories.upload(api, o.unit.clerk, f["id"], PDF, name="scan.pdf")
    assert r.status_code == 201, r.text
    paper = api.client.post(
        f"/api/v1/files/{f['id']}/paper-documents",
        json={"title": "Lageplan (Papier)", "paper_location": "Registratur 2, Regal 7"},
        headers=o.unit.clerk,
    )
    assert paper.status_code == 201, paper.text
    close(api, o, f["id"], LONG_AGO)
    run = _transferred(api, o)

    root = _message(_package(api, o, run), run)
    documents = {
        d.findtext("x:Identifikation/x:ID", namespaces=NS): d
        for d in root.iter("{urn:xoev-de:xdomea:schema:3.0.0}Dokument")
    }
    assert set(documents) == {r.json()["id"], paper.json()["id"]}
    on_paper = documents[paper.json()["id"]]
    assert on_paper.findtext("x:AllgemeineMetadaten/x:Betreff", namespaces=NS) == (
        "Lageplan (Papier)"
    )
    assert "Registratur 2, Regal 7" in (
        on_paper.findtext("x:AllgemeineMetadaten/x:Bemerkung", namespaces=NS) or ""
    )
    assert on_paper.findall("x:Version", NS) == []


def test_running_time_is_in_the_administrations_time_zone(api: Api) -> None:
    o = office(api)
    f = _archive_file(api, o)
    assert factories.upload(api, o.unit.clerk, f["id"], PDF).status_code == 201
    # 00:30 on New Year's Day in Germany, still 2019 in UTC: closed in 2020.
    close(api, o, f["id"], "2020-01-01T00:30:00+01:00")
    run = _transferred(api, o)

    root = _message(_package(api, o, run), run)
    end = root.findtext("x:Schriftgutobjekt/x:Akte/x:Lebenszyklus/x:Laufzeit/x:Ende", namespaces=NS)
    assert end == "2020-01-01"


def test_a_version_larger_than_plain_zip_allows_is_packed_with_zip64(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    o = office(api)
    f = _archive_file(api, o)
    content = PDF + bytes(range(256)) * 64
    assert factories.upload(api, o.unit.clerk, f["id"], content).status_code == 201
    close(api, o, f["id"], LONG_AGO)
    run = _transferred(api, o)
    # Stands for the 2 GiB limit of a ZIP entry without the ZIP64 extension, which
    # a version (up to EAKTE_MAX_UPLOAD_BYTES, 4 GiB by default) may pass.
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 4096)

    package = _package(api, o, run)
    (name,) = [n for n in package.namelist() if n.endswith("_brief.pdf")]
    assert package.read(name) == content
    assert package.read("sha256sums.txt").decode() == (
        f"{hashlib.sha256(content).hexdigest()}  {name}\n"
    )


def test_the_receipt_needs_the_package_first(api: Api) -> None:
    o = office(api)
    f = _archive_file(api, o)
    assert factories.upload(api, o.unit.clerk, f["id"], PDF).status_code == 201
    close(api, o, f["id"], LONG_AGO)
    run = _transferred(api, o)
    receipt = f"/api/v1/retention/runs/{run['id']}/receipt"

    r = api.client.post(receipt, json={"archive_reference": "StadtA 1"}, headers=o.bert)
    assert r.status_code == 409 and "package" in r.json()["detail"], r.text
    docs = api.client.get(f"/api/v1/files/{f['id']}/documents", headers=o.anna)
    assert docs.status_code == 200, docs.text

    _package(api, o, run)
    r = api.client.post(receipt, json={"archive_reference": "StadtA 1"}, headers=o.bert)
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text

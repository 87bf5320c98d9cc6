"""The handover package for the archive: a ZIP in the shape of an XDOMEA Aussonderung (0503).

The package holds one XML message `<ProzessID>_Aussonderung.Aussonderung.0503.xml` in the
XDOMEA 3.0 namespace with one Schriftgutobjekt per file (Akte -> Vorgang -> Dokument ->
Version -> Format -> Primaerdokument), every version's content as a primary file named
`<version id>_<original name>`, and `sha256sums.txt` (the `sha256sum` format), since the
message itself has no place for checksums. The XML is generated here; nothing parses
untrusted XML in this module.
"""

from __future__ import annotations

import hashlib
import re
import uuid
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import BinaryIO
from xml.etree.ElementTree import Element, SubElement, tostring  # noqa: S405 - we only write

from sqlalchemy import select
from sqlalchemy.orm import Session

from eakte import __version__
from eakte.audit.service import record
from eakte.auth.principal import Principal
from eakte.db import utcnow
from eakte.documents.models import Document, DocumentVersion
from eakte.documents.service import clean_filename
from eakte.errors import Conflict
from eakte.files import repository as files_repository
from eakte.files.models import File
from retention import disposal, repository
from retention.models import ItemState
from retention.rules import RetentionPolicy
from storage import BlobStore

NS = "urn:xoev-de:xdomea:schema:3.0.0"
MESSAGE_TYPE = "Aussonderung.Aussonderung.0503"
_CHUNK = 1024 * 1024
# Characters XML 1.0 does not allow at all, not even escaped. Titles typed or pasted by users
# may hold them (a vertical tab from a word processor); ElementTree would write them raw and
# the archive could not parse the message.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _el(parent: Element, tag: str, text: str | None = None, **attrs: str) -> Element:
    child = SubElement(parent, _q(tag), attrs)
    if text is not None:
        child.text = _xml_text(text)
    return child


@dataclass(frozen=True)
class PackageInfo:
    """What a handover package holds."""

    name: str
    files: int
    primary_files: int


def message_name(run_id: uuid.UUID) -> str:
    """File name of the XML message inside the package."""
    return f"{run_id}_{MESSAGE_TYPE}.xml"


def primary_name(version: DocumentVersion) -> str:
    """Name of a version's primary file in the package; unique by the version id."""
    original = clean_filename(version.original_name) or "dokument"
    return f"{version.id}_{original}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local_date(moment: datetime, tz: tzinfo) -> date:
    # The administration's calendar day, as for the due date: a file closed at 00:30 on New
    # Year's Day in Germany ran until the new year, though it is still the old one in UTC.
    return moment.astimezone(tz).date()


def _identification(parent: Element, object_id: uuid.UUID) -> None:
    _el(_el(parent, "Identifikation"), "ID", str(object_id))


def _paper_note(document: Document) -> str | None:
    if document.paper_location is None:
        return None
    where = document.paper_location
    if document.paper_box:
        where += f", {document.paper_box}"
    if document.paper_scanned_version:
        return f"Papieroriginal (gescannt als Version {document.paper_scanned_version}): {where}"
    return f"Papieroriginal: {where}"


def _document(parent: Element, document: Document, versions: list[DocumentVersion]) -> None:
    doc = _el(parent, "Dokument")
    _identification(doc, document.id)
    meta = _el(doc, "AllgemeineMetadaten")
    _el(meta, "Betreff", document.title)
    _el(meta, "Kennzeichen", document.kind)
    note = _paper_note(document)
    if note is not None:
        # The paper of a hybrid file goes to the archive too: say where it lies.
        _el(meta, "Bemerkung", note)
    for version in versions:
        ver = _el(doc, "Version")
        _el(ver, "Nummer", str(version.number))
        fmt = _el(ver, "Format")
        name = _el(fmt, "Name", listURI="urn:ietf:rfc:6838")
        code = SubElement(name, "code")  # XÖV code values carry no namespace
        code.text = _xml_text(version.mime_type)
        primary = _el(fmt, "Primaerdokument")
        _el(primary, "Dateiname", primary_name(version))
        if version.original_name:
            _el(primary, "DateinameOriginal", version.original_name)
        _el(primary, "Ersteller", version.created_by)
        _el(primary, "DatumUhrzeit", _iso(version.created_at))


def _message(
    run_id: uuid.UUID,
    policy: RetentionPolicy,
    org_units: list[str],
    files: list[tuple[File, list[Document], list[tuple[Document, DocumentVersion]]]],
    processes: dict[uuid.UUID, list[tuple[uuid.UUID, str, datetime]]],
) -> bytes:
    tz = policy.timezone
    root = Element(_q(MESSAGE_TYPE))
    head = _el(root, "Kopf")
    _el(head, "ProzessID", str(run_id))
    kind = _el(head, "Nachrichtentyp", listURI="urn:xoev-de:xdomea:codeliste:nachrichtentyp")
    SubElement(kind, "code").text = "0503"
    _el(head, "Erstellungszeitpunkt", _iso(utcnow()))
    sender = _el(head, "Absender")
    _el(_el(sender, "Institution"), "Name", policy.agency_name)
    _el(_el(sender, "Organisationseinheit"), "Name", ", ".join(org_units))
    _el(_el(_el(head, "Empfaenger"), "Institution"), "Name", policy.archive_name)
    system = _el(head, "SendendesSystem")
    _el(system, "Produktname", "eakte")
    _el(system, "Version", __version__)
    _el(head, "Empfangsbestaetigung", "1")

    for file, file_documents, versions in files:
        akte = _el(_el(root, "Schriftgutobjekt"), "Akte")
        _identification(akte, file.id)
        meta = _el(akte, "AllgemeineMetadaten")
        _el(meta, "Betreff", file.title)
        _el(meta, "Kennzeichen", file.reference)
        if file.paper_note:
            _el(meta, "Bemerkung", file.paper_note)
        period = _el(_el(akte, "Lebenszyklus"), "Laufzeit")
        _el(period, "Beginn", _local_date(file.opened_at, tz).isoformat())
        if file.closed_at is not None:
            _el(period, "Ende", _local_date(file.closed_at, tz).isoformat())
        content = _el(akte, "Akteninhalt")
        by_document: dict[uuid.UUID, list[DocumentVersion]] = defaultdict(list)
        # Every document, also a paper-only one that has no version to join.
        documents = {document.id: document for document in file_documents}
        for document, version in versions:
            documents.setdefault(document.id, document)
            by_document[document.id].append(version)
        for process_id, title, created_at in processes.get(file.id, []):
            vorgang = _el(content, "Vorgang")
            _identification(vorgang, process_id)
            _el(_el(vorgang, "AllgemeineMetadaten"), "Betreff", title)
            _el(
                _el(_el(vorgang, "Lebenszyklus"), "Laufzeit"),
                "Beginn",
                _local_date(created_at, tz).isoformat(),
            )
            for document in documents.values():
                if document.process_id == process_id:
                    _document(vorgang, document, by_document[document.id])
        for document in documents.values():
            if document.process_id is None:
                _document(content, document, by_document[document.id])
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def build_package(
    session: Session,
    store: BlobStore,
    principal: Principal,
    policy: RetentionPolicy,
    run_id: uuid.UUID,
    out: BinaryIO,
) -> PackageInfo:
    """Write the run's handover package (files awaiting the archive's receipt) to `out`."""
    run = disposal.get_run(session, principal, run_id)
    file_ids = repository.item_file_ids(session, run.id, [ItemState.TRANSFERRED.value])
    if not file_ids:
        raise Conflict(f"no file of disposal run {run.id} awaits handover to the archive")
    files: list[tuple[File, list[Document], list[tuple[Document, DocumentVersion]]]] = []
    processes: dict[uuid.UUID, list[tuple[uuid.UUID, str, datetime]]] = {}
    for file_id in file_ids:
        file = session.get_one(File, file_id)
        documents = session.scalars(
            select(Document)
            .where(Document.file_id == file.id)
            .order_by(Document.created_at, Document.id)
        ).all()
        files.append(
            (file, list(documents), list(repository.versions_of_file(session, file.id)))
        )
        processes[file.id] = [
            (p.id, p.title, p.created_at) for p in files_repository.processes_of(session, file.id)
        ]
    sums: list[str] = []
    primary = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            message_name(run.id), _message(run.id, policy, run.org_units, files, processes)
        )
        for file, _documents, versions in files:
            for document, version in versions:
                name = primary_name(version)
                digest = hashlib.sha256()
                # The entry's size is not known to zipfile when it is streamed in; without
                # ZIP64 an entry past 2 GiB fails when it is closed (as zipfile guesses it).
                zip64 = version.size * 1.05 > zipfile.ZIP64_LIMIT
                with (
                    store.open(version.blob_key) as reader,
                    archive.open(name, "w", force_zip64=zip64) as entry,
                ):
                    for chunk in reader:
                        digest.update(chunk)
                        entry.write(chunk)
                if digest.hexdigest() != version.sha256:
                    raise Conflict(
                        f"version {version.number} of document {document.id} does not match "
                        "its checksum; run `eakte fixity` and restore it before the handover"
                    )
                sums.append(f"{version.sha256}  {name}\n")
                primary += 1
            record(
                session,
                principal,
                "file.handover_exported",
                "file",
                file.id,
                run_id=str(run.id),
                versions=len(versions),
            )
        archive.writestr("sha256sums.txt", "".join(sums))
    return PackageInfo(f"{run.id}_Aussonderung.zip", len(files), primary)

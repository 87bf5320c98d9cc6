"""Search for words in nearly every letter: PostgreSQL ranks the newest matches only.

A rare word still has every match ranked, and the bound counts only documents the searcher
may see. Each PostgreSQL test runs on both ways of finding the matches (reading them from
the index, and testing the newest documents one by one); SQLite ranks every match.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from eakte.auth.principal import SYSTEM, Principal, Role
from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.documents import service as documents
from eakte.documents.schemas import DocumentMeta
from eakte.files import service as files
from eakte.files.schemas import FileCreate
from eakte.orgunits.schemas import OrgUnitCreate
from eakte.orgunits.service import create_unit
from eakte.plan.models import ArchiveValue
from eakte.plan.schemas import PlanItemCreate
from eakte.plan.service import create_item
from eakte.search import repository
from storage import BlobStore
from tests.factories import unique
from tests.support.db import fresh_pg_database

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FILLER = ["Bescheid", "Gemeinde", "Zahlung", "Frist", "Satzung", "Kreis", "Halle"]


def letter(antrag: int, *extra: str) -> str:
    """Eight words of OCR text, `antrag` of them the common word."""
    words = ["Antrag"] * antrag + list(extra)
    return " ".join(words + FILLER[: 8 - len(words)])


@dataclass
class Office:
    """An org unit with a clerk and one file to put letters in."""

    clerk: Principal
    file_id: uuid.UUID


@pytest.fixture(params=["sqlite", "postgresql-index", "postgresql-walk"])
def session(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """A unit of work on SQLite, and on PostgreSQL with the matches found either way."""
    database, _, way = request.param.partition("-")
    url = str(request.getfixturevalue("pg_url" if database == "postgresql" else "sqlite_url"))
    if way:
        # Estimated shares lie in 0..1: from 0 on every search walks, from above 1 none.
        monkeypatch.setattr(repository, "WALK_FROM_SHARE", 0.0 if way == "walk" else 1.5)
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as s:
            yield s
    finally:
        engine.dispose()


def office(session: Session) -> Office:
    """A new org unit, a plan item and a file, made through the services."""
    code = unique("OU")
    create_unit(session, SYSTEM, OrgUnitCreate(code=code, name=f"Amt {code}"))
    item = create_item(
        session,
        SYSTEM,
        PlanItemCreate(
            code=f"{uuid.uuid4().int % 90 + 10}.{uuid.uuid4().hex[:6]}",
            title="Bauanträge",
            retention_years=10,
            archive_value=ArchiveValue("V"),
        ),
    )
    clerk = Principal(unique("clerk-"), frozenset({Role.CLERK}), frozenset({code}))
    file = files.create_file(
        session,
        clerk,
        FileCreate(title="Bauantrag Musterstraße 1", plan_code=item.code, org_unit=code),
    )
    return Office(clerk, file.id)


def add_letter(
    session: Session, store: BlobStore, where: Office, title: str, ocr_text: str
) -> uuid.UUID:
    """A scanned letter with its OCR text, added as the inbox pipeline files one."""
    content = documents.store_content(
        store, io.BytesIO(PDF), max_size=1 << 20, original_name="brief.pdf"
    )
    document, _ = documents.add_document(
        session,
        where.clerk,
        where.file_id,
        DocumentMeta(title=title),
        dataclasses.replace(content, ocr_text=ocr_text, page_count=1),
    )
    return document.id


def found(session: Session, who: Principal, query: str, **bound: int) -> list[uuid.UUID]:
    """The ids of the hits of a search, best first."""
    return [h.document_id for h in repository.search(session, who, query, 20, **bound)]


def test_common_word_ranks_only_the_newest_matches(session: Session, fs_store: BlobStore) -> None:
    here = office(session)
    oldest = add_letter(session, fs_store, here, "Altfall", letter(6, "Zisterne"))
    newer = [
        add_letter(session, fs_store, here, f"Eingang {n}", letter(n)) for n in (1, 3, 2, 5, 4)
    ]

    # Every match ranked, most occurrences first: the oldest letter leads.
    assert found(session, here.clerk, "Antrag") == [
        oldest,
        newer[3],
        newer[4],
        newer[1],
        newer[2],
        newer[0],
    ]
    if session.get_bind().dialect.name != "postgresql":
        return
    # Only the four newest matches ranked, best first; the old letter is not among them.
    assert found(session, here.clerk, "Antrag", candidates=4) == [
        newer[3],
        newer[4],
        newer[1],
        newer[2],
    ]


def test_rare_word_finds_an_old_letter_behind_many_new_ones(
    session: Session, fs_store: BlobStore
) -> None:
    here = office(session)
    oldest = add_letter(session, fs_store, here, "Altfall", letter(1, "Zisterne"))
    for n in range(6):
        add_letter(session, fs_store, here, f"Eingang {n}", letter(2))

    assert found(session, here.clerk, "Zisterne", candidates=3) == [oldest]
    assert found(session, here.clerk, "Zisterne Antrag", candidates=3) == [oldest]
    assert found(session, here.clerk, '"Antrag Zisterne"', candidates=3) == [oldest]


def test_word_only_in_an_earlier_version_still_finds_the_letter(
    session: Session, fs_store: BlobStore
) -> None:
    here = office(session)
    revised = add_letter(session, fs_store, here, "Nachtrag", letter(1, "Regenrückhaltebecken"))
    content = documents.store_content(
        fs_store,
        io.BytesIO(PDF + b"v2"),
        max_size=1 << 20,
        original_name="brief.pdf",
        document_id=revised,
    )
    documents.add_version(
        session, here.clerk, revised, dataclasses.replace(content, ocr_text=letter(1))
    )
    add_letter(session, fs_store, here, "Eingang", letter(1))

    assert found(session, here.clerk, "Regenrückhaltebecken", candidates=3) == [revised]


def test_bound_counts_only_documents_the_searcher_may_see(
    session: Session, fs_store: BlobStore
) -> None:
    here, elsewhere = office(session), office(session)
    mine = [add_letter(session, fs_store, here, f"Eingang {n}", letter(n)) for n in (1, 2)]
    # Newer, better-ranked matches in another unit's file must not take the places.
    for n in range(5):
        add_letter(session, fs_store, elsewhere, f"Fremd {n}", letter(7))

    assert found(session, here.clerk, "Antrag", candidates=2) == [mine[1], mine[0]]
    # There the bound does apply (SQLite ranks every match).
    bounded = session.get_bind().dialect.name == "postgresql"
    assert len(found(session, elsewhere.clerk, "Antrag", candidates=2)) == (2 if bounded else 5)


def test_estimate_walks_for_a_word_in_every_letter_only(
    pg_server: str, fs_store: BlobStore
) -> None:
    with fresh_pg_database(pg_server) as url:  # the estimate is PostgreSQL's
        _check_estimates(url, fs_store)


def _check_estimates(url: str, fs_store: BlobStore) -> None:
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as s:
            here = office(s)
            add_letter(s, fs_store, here, "Altfall", letter(1, "Zisterne"))
            for n in range(40):
                add_letter(s, fs_store, here, f"Eingang {n}", letter(2))
        with engine.begin() as conn:
            conn.execute(text("ANALYZE document_versions"))
        with unit_of_work(make_session_factory(engine)) as s:
            versions = float(s.execute(repository.ESTIMATE_VERSIONS).scalar_one())

            def walks(query: str) -> bool:
                explained = s.execute(repository.ESTIMATE_MATCHES, {"query": query})
                return repository.walks_newest(explained.scalar_one(), versions)

            assert versions == 41
            assert walks("Antrag")
            assert walks("Antrag Bescheid")
            assert not walks("Zisterne")
            assert not walks("Vorgang0000001")
    finally:
        engine.dispose()

"""Changes of one document that race each other serialise on its row (PostgreSQL)."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.orm import Session

from eakte.auth.principal import Principal, Role
from eakte.db import make_session_factory, unit_of_work
from eakte.documents import service as documents
from eakte.errors import Conflict
from eakte.outgoing import service as outgoing
from tests import factories
from tests.conftest import Api

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
# How long the first transaction stays open once it holds its locks.
HOLD_SECONDS = 0.5


def _content(api: Api, document_id: str) -> documents.StoredContent:
    return documents.store_content(
        api.store,
        io.BytesIO(PDF + uuid.uuid4().bytes),
        max_size=1 << 20,
        original_name="scan.pdf",
        document_id=uuid.UUID(document_id),
    )


def _second_waits_for_first(
    api: Api, first: Callable[[Session], object], second: Callable[[Session], object]
) -> None:
    """Run `first` in a transaction held open, then `second` in another; re-raise its error."""
    factory = make_session_factory(api.engine)
    inside = threading.Event()

    def one() -> None:
        with unit_of_work(factory) as session:
            first(session)
            inside.set()
            time.sleep(HOLD_SECONDS)

    def two() -> None:
        assert inside.wait(10)
        with unit_of_work(factory) as session:
            second(session)

    with ThreadPoolExecutor(2) as pool:
        started = pool.submit(one)
        waiting = pool.submit(two)
        started.result()
        waiting.result()


def test_two_scans_of_one_paper_document_attach_one(pg_api: Api) -> None:
    api = pg_api
    unit = factories.org_unit(api)
    file = factories.file(api, unit, factories.plan_item(api)["code"])
    r = api.client.post(
        f"/api/v1/files/{file['id']}/paper-documents",
        json={"title": "Lageplan", "paper_location": "Registratur 2.14"},
        headers=unit.clerk,
    )
    assert r.status_code == 201, r.text
    paper = r.json()["id"]
    clerk = Principal("clara", frozenset({Role.CLERK}), frozenset({unit.code}))
    scans = [_content(api, paper), _content(api, paper)]

    with pytest.raises(Conflict, match="scanned already"):
        _second_waits_for_first(
            api,
            lambda s: documents.add_scan(s, clerk, uuid.UUID(paper), scans[0], 30),
            lambda s: documents.add_scan(s, clerk, uuid.UUID(paper), scans[1], 30),
        )
    document = api.client.get(f"/api/v1/documents/{paper}", headers=unit.clerk).json()
    assert (document["current_version"], document["paper_scanned_version"]) == (1, 1)
    assert document["latest"]["sha256"] == scans[0].sha256


def test_a_version_racing_the_letters_approval_is_refused(pg_api: Api) -> None:
    api = pg_api
    unit = factories.org_unit(api)
    file = factories.file(api, unit, factories.plan_item(api)["code"])
    template = factories.unique("bescheid")
    r = api.client.post(
        "/api/v1/letter-templates",
        json={"name": template, "body_html": "<p>Ihr Antrag ist eingegangen.</p>"},
        headers=api.auth(["admin"], []),
    )
    assert r.status_code == 201, r.text
    r = api.client.post(
        f"/api/v1/files/{file['id']}/letters",
        json={"subject": "Eingangsbestätigung", "channel": "post", "template": template,
              "recipient": {"name": "Erika Mustermann", "address": "Musterweg 7\n25421 Pinneberg"}},
        headers=unit.clerk,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    letter = r.json()
    clerk = Principal("clara", frozenset({Role.CLERK}), frozenset({unit.code}))
    content = _content(api, letter["document_id"])

    with pytest.raises(Conflict, match="frozen"):
        _second_waits_for_first(
            api,
            lambda s: outgoing.approve(s, clerk, uuid.UUID(letter["id"])),
            lambda s: documents.add_version(s, clerk, uuid.UUID(letter["document_id"]), content),
        )
    versions = api.client.get(
        f"/api/v1/documents/{letter['document_id']}/versions", headers=unit.clerk
    ).json()
    assert [v["number"] for v in versions] == [1]

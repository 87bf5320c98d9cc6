"""Fixtures of the inbox tests: a file with a numeric plan code, scans that name it."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from eakte.db import make_session_factory, unit_of_work
from inbox.models import InboundItem
from inbox.pipeline import Worker
from tests import factories
from tests.conftest import Api
from tests.ocr import scans


def numeric_plan_code() -> str:
    """A plan code like real file plans have (digits only), unique in the session database."""
    n = uuid.uuid4().int
    return f"{n % 90 + 10}.{n // 90 % 90 + 10}.{n // 8100 % 9000 + 1000}"


@dataclass
class Office:
    """An org unit with a clerk, a mailroom principal and an open file."""

    api: Api
    unit: factories.Unit
    mailroom: dict[str, str]
    file: dict[str, Any]

    def worker(self, **settings: Any) -> Worker:
        """A pipeline worker on the app's database and store."""
        merged = self.api.settings.model_copy(update=settings)
        return Worker(make_session_factory(self.api.engine), self.api.store, merged)

    def submit(self, path: Path) -> dict[str, Any]:
        """Hand a file to the inbox as the mailroom."""
        with path.open("rb") as fh:
            r = self.api.client.post("/api/v1/inbox", files={"file": (path.name, fh)},
                                     headers=self.mailroom)
        assert r.status_code == 202, r.text
        result: dict[str, Any] = r.json()
        return result

    def imap_items(self, folder: str) -> list[InboundItem]:
        """The inbound items taken from IMAP folders of that name."""
        with unit_of_work(make_session_factory(self.api.engine)) as session:
            return list(session.scalars(select(InboundItem).where(
                InboundItem.source_ref.like(f"imap:%/{folder}:%"))).all())

    def item(self, item_id: str) -> dict[str, Any]:
        """The item as the API shows it."""
        r = self.api.client.get(f"/api/v1/inbox/{item_id}", headers=self.mailroom)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


@pytest.fixture
def office(isolated_api: Api) -> Office:
    api = isolated_api
    unit = factories.org_unit(api)
    item = factories.plan_item(api, code=numeric_plan_code())
    file = factories.file(api, unit, item["code"], title="Bauantrag Garage Grüner Weg 7")
    return Office(api, unit, api.auth(["mailroom"], [unit.code]), file)


def letter_scan(tmp_path: Path, reference: str | None, name: str = "scan.png") -> Path:
    """A skewed, speckled one-page scan of a letter naming `reference` (or none)."""
    lines = [line for line in scans.PAGE_1_LINES if not line.startswith("Aktenzeichen")]
    if reference:
        lines.insert(7, f"Aktenzeichen: {reference}")
    page = scans.render_page(lines, skew_deg=2.0, seed=7)
    return scans.write_png(tmp_path / name, page)


def wait_for_lock_wait(engine: Engine, thread: threading.Thread) -> None:
    """Wait until a session of the PostgreSQL database waits for a lock, or `thread` ends.

    Tests of races use it: a transaction of the test holds a row uncommitted while the code
    under test, in `thread`, runs into it and waits; then the test commits.
    """
    deadline = time.monotonic() + 15
    while thread.is_alive() and time.monotonic() < deadline:
        with engine.connect() as conn:
            waiting = conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"))
        if waiting:
            return
        time.sleep(0.05)

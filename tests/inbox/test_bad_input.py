"""Bad post ends quarantined with a reason a person can act on; nothing is lost."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.inbox.conftest import Office, letter_scan
from tests.ocr import scans


def _zero(tmp: Path) -> Path:
    path = tmp / "leer.pdf"
    path.write_bytes(b"")
    return path


def _random(tmp: Path) -> Path:
    path = tmp / "zufall.pdf"
    path.write_bytes(os.urandom(5000))
    return path


def _truncated(tmp: Path) -> Path:
    whole = scans.write_image_pdf(tmp / "ganz.pdf", [scans.render_page(["Seite"])])
    return scans.write_truncated(tmp / "abgeschnitten.pdf", whole)


def _encrypted(tmp: Path) -> Path:
    whole = scans.write_image_pdf(tmp / "offen.pdf", [scans.render_page(["Seite"])])
    return scans.write_encrypted_pdf(tmp / "verschluesselt.pdf", whole)


def _bomb(tmp: Path) -> Path:
    return scans.write_png_bomb(tmp / "riesig.png")


def _blank_pages(tmp: Path) -> Path:
    return scans.write_blank_pdf(tmp / "leerseiten.pdf", 2000)


CORPUS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zero bytes": (_zero, "empty"),
    "random bytes named .pdf": (_random, "unsupported file type"),
    "truncated pdf": (_truncated, "truncated"),
    "encrypted pdf": (_encrypted, "encrypted"),
    "30000x30000 png": (_bomb, "pixels"),
    "2000 blank pages": (_blank_pages, "pages"),
}


def test_bad_input_is_quarantined_and_the_worker_goes_on(office: Office, tmp_path: Path) -> None:
    api = office.api
    submitted = {}
    for name, (make, _) in CORPUS.items():
        path = make(tmp_path)
        submitted[name] = (office.submit(path), path.read_bytes())
    good = office.submit(letter_scan(tmp_path, office.file["reference"]))

    office.worker().run_until_idle()

    for name, (item, original) in submitted.items():
        shown = office.item(item["id"])
        assert shown["state"] == "quarantined", (name, shown)
        expected = CORPUS[name][1]
        assert expected in shown["quarantine_reason"].lower(), (name, shown["quarantine_reason"])
        r = api.client.get(f"/api/v1/inbox/{item['id']}/original", headers=office.mailroom)
        assert r.status_code == 200
        assert r.content == original, name
    assert office.item(good["id"])["state"] == "filed"

    listed = api.client.get("/api/v1/inbox", params={"state": "quarantined"},
                            headers=office.mailroom).json()
    assert {i["id"] for i, _ in submitted.values()} <= {i["id"] for i in listed}


@pytest.mark.parametrize("who,status", [("mailroom", 403), ("admin", 200)])
def test_only_an_admin_can_requeue(office: Office, tmp_path: Path, who: str, status: int) -> None:
    item = office.submit(_zero(tmp_path))
    office.worker().run_until_idle()
    headers = office.mailroom if who == "mailroom" else office.api.auth(["admin"], [])
    r = office.api.client.post(f"/api/v1/inbox/{item['id']}/requeue", headers=headers)
    assert r.status_code == status
    if status == 200:
        assert r.json()["state"] == "received"
        assert r.json()["quarantine_reason"] is None
        office.worker().run_until_idle()
        assert office.item(item["id"])["state"] == "quarantined"
        events = office.api.client.get("/api/v1/audit", params={"object_id": item["id"]},
                                       headers=office.api.auth(["admin"], [])).json()
        assert [e["action"] for e in events].count("inbox.quarantined") == 2
        assert "inbox.requeued" in [e["action"] for e in events]


def test_requeue_of_an_item_that_is_not_quarantined_is_409(office: Office,
                                                           tmp_path: Path) -> None:
    item = office.submit(letter_scan(tmp_path, None))
    r = office.api.client.post(f"/api/v1/inbox/{item['id']}/requeue",
                               headers=office.api.auth(["admin"], []))
    assert r.status_code == 409

"""Pop-ups list only files up to the clearance of the clerk mapped to the extension."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.exc import DBAPIError

from alembic import command
from eakte.auth.tokens import issue_token
from eakte.db import make_engine
from eakte.migrate import alembic_config, upgrade
from tests import factories
from tests.cti_bridge.conftest import Call, CtiApp


def _event(call_id: str, caller: str, extension: str) -> dict[str, str]:
    return {"event": "ringing", "call_id": call_id, "from": caller, "to": extension}


def _classified_file(cti: CtiApp, call: Call, plan_code: str, level: str) -> dict[str, Any]:
    """A file of the call's contact and unit at `level`, made by a clerk cleared for it."""
    cleared = {
        "Authorization": "Bearer "
        + issue_token(cti.settings, "clerk-secret", ["clerk"], [call.unit.code], clearance=level)
    }
    return factories.file(
        cti,
        factories.Unit(call.unit.code, cleared),
        plan_code,
        title=f"Akte {level}",
        confidentiality=level,
        contact_ids=[call.contact_id],
    )


def _map(cti: CtiApp, extension: str, subject: str, units: list[str], **extra: str) -> Any:
    return cti.client.put(
        f"/api/v1/cti/extensions/{extension}",
        json={"subject": subject, "units": units, **extra},
        headers=cti.auth(["admin"], []),
    )


def test_pop_up_lists_files_up_to_the_extensions_clearance(cti: CtiApp) -> None:
    call = cti.call_data()  # mapped without a clearance: normal
    plan = factories.plan_item(cti)
    confidential = _classified_file(cti, call, plan["code"], "confidential")
    secret = _classified_file(cti, call, plan["code"], "secret")
    extensions = {"normal": call.extension}
    clerks = {"normal": call.clerk_sub}
    for level in ("confidential", "secret"):
        extensions[level] = str(random.randint(100_000, 999_999))
        clerks[level] = f"clerk-{level}-{extensions[level]}"
        r = _map(cti, extensions[level], clerks[level], [call.unit.code], clearance=level)
        assert r.status_code == 200, r.text
        assert r.json()["clearance"] == level
    agents = {
        level: cti.agent(cti.enroll(clerks[level], [call.unit.code]), extension)
        for level, extension in extensions.items()
    }

    expected = {
        "normal": [call.file["id"]],
        "confidential": [confidential["id"], call.file["id"]],
        # Most recently active first.
        "secret": [secret["id"], confidential["id"], call.file["id"]],
    }
    for level, extension in extensions.items():
        r = cti.webhook(_event(f"cl-{level}", call.e164, extension))
        assert r.status_code == 202, r.text
        assert r.json()["files"] == len(expected[level])
        event = agents[level].receive(2.0)
        assert event is not None, level
        assert event["contact"]["id"] == call.contact_id
        assert [f["id"] for f in event["files"]] == expected[level], level


def test_raising_a_mappings_clearance_shows_the_file_on_the_next_call(cti: CtiApp) -> None:
    call = cti.call_data()
    plan = factories.plan_item(cti)
    confidential = _classified_file(cti, call, plan["code"], "confidential")
    r = cti.webhook(_event("up-1", call.e164, call.extension))
    assert r.status_code == 202 and r.json()["files"] == 1

    r = _map(cti, call.extension, call.clerk_sub, [call.unit.code], clearance="confidential")
    assert r.status_code == 200, r.text
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    r = cti.webhook(_event("up-2", call.e164, call.extension))
    assert r.status_code == 202 and r.json()["files"] == 2
    event = agent.receive(2.0)
    assert event is not None
    assert [f["id"] for f in event["files"]] == [confidential["id"], call.file["id"]]


def test_unmapped_extension_gets_no_files_of_any_level(cti: CtiApp) -> None:
    call = cti.call_data()
    plan = factories.plan_item(cti)
    _classified_file(cti, call, plan["code"], "secret")
    r = cti.webhook(_event("um-1", call.e164, "unmapped-ext"))
    assert r.status_code == 202, r.text
    assert r.json()["contact_found"] and r.json()["files"] == 0


def test_clearance_defaults_to_normal_is_validated_and_audited(cti: CtiApp) -> None:
    admin = cti.auth(["admin"], [])
    unit = factories.org_unit(cti)
    extension = str(random.randint(100_000, 999_999))
    r = _map(cti, extension, "anna", [unit.code])
    assert r.status_code == 200, r.text
    assert r.json()["clearance"] == "normal"

    r = _map(cti, extension, "anna", [unit.code], clearance="top-secret")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/invalid-input"
    listed = cti.client.get("/api/v1/cti/extensions", headers=admin).json()
    assert [e["clearance"] for e in listed if e["extension"] == extension] == ["normal"]

    r = _map(cti, extension, "anna", [unit.code], clearance="secret")
    assert r.status_code == 200 and r.json()["clearance"] == "secret"
    r = cti.client.get(
        "/api/v1/audit",
        params={"object_id": r.json()["id"], "action": "cti.extension_mapped"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert sorted(e["details"]["clearance"] for e in r.json()) == ["normal", "secret"]


def test_migration_gives_existing_mappings_the_lowest_clearance(
    fresh_database_url: str,
) -> None:
    upgrade(fresh_database_url, "0007_backup")
    engine = make_engine(fresh_database_url)
    insert = text(
        "INSERT INTO cti_extensions (id, extension, subject, units, updated_at, updated_by)"
        " VALUES (:id, '201', 'anna', '[\"10\"]', CURRENT_TIMESTAMP, 'admin')"
    ).bindparams(bindparam("id", type_=Uuid()))
    try:
        with engine.begin() as conn:
            conn.execute(insert, {"id": uuid.uuid4()})
        upgrade(fresh_database_url, "0008_cti_clearance")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT extension, clearance FROM cti_extensions")).all()
        assert [tuple(r) for r in rows] == [("201", "normal")]

        command.downgrade(alembic_config(fresh_database_url), "0007_backup")
        with engine.connect() as conn, pytest.raises(DBAPIError, match="clearance"):
            conn.execute(text("SELECT clearance FROM cti_extensions"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT subject FROM cti_extensions")).scalar() == "anna"
    finally:
        engine.dispose()

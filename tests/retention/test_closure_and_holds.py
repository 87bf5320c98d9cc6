"""Closing, reopening and holding files through the API, on both databases and stores."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from minio.deleteobjects import DeleteObject

from storage import BlobLocked, S3Store
from tests import factories
from tests.conftest import Api
from tests.retention.helpers import approved_run, blob_keys, close, file_with_documents, office


def test_closing_sets_the_due_date_and_locks_the_blobs(api: Api) -> None:
    o = office(api)
    item = factories.plan_item(api, retention_years=10)
    f, _ = file_with_documents(api, o, item["code"])
    closed = close(api, o, f["id"])
    year = datetime.fromisoformat(closed["closed_at"]).year
    assert closed["status"] == "closed"
    assert closed["due_on"] == date(year + 11, 1, 1).isoformat()
    for key in blob_keys(api, f["id"]):
        stat = api.store.stat(key)
        assert stat.retain_until == datetime(year + 11, 1, 1, tzinfo=UTC)
        assert stat.retention_mode is not None and stat.retention_mode.value == "GOVERNANCE"
        # Nothing deletes a version before it is due: the store refuses (SeaweedFS or code).
        with pytest.raises(BlobLocked):
            api.store.delete(key)
    # A closed file takes no new documents.
    r = factories.upload(api, o.unit.clerk, f["id"], b"late")
    assert r.status_code == 409
    events = api.client.get(
        f"/api/v1/audit?object_id={f['id']}&action=file.closed", headers=o.anna
    ).json()
    assert len(events) == 1
    assert events[0]["details"]["due_on"] == closed["due_on"]


def test_object_lock_on_seaweedfs_refuses_raw_deletion(api: Api) -> None:
    if not isinstance(api.store, S3Store):
        pytest.skip("S3 only")
    o = office(api)
    item = factories.plan_item(api, retention_years=10)
    f, _ = file_with_documents(api, o, item["code"], documents=1, versions=2)
    close(api, o, f["id"])
    client, bucket = api.store.client, api.store.bucket
    for key in blob_keys(api, f["id"]):
        version = client.stat_object(bucket, key).version_id
        # The server itself refuses, without eakte's own check in front.
        errors = list(client.remove_objects(bucket, [DeleteObject(key, version)]))
        assert errors and errors[0].code == "AccessDenied"
        assert client.stat_object(bucket, key).size > 0


def test_only_archivists_backdate_and_others_units_stay_invisible(api: Api) -> None:
    o = office(api)
    other = office(api)
    item = factories.plan_item(api)
    f, _ = file_with_documents(api, o, item["code"], documents=1)
    url = f"/api/v1/retention/files/{f['id']}/close"
    body = {"closed_at": "2015-03-05T10:00:00+01:00"}
    assert api.client.post(url, json=body, headers=o.unit.clerk).status_code == 403
    assert api.client.post(url, headers=other.unit.clerk).status_code == 404
    assert api.client.post(url, headers=other.anna).status_code == 404
    mailroom = api.auth(["mailroom"], [o.unit.code])
    assert api.client.post(url, headers=mailroom).status_code == 403
    future = {"closed_at": "2999-01-01T00:00:00+00:00"}
    r = api.client.post(url, json=future, headers=o.anna)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert (
        api.client.get(f"/api/v1/files/{f['id']}", headers=o.unit.clerk).json()["status"] == "open"
    )


def test_reopening_is_allowed_until_due_and_audited(api: Api) -> None:
    o = office(api)
    item = factories.plan_item(api, retention_years=10)
    f, _ = file_with_documents(api, o, item["code"], documents=1)
    close(api, o, f["id"])
    r = api.client.post(
        f"/api/v1/retention/files/{f['id']}/reopen",
        json={"reason": "Widerspruch eingegangen"},
        headers=o.unit.clerk,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and r.json()["closed_at"] is None
    events = api.client.get(
        f"/api/v1/audit?object_id={f['id']}&action=file.reopened", headers=o.anna
    ).json()
    assert [e["details"]["reason"] for e in events] == ["Widerspruch eingegangen"]

    # Closed long ago: due already, so it stays closed.
    g, _ = file_with_documents(api, o, item["code"], documents=1)
    close(api, o, g["id"], "2010-03-05T10:00:00+01:00")
    r = api.client.post(
        f"/api/v1/retention/files/{g['id']}/reopen", json={"reason": "x"}, headers=o.anna
    )
    assert r.status_code == 409
    assert "fell due on 2021-01-01" in r.json()["detail"]


def test_held_file_is_never_proposed_nor_destroyed(api: Api) -> None:
    o = office(api)
    item = factories.plan_item(api, retention_years=5, archive_value="V")
    held, _ = file_with_documents(api, o, item["code"], documents=1)
    free, _ = file_with_documents(api, o, item["code"], documents=1)
    late, _ = file_with_documents(api, o, item["code"], documents=1)
    for f in (held, free, late):
        close(api, o, f["id"], "2012-06-01T10:00:00+02:00")
    r = api.client.post(
        f"/api/v1/retention/files/{held['id']}/holds",
        json={"reason": "Klageverfahren 3 K 12/24", "owner": "Rechtsamt"},
        headers=o.anna,
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    for key in blob_keys(api, held["id"]):
        assert api.store.stat(key).legal_hold is True

    due = api.client.get("/api/v1/retention/due?as_of=2030-01-01", headers=o.anna).json()
    assert {f["file_id"] for f in due["files"]} == {free["id"], late["id"]}

    run = approved_run(api, o, "2030-01-01")
    assert run["items"] == {"pending": 2}
    # A hold placed after approval still wins: the file is skipped at execution.
    r = api.client.post(
        f"/api/v1/retention/files/{late['id']}/holds",
        json={"reason": "Prüfung Rechnungsprüfungsamt", "owner": "RPA"},
        headers=o.bert,
    )
    assert r.status_code == 201
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/execute", headers=o.anna)
    assert r.status_code == 409  # the run is for 2030: not before then
    r = api.client.post("/api/v1/retention/runs", json={"as_of": "2024-01-01"}, headers=o.anna)
    assert r.status_code == 409  # everything due is held or in the 2030 run
    cancel = api.client.post(f"/api/v1/retention/runs/{run['id']}/cancel", headers=o.anna)
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"

    today = date.today().isoformat()
    run = approved_run(api, o, today)
    assert run["items"] == {"pending": 1}  # only the free file; both held ones are left out
    api.client.post(
        f"/api/v1/retention/files/{free['id']}/holds",
        json={"reason": "late", "owner": "RPA"},
        headers=o.anna,
    )
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/execute", headers=o.bert)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == {"skipped": 1} and r.json()["status"] == "completed"
    for f in (held, free, late):
        assert (
            api.client.get(f"/api/v1/files/{f['id']}", headers=o.unit.clerk).json()["status"]
            == "held"
        )
        for key in blob_keys(api, f["id"]):
            assert api.store.exists(key)

    # The last release lifts the legal holds.
    r = api.client.post(f"/api/v1/retention/holds/{hold['id']}/release", json={}, headers=o.anna)
    assert r.status_code == 200 and r.json()["released_by"] == "anna"
    for key in blob_keys(api, held["id"]):
        assert api.store.stat(key).legal_hold is False
    assert (
        api.client.get(f"/api/v1/files/{held['id']}", headers=o.unit.clerk).json()["status"]
        == "closed"
    )
    again = api.client.post(f"/api/v1/retention/holds/{hold['id']}/release", headers=o.anna)
    assert again.status_code == 409


def test_a_unit_a_file_was_forwarded_to_reads_it_and_decides_nothing(api: Api) -> None:
    owner, reader = office(api), office(api)
    item = factories.plan_item(api, retention_years=1, archive_value="V")
    f, _ = file_with_documents(api, owner, item["code"], documents=1)
    r = api.client.post(
        "/api/v1/forwardings",
        json={"file_id": f["id"], "to_unit": reader.unit.code, "purpose": "information"},
        headers=owner.unit.clerk,
    )
    assert r.status_code == 201, r.text
    base = f"/api/v1/retention/files/{f['id']}"
    assert api.client.get(base, headers=reader.anna).status_code == 200  # reading is granted

    hold = {"reason": "Klage", "owner": "Rechtsamt"}
    refused = [
        api.client.post(f"{base}/close", headers=reader.unit.clerk),
        api.client.post(f"{base}/holds", json=hold, headers=reader.anna),
    ]
    close(api, owner, f["id"], "2015-03-01T10:00:00+01:00")
    refused.append(
        api.client.post(f"{base}/reopen", json={"reason": "weiter"}, headers=reader.unit.clerk)
    )
    r = api.client.post(f"{base}/holds", json=hold, headers=owner.anna)
    assert r.status_code == 201, r.text
    refused.append(api.client.post(f"/api/v1/retention/holds/{r.json()['id']}/release",
                                   headers=reader.anna))  # fmt: skip
    for answer in refused:
        assert answer.status_code == 403, answer.text
        assert "forwarded to you for reading only" in answer.json()["detail"]
    assert api.client.get(base, headers=owner.anna).json()["status"] == "held"

    # Due for its own unit once the hold goes, never for the unit that reads it.
    (active,) = api.client.get(f"{base}/holds", headers=owner.anna).json()
    r = api.client.post(f"/api/v1/retention/holds/{active['id']}/release", headers=owner.anna)
    assert r.status_code == 200, r.text
    today = date.today().isoformat()
    due = {
        name: [x["file_id"] for x in api.client.get(
            "/api/v1/retention/due", params={"as_of": today, "limit": 1000}, headers=o.anna
        ).json()["files"]]
        for name, o in (("owner", owner), ("reader", reader))
    }  # fmt: skip
    assert f["id"] in due["owner"] and f["id"] not in due["reader"]
    r = api.client.post("/api/v1/retention/runs", json={"as_of": today}, headers=reader.anna)
    assert r.status_code in (201, 409), r.text
    if r.status_code == 201:
        items = api.client.get(f"/api/v1/retention/runs/{r.json()['id']}/items",
                               headers=reader.anna).json()  # fmt: skip
        assert f["id"] not in [i["file_id"] for i in items]


def test_a_longer_retention_rule_extends_the_locks_of_closed_files(api: Api) -> None:
    o = office(api)
    item = factories.plan_item(api, retention_years=10)
    f, _ = file_with_documents(api, o, item["code"])
    year = datetime.fromisoformat(close(api, o, f["id"])["closed_at"]).year
    admin = api.auth(["admin"], [])
    keys = blob_keys(api, f["id"])

    r = api.client.patch(f"/api/v1/plan-items/{item['id']}", json={"retention_years": 30},
                         headers=admin)  # fmt: skip
    assert r.status_code == 200, r.text
    longer = datetime(year + 31, 1, 1, tzinfo=UTC)
    assert [api.store.stat(key).retain_until for key in keys] == [longer] * len(keys)
    state = api.client.get(f"/api/v1/retention/files/{f['id']}", headers=o.anna).json()
    assert state["due_on"] == longer.date().isoformat()

    # A shorter rule again cannot shorten what is locked (nor may S3).
    r = api.client.patch(f"/api/v1/plan-items/{item['id']}", json={"retention_years": 5},
                         headers=admin)  # fmt: skip
    assert r.status_code == 200, r.text
    assert [api.store.stat(key).retain_until for key in keys] == [longer] * len(keys)

"""Retention actions carry an Idempotency-Key: a retried request is answered, not repeated."""

from __future__ import annotations

from tests import factories
from tests.conftest import Api
from tests.retention import helpers


def test_retried_hold_and_approval_are_replayed_not_repeated(api: Api) -> None:
    o = helpers.office(api)
    plan = factories.plan_item(api, retention_years=10, archive_value="V")
    f, _ = helpers.file_with_documents(api, o, plan["code"], documents=1)
    helpers.close(api, o, f["id"], closed_at="2001-03-05T10:00:00+00:00")

    hold = {"reason": "Rechtsstreit 3 K 12/26", "owner": "Rechtsamt"}
    first = api.client.post(f"/api/v1/retention/files/{f['id']}/holds", json=hold,
                            headers={**o.anna, "Idempotency-Key": "hold-1"})
    again = api.client.post(f"/api/v1/retention/files/{f['id']}/holds", json=hold,
                            headers={**o.anna, "Idempotency-Key": "hold-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    holds = api.client.get(f"/api/v1/retention/files/{f['id']}/holds", headers=o.anna).json()
    assert len(holds) == 1
    other = api.client.post(f"/api/v1/retention/files/{f['id']}/holds",
                            json={**hold, "reason": "anders"},
                            headers={**o.anna, "Idempotency-Key": "hold-1"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    release = api.client.post(f"/api/v1/retention/holds/{first.json()['id']}/release",
                              headers=o.anna)
    assert release.status_code == 200, release.text

    run = api.client.post("/api/v1/retention/runs", json={"as_of": "2026-06-01"},
                          headers={**o.anna, "Idempotency-Key": "run-1"})
    assert run.status_code == 201, run.text
    url = f"/api/v1/retention/runs/{run.json()['id']}/approve"
    approved = api.client.post(url, headers={**o.bert, "Idempotency-Key": "approve-1"})
    assert approved.status_code == 200, approved.text
    # Without the key, approving twice is a conflict; with it, the retry gets the answer.
    retried = api.client.post(url, headers={**o.bert, "Idempotency-Key": "approve-1"})
    assert retried.status_code == 200
    assert retried.headers.get("idempotent-replayed") == "true"
    assert retried.json() == approved.json()
    assert api.client.post(url, headers=o.bert).status_code == 409

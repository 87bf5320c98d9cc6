"""File references (Aktenzeichen) are generated, formatted and unique under concurrency."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from tests import factories
from tests.conftest import Api


def test_reference_has_plan_code_year_and_sequence(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    first = factories.file(api, unit, item["code"])
    second = factories.file(api, unit, item["code"])
    year = datetime.now(UTC).year
    assert first["reference"] == f"{item['code']}-{year}/0001"
    assert second["reference"] == f"{item['code']}-{year}/0002"


def test_concurrent_creation_never_hands_out_a_reference_twice(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)

    def create(i: int) -> str:
        r = api.client.post(
            "/api/v1/files",
            json={"title": f"Akte {i}", "plan_code": item["code"]},
            headers=unit.clerk,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["reference"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        references = list(pool.map(create, range(40)))
    assert len(set(references)) == 40
    numbers = sorted(int(re.split("/", ref)[1]) for ref in references)
    assert numbers == list(range(1, 41))


def test_duplicate_legacy_reference_is_a_conflict(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    legacy = f"{item['code']}-1998/0007"
    factories.file(api, unit, item["code"], reference=legacy)
    r = api.client.post(
        "/api/v1/files",
        json={"title": "again", "plan_code": item["code"], "reference": legacy},
        headers=unit.clerk,
    )
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert legacy in r.json()["detail"]


def test_a_legacy_reference_ahead_of_the_counter_is_skipped_not_a_dead_end(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    year = datetime.now(UTC).year
    # A file taken over with its old reference, holding numbers the counter has not reached.
    for number in (1, 2):
        factories.file(api, unit, item["code"], reference=f"{item['code']}-{year}/{number:04d}")
    created = [factories.file(api, unit, item["code"])["reference"] for _ in range(2)]
    assert created == [f"{item['code']}-{year}/0003", f"{item['code']}-{year}/0004"]

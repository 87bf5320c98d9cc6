"""The date rules: due on 1 January after the period, counted from the local year of closure."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from retention.rules import closed_before_for_due, due_date, lock_until

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("closed_at", "years", "due"),
    [
        (datetime(2019, 3, 5, 10, tzinfo=BERLIN), 10, date(2030, 1, 1)),
        # The last minute of a year and the first of the next differ by a whole year.
        (datetime(2019, 12, 31, 23, 59, tzinfo=BERLIN), 10, date(2030, 1, 1)),
        (datetime(2020, 1, 1, 0, 0, tzinfo=BERLIN), 10, date(2031, 1, 1)),
        # 00:30 on New Year's Day in Berlin is still the old year in UTC: local year counts.
        (datetime(2019, 12, 31, 23, 30, tzinfo=UTC), 10, date(2031, 1, 1)),
        # Leap days change nothing: the period runs in whole calendar years.
        (datetime(2020, 2, 29, 12, tzinfo=BERLIN), 5, date(2026, 1, 1)),
        (datetime(2024, 2, 29, 12, tzinfo=BERLIN), 0, date(2025, 1, 1)),
    ],
)
def test_due_date_is_first_of_january_after_the_period(
    closed_at: datetime, years: int, due: date
) -> None:
    assert due_date(closed_at, years, BERLIN) == due


def test_permanent_retention_is_never_due() -> None:
    assert due_date(datetime(1990, 1, 1, tzinfo=UTC), None, BERLIN) is None


@pytest.mark.parametrize(
    "closed_at",
    [
        datetime(2019, 12, 31, 22, 59, 59, tzinfo=UTC),  # 23:59:59 local, 2019
        datetime(2019, 12, 31, 23, 0, 0, tzinfo=UTC),  # 00:00 local, 2020
        datetime(2020, 2, 29, 0, 0, tzinfo=UTC),
        datetime(2019, 3, 5, 9, 0, tzinfo=UTC),
    ],
)
@pytest.mark.parametrize("as_of", [date(2029, 12, 31), date(2030, 1, 1), date(2031, 1, 1)])
def test_cutoff_agrees_with_the_due_date(closed_at: datetime, as_of: date) -> None:
    due = due_date(closed_at, 10, BERLIN)
    assert due is not None
    assert (closed_at < closed_before_for_due(as_of, 10, BERLIN)) == (due <= as_of)


def test_lock_runs_until_midnight_utc_of_the_due_day() -> None:
    assert lock_until(date(2030, 1, 1)) == datetime(2030, 1, 1, tzinfo=UTC)

"""The date rules of retention: when a closed file falls due, and the policy from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo

from eakte.settings import Settings
from storage import RetentionMode


@dataclass(frozen=True)
class RetentionPolicy:
    """What the settings say about retention, passed to the services."""

    mode: RetentionMode = RetentionMode.GOVERNANCE
    four_eyes: bool = True
    timezone: tzinfo = ZoneInfo("Europe/Berlin")
    archive_name: str = "Kommunalarchiv"
    agency_name: str = "Stadtverwaltung"

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The policy configured by EAKTE_RETENTION_* settings."""
        return cls(
            mode=RetentionMode(settings.retention_mode),
            four_eyes=settings.retention_four_eyes,
            timezone=ZoneInfo(settings.retention_timezone),
            archive_name=settings.retention_archive_name,
            agency_name=settings.retention_agency_name,
        )

    def today(self) -> date:
        """Today's date where the administration works."""
        return datetime.now(self.timezone).date()


def due_date(closed_at: datetime, retention_years: int | None, tz: tzinfo) -> date | None:
    """The day a file closed at `closed_at` falls due; None for permanent retention.

    The period starts on 1 January of the year after closure (closed 2019-03-05 with 10
    years: due 2030-01-01). The year of closure is the local one: a file closed at 00:30 on
    New Year's Day in Germany was closed in the new year, though it is still the old one in UTC.
    """
    if retention_years is None:
        return None
    local = closed_at.astimezone(tz)
    return date(local.year + 1 + retention_years, 1, 1)


def closed_before_for_due(as_of: date, retention_years: int, tz: tzinfo) -> datetime:
    """The instant (UTC) before which a file must have been closed to be due on `as_of`.

    A file is due on `as_of` when due_date <= as_of, i.e. when its local closure year is at
    most `as_of.year - 1 - years`, i.e. it closed before local 1 January of
    `as_of.year - years`. Turning the rule into one cut-off per plan item lets the database
    compare `closed_at` directly, with no date arithmetic per row.
    """
    year = as_of.year - retention_years
    if year < 1:
        return datetime.min.replace(tzinfo=UTC)
    return datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)


def lock_until(due: date) -> datetime:
    """The Object Lock retention date of a file's blobs: 00:00 UTC of the due day."""
    return datetime(due.year, due.month, due.day, tzinfo=UTC)

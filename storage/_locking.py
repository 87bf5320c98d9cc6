"""Object Lock rules shared by the stores, written to behave as S3 (and SeaweedFS) do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.base import BlobStat, RetentionMode
from storage.errors import BlobLocked


def now_utc() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def normalize_until(until: datetime) -> datetime:
    """Return `until` in UTC, rounded up to a whole second as S3 stores it.

    Rounding up, not down, so a retention is never shorter than asked for.
    """
    if until.tzinfo is None or until.utcoffset() is None:
        raise ValueError("the retention date must be timezone-aware")
    until = until.astimezone(UTC)
    if until.microsecond:
        until = until.replace(microsecond=0) + timedelta(seconds=1)
    return until


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, for messages."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mode(stat: BlobStat) -> RetentionMode:
    # A date without a mode should not happen; treat it as the stricter mode.
    return stat.retention_mode or RetentionMode.COMPLIANCE


def refuse_delete(stat: BlobStat, now: datetime, *, bypass_governance: bool) -> BlobLocked | None:
    """The reason deleting the blob is refused, or None if it may be deleted."""
    if stat.legal_hold:
        return BlobLocked(stat.key, "a legal hold is on", legal_hold=True)
    if stat.retain_until is not None and stat.retain_until > now:
        mode = _mode(stat)
        if mode is RetentionMode.GOVERNANCE and bypass_governance:
            return None
        hint = "" if mode is RetentionMode.COMPLIANCE else " (GOVERNANCE, not bypassed)"
        return BlobLocked(
            stat.key,
            f"{mode.value} retention until {format_time(stat.retain_until)}{hint}",
            retain_until=stat.retain_until,
        )
    return None


def refuse_overwrite(stat: BlobStat, now: datetime) -> BlobLocked | None:
    """The reason replacing the blob's content is refused, or None if it may be replaced."""
    # A running GOVERNANCE retention protects the content too; there is no bypass for puts.
    return refuse_delete(stat, now, bypass_governance=False)


def refuse_retention_change(
    stat: BlobStat, until: datetime, mode: RetentionMode, now: datetime
) -> BlobLocked | None:
    """The reason setting this retention is refused, or None if it is allowed.

    While a retention runs it may be extended in the same mode, but not shortened and not
    switched to another mode: S3 needs the governance bypass for that, which we do not offer.
    """
    if stat.retain_until is None or stat.retain_until <= now:
        return None
    current = _mode(stat)
    running = f"{current.value} retention until {format_time(stat.retain_until)}"
    if mode is not current:
        return BlobLocked(
            stat.key,
            f"{running} cannot be changed to {mode.value}",
            retain_until=stat.retain_until,
        )
    if until < stat.retain_until:
        return BlobLocked(
            stat.key,
            f"{running} cannot be shortened to {format_time(until)}",
            retain_until=stat.retain_until,
        )
    return None

"""The destruction register: every disposal record, also written append-only to object storage.

A restore brings back the database as it was when the backup was taken. Files disposed of
after that would come back with it; the register, kept outside the database (in the backup
target when one is configured), tells the restore which disposals to apply again.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from sqlalchemy import Date, Uuid, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from eakte.db import UTCDateTime, on_commit
from retention.models import DisposalRecord, DisposalRun
from storage import BlobNotFound, BlobStore

log = logging.getLogger(__name__)

PREFIX = "register/"
FORMAT = "eakte-destruction-register/1"

#: Engine -> the store its disposal records are registered in (set by the composition root).
_targets: weakref.WeakKeyDictionary[Engine, Callable[[], BlobStore]] = (
    weakref.WeakKeyDictionary()
)


_default: list[Callable[[], BlobStore]] = []


def attach(engine: Engine, store: Callable[[], BlobStore]) -> None:
    """Register every disposal record committed through `engine` in `store()`."""
    _targets[engine] = store


def attach_default(store: Callable[[], BlobStore]) -> None:
    """Register records of engines not attached one by one (the CLI's commands) in `store()`."""
    _default[:] = [store]


def _to_json(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[column.key] = value
    return out


def _from_json(model: type[Any], data: dict[str, Any]) -> Any:
    values: dict[str, Any] = {}
    for column in model.__table__.columns:
        if column.key not in data:
            continue
        value = data[column.key]
        if value is not None:
            if isinstance(column.type, UTCDateTime):
                value = datetime.fromisoformat(value).astimezone(UTC)
            elif isinstance(column.type, Date):
                value = date.fromisoformat(value)
            elif isinstance(column.type, Uuid):
                value = uuid.UUID(value)
        values[column.key] = value
    return model(**values)


def entry_for(rec: DisposalRecord, run: DisposalRun | None) -> dict[str, Any]:
    """The register entry of a disposal record, with its run (the run may be newer than a
    backup, and the record's row needs it)."""
    return {
        "format": FORMAT,
        "record": _to_json(rec),
        "run": _to_json(run) if run is not None else None,
    }


def entry_key(rec: DisposalRecord) -> str:
    """Where the entry is stored: sortable by disposal time, unique by record id."""
    at = rec.disposed_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{PREFIX}{at}-{rec.id}.json"


def write_entry(store: BlobStore, key: str, entry: dict[str, Any]) -> bool:
    """Store an entry unless it is there already (append-only: never overwritten)."""
    if store.exists(key):
        return False
    body = json.dumps(entry, sort_keys=True, indent=1).encode()
    store.put(key, io.BytesIO(body), content_type="application/json")
    return True


def read_entries(store: BlobStore) -> Iterator[tuple[DisposalRecord, DisposalRun | None]]:
    """The records (and runs) of the register, oldest first."""
    for stat in store.list(PREFIX):
        try:
            with store.open(stat.key) as reader:
                data = json.loads(b"".join(reader))
        except BlobNotFound:
            continue
        if data.get("format") != FORMAT:
            log.warning("register entry %s has an unknown format; skipped", stat.key)
            continue
        run = _from_json(DisposalRun, data["run"]) if data.get("run") else None
        yield _from_json(DisposalRecord, data["record"]), run


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    records = [obj for obj in session.new if isinstance(obj, DisposalRecord)]
    if not records:
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    target = _targets.get(engine) or (_default[0] if _default else None)
    if target is None:
        return  # not configured here: the next `eakte backup create` registers it
    for rec in records:
        run = session.get(DisposalRun, rec.run_id)
        write = partial(_write_after_commit, target, entry_key(rec), entry_for(rec, run))
        on_commit(session, write)


def _write_after_commit(target: Callable[[], BlobStore], key: str, entry: dict[str, Any]) -> None:
    # The disposal has happened; failing here must not turn it into an error for the user.
    try:
        write_entry(target(), key, entry)
    except Exception:
        log.exception(
            "destruction register entry %s not written; the next `eakte backup create` "
            "writes it from the database",
            key,
        )


def register_store(backup_target: str | None, primary_url: str, primary: BlobStore) -> Callable[
    [], BlobStore
]:
    """Where entries go: the backup target when configured (it outlives a lost primary
    store), else the primary store's `register/` (copied with every backup)."""
    if not backup_target:
        return lambda: primary
    from eakte.backup.target import open_target

    opened: list[BlobStore] = []

    def target() -> BlobStore:
        if not opened:  # opened on first use: starting the app needs no backup target
            opened.append(open_target(backup_target, primary_url))
        return opened[0]

    return target

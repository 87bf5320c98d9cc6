"""The destruction register: every disposal record, also written append-only to object storage.

A restore brings back the database as it was when the backup was taken. Files disposed of
after that would come back with it; the register, kept outside the database (in the backup
target when one is configured), tells the restore which disposals to apply again.

With a backup key the entries are sealed with it (AES-GCM, as the backup's blobs are), so that
whoever can write to the target cannot add an entry that makes a restore dispose of a file:
an entry that does not authenticate is refused, and the restore reports it.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from sqlalchemy import Date, Uuid, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from eakte.backup.crypto import DecryptionFailed, is_sealed, seal, unseal
from eakte.db import UTCDateTime, on_commit
from retention.models import DisposalRecord, DisposalRun
from storage import BlobNotFound, BlobStore

log = logging.getLogger(__name__)

PREFIX = "register/"
FORMAT = "eakte-destruction-register/1"


#: The backup key that seals entries: the key itself, or a function that reads it when an
#: entry is written (the CLI reads its settings only then).
SealKey = bytes | Callable[[], bytes | None] | None


@dataclass(frozen=True)
class _Destination:
    """Where an engine's disposal records are registered, and the key that seals them."""

    store: Callable[[], BlobStore]
    seal_key: SealKey

    def key(self) -> bytes | None:
        """The sealing key now (None: entries are written in plain JSON)."""
        return self.seal_key() if callable(self.seal_key) else self.seal_key


#: Engine -> where its disposal records are registered (set by the composition root).
_targets: weakref.WeakKeyDictionary[Engine, _Destination] = weakref.WeakKeyDictionary()


_default: list[_Destination] = []


def attach(engine: Engine, store: Callable[[], BlobStore], seal_key: SealKey = None) -> None:
    """Register every disposal record committed through `engine` in `store()`, sealed with
    `seal_key` (the backup key, see `eakte.backup.crypto.backup_key`) when one is set."""
    _targets[engine] = _Destination(store, seal_key)


def attach_default(store: Callable[[], BlobStore], seal_key: SealKey = None) -> None:
    """Register records of engines not attached one by one (the CLI's commands) in `store()`."""
    _default[:] = [_Destination(store, seal_key)]


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


def entry_key(rec: DisposalRecord, sealed: bool = False) -> str:
    """Where the entry is stored: sortable by disposal time, unique by record id.

    A sealed entry has its own name, so a backup with a key writes the sealed entry of a
    record even where a plain one (written before the key was set) is already stored.
    """
    at = rec.disposed_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{PREFIX}{at}-{rec.id}.{'sealed' if sealed else 'json'}"


def write_entry(
    store: BlobStore, key: str, entry: dict[str, Any], seal_key: bytes | None = None
) -> bool:
    """Store an entry unless it is there already (append-only: never overwritten)."""
    if store.exists(key):
        return False
    body = json.dumps(entry, sort_keys=True, indent=1).encode()
    if seal_key is not None:
        body = seal(seal_key, body)
    content_type = "application/octet-stream" if seal_key is not None else "application/json"
    store.put(key, io.BytesIO(body), content_type=content_type)
    return True


class EntryRefused(Exception):
    """A register entry that cannot be trusted or read; the message says why.

    `record_id` is the record the entry claims to be, when it can be read at all: not to be
    trusted, only to tell whether an authentic copy of it exists elsewhere.
    """

    def __init__(self, reason: str, record_id: uuid.UUID | None = None) -> None:
        super().__init__(reason)
        self.record_id = record_id


def parse_entry(
    data: bytes, seal_key: bytes | None, *, authenticated: bool = False
) -> tuple[DisposalRecord, DisposalRun | None]:
    """The record (and run) of a stored entry; EntryRefused if it must not be applied.

    With a key, an entry counts only if it is sealed with that key, unless the caller has
    authenticated the bytes otherwise (`authenticated`: an entry read from an encrypted
    backup's blobs was sealed as a whole by the backup).
    """
    if is_sealed(data):
        if seal_key is None:
            raise EntryRefused("it is sealed, and no backup key is set")
        try:
            data = unseal(seal_key, data)
        except DecryptionFailed:
            raise EntryRefused("it does not authenticate with the backup key") from None
    elif seal_key is not None and not authenticated:
        record_id, claim = _claim(data)
        raise EntryRefused(f"it is not sealed with the backup key{claim}", record_id)
    try:
        parsed = json.loads(data)
        if not isinstance(parsed, dict) or parsed.get("format") != FORMAT:
            raise EntryRefused("its format is unknown")
        run = _from_json(DisposalRun, parsed["run"]) if parsed.get("run") else None
        return _from_json(DisposalRecord, parsed["record"]), run
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EntryRefused(f"it cannot be read ({exc})") from None


def _claim(data: bytes) -> tuple[uuid.UUID | None, str]:
    """The record id an unauthenticated entry names, and what it claims, for the report."""
    try:
        record = json.loads(data)["record"]
        return uuid.UUID(record["id"]), (
            f" (it claims {record['reference']} was {record['action']} at "
            f"{record['disposed_at']})"
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, ""


@dataclass(frozen=True)
class Entry:
    """A register entry that may be applied: where it was found, its record and run."""

    key: str
    record: DisposalRecord
    run: DisposalRun | None


@dataclass(frozen=True)
class Refusal:
    """A register entry that must not be applied, why, and the record it claims to be."""

    key: str
    reason: str
    record_id: uuid.UUID | None


@dataclass
class Contents:
    """What a register holds: entries to apply, entries refused."""

    entries: list[Entry] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def read_entries(store: BlobStore, seal_key: bytes | None) -> Contents:
    """The entries of the register, oldest first, and the ones refused."""
    contents = Contents()
    for stat in store.list(PREFIX):
        try:
            with store.open(stat.key) as reader:
                data = b"".join(reader)
        except BlobNotFound:
            continue
        try:
            record, run = parse_entry(data, seal_key)
        except EntryRefused as exc:
            log.warning("register entry %s refused: %s", stat.key, exc)
            contents.refused.append(Refusal(stat.key, str(exc), exc.record_id))
            continue
        contents.entries.append(Entry(stat.key, record, run))
    return contents


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    records = [obj for obj in session.new if isinstance(obj, DisposalRecord)]
    if not records:
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    destination = _targets.get(engine) or (_default[0] if _default else None)
    if destination is None:
        return  # not configured here: the next `eakte backup create` registers it
    seal_key = destination.key()
    for rec in records:
        run = session.get(DisposalRun, rec.run_id)
        write = partial(
            _write_after_commit,
            destination.store,
            seal_key,
            entry_key(rec, sealed=seal_key is not None),
            entry_for(rec, run),
        )
        on_commit(session, write)


def _write_after_commit(
    store: Callable[[], BlobStore], seal_key: bytes | None, key: str, entry: dict[str, Any]
) -> None:
    # The disposal has happened; failing here must not turn it into an error for the user.
    try:
        write_entry(store(), key, entry, seal_key)
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

"""Backup use cases: create a backup, verify it, restore it into an empty installation.

Target layout: `manifest-<time>.json` (written last: a backup without one is incomplete),
`db/<time>.dump`, `blobs/<sha256>` (content-addressed, so unchanged content is copied once,
across backups and across an interrupted run and its rerun), `register/` (the destruction
register, see eakte.backup.register), `target.json` (how the target's backups are encrypted,
see eakte.backup.target), `locks/` (the lock of the running backup, see eakte.backup.lock) and
`staging/` (uploads not yet checked against their address).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy.orm import Session

from eakte.audit.service import record, verify_chain
from eakte.auth.principal import SYSTEM
from eakte.backup import register, repository
from eakte.backup.crypto import (
    DecryptionFailed,
    backup_key,
    decrypt_chunks,
    encrypt_chunks,
    key_id,
    manifest_authentic,
    manifest_mac,
)
from eakte.backup.database import (
    database_is_empty,
    dialect_of,
    dump_database,
    restore_database,
)
from eakte.backup.lock import TargetLock
from eakte.backup.objects import Listed, list_objects, move_into_place, put_new
from eakte.backup.target import (
    MANIFEST_PREFIX,
    manifest_names,
    read_manifest,
    read_marker,
    write_marker,
)
from eakte.db import SessionFactory, make_engine, make_session_factory, unit_of_work, utcnow
from eakte.errors import Conflict, DomainError, InvalidInput
from eakte.files.models import FileStatus
from eakte.settings import Settings
from retention.models import DisposalAction, DisposalRecord, DisposalRun
from retention.rules import RetentionPolicy
from retention.service import protect_restored
from storage import BlobNotFound, BlobStore, ChunkStream

log = logging.getLogger(__name__)

FORMAT = "eakte-backup/1"
BLOBS = "blobs/"
DB = "db/"
STAGING = "staging/"
#: Blobs up to this size are hashed in a local spool before they are stored; larger ones in
#: a staging object in the target (see `_copy_blob`).
SPOOL_MAX = 64 * 1024 * 1024
#: A register entry is a few KiB of JSON; anything larger under `register/` is not one.
REGISTER_ENTRY_MAX = 1024 * 1024
BUFFER = 1024 * 1024

#: Progress callback: (phase, items done in this call, items in the phase).
Progress = Callable[[str, int, int], None]


class BackupCorrupt(DomainError):
    """The backup does not match its manifest (a checksum differs, or content is missing)."""

    status = 422
    title = "Backup corrupt"
    type_slug = "backup-corrupt"


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _buffered(chunks: Iterator[bytes]) -> BinaryIO:
    return io.BufferedReader(ChunkStream(chunks), BUFFER)


def _hashing(chunks: Iterable[bytes], digest: Any, counter: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        counter[0] += len(chunk)
        yield chunk


def _put(
    target: BlobStore, key: str, plaintext: BinaryIO, enc: bytes | None, size: int | None = None
) -> tuple[str, int]:
    """Store plaintext under a new key (sealed if a key is given); returns its sha256 and size."""
    if enc is None:
        result = put_new(target, key, plaintext, size)
        return result.sha256, result.size
    digest, length = hashlib.sha256(), [0]
    plain = _buffered(_hashing(iter(lambda: plaintext.read(BUFFER), b""), digest, length))
    put_new(target, key, _buffered(encrypt_chunks(enc, plain)))
    return digest.hexdigest(), length[0]


def _open_plain(target: BlobStore, key: str, enc: bytes | None) -> Iterator[bytes]:
    """The plaintext chunks of a stored object (decrypted if the backup is encrypted)."""
    reader = target.open(key)
    try:
        yield from (decrypt_chunks(enc, reader) if enc is not None else reader)
    finally:
        reader.close()


def _check_manifest(
    manifest: dict[str, Any], enc: bytes | None, *, allow_unauthenticated: bool = False
) -> None:
    """Refuse a manifest that the configured key does not vouch for.

    Anyone who can write to the target can rewrite its plain-JSON manifests. Under a key a
    manifest is trusted only with a valid MAC: one that claims to be unencrypted, or whose
    MAC is wrong, is refused. A manifest without a MAC (written before backups carried
    one) passes only with `allow_unauthenticated`, an operator's decision. Without a key
    nothing can be authenticated: the target itself must then be trusted.
    """
    name = manifest.get("name")
    if not manifest.get("encrypted"):
        if enc is not None:
            raise InvalidInput(
                f"backup {name} says it is not encrypted, but EAKTE_BACKUP_KEY is set: a "
                "manifest that drops the encryption may have been forged; unset "
                "EAKTE_BACKUP_KEY to read a backup made without a key"
            )
        return
    if enc is None:
        raise InvalidInput("the backup is encrypted; set EAKTE_BACKUP_KEY to its key")
    if manifest.get("key_id") != key_id(enc):
        raise InvalidInput("EAKTE_BACKUP_KEY is not the key this backup was encrypted with")
    if "mac" not in manifest:
        if allow_unauthenticated:
            log.warning("backup %s: manifest without a MAC accepted as the operator asked", name)
            return
        raise InvalidInput(
            f"the manifest of backup {name} carries no MAC (it was written before manifests "
            "were authenticated); if the target is known to be untouched, pass "
            "--allow-unauthenticated"
        )
    if not manifest_authentic(enc, manifest):
        raise BackupCorrupt(
            f"the manifest of backup {name} fails authentication: it was changed after it "
            "was written, or not written with this key"
        )


def _trusted_previous(
    target: BlobStore, names: list[str], enc: bytes | None
) -> dict[str, Any] | None:
    """The newest manifest, if a new backup may take checksums from it (see `_write_backup`).

    Under a key only an authenticated one: a forged entry would otherwise make the new
    backup name other content for a blob. Without one, the blobs are hashed again.
    """
    if not names:
        return None
    previous = read_manifest(target, names[-1])
    if enc is not None and not manifest_authentic(enc, previous):
        log.warning("backup: %s is not authenticated; its checksums are not reused", names[-1])
        return None
    return previous


# --- create -------------------------------------------------------------------------------


@dataclass
class BackupReport:
    """What `create_backup` did."""

    name: str
    blobs: int = 0
    copied: int = 0
    bytes_copied: int = 0
    register_written: int = 0
    stale_removed: list[str] = field(default_factory=list)
    staged_removed: int = 0
    #: Blobs whose content does not match the checksum the database recorded: backed up
    #: as they are (under their content's address), and reported.
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def create_backup(
    settings: Settings,
    store: BlobStore,
    target: BlobStore,
    *,
    progress: Progress = _no_progress,
) -> BackupReport:
    """Write a consistent backup of the database and every blob to `target`.

    Order matters for consistency: the audit head is read before the dump (so the dump holds
    it), the blobs are listed after it (so every version row in the dump finds its content,
    unless a disposal deleted it in between, which the register accounts for), and the
    disposal records are read last, just before the manifest, so the register has every
    disposal that may have removed content the manifest lacks.
    """
    started = time.monotonic()
    enc = backup_key(settings)
    dialect = dialect_of(settings.database_url)
    at = utcnow()
    name = _stamp(at)
    # Held from before the first look at the target until the manifest is written: what
    # this run removes as left over (dumps, staged uploads) could otherwise be another run's.
    with TargetLock(target, name) as lock:
        names = manifest_names(target)
        _check_target(target, names, enc)
        previous = _trusted_previous(target, names, enc)
        report = BackupReport(name)
        report.stale_removed = _remove_stale_dumps(target, names)
        report.staged_removed = _remove_staged(target)
        engine = make_engine(settings.database_url)
        try:
            manifest = _write_backup(
                settings, store, target, make_session_factory(engine), previous, report,
                enc=enc, dialect=dialect, at=at, progress=progress,
            )
        finally:
            engine.dispose()
        lock.check()
        if not target.exists(manifest["database"]["key"]):
            raise Conflict(
                f"the dump {manifest['database']['key']} of backup {name} is gone from the "
                "target; run the backup again"
            )
        if enc is not None:
            manifest["mac"] = manifest_mac(enc, manifest)
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        target.put(
            f"{MANIFEST_PREFIX}{name}.json", io.BytesIO(body), content_type="application/json"
        )
    report.seconds = time.monotonic() - started
    return report


def _check_target(target: BlobStore, manifests: list[str], enc: bytes | None) -> None:
    """Refuse a target whose backups are encrypted otherwise; record it on first use.

    The record (the target's marker) is written before anything else, so even the blobs of
    a run interrupted before its manifest are never trusted by a run with another key.
    """
    marker = read_marker(target)
    if marker is None:
        if manifests:
            # A target from before markers: its manifests say how it is encrypted (runs with
            # another key were refused against them).
            newest = read_manifest(target, manifests[-1])
            marker = write_marker(target, bool(newest.get("encrypted")), newest.get("key_id"))
        elif _holds_backup_content(target):
            raise Conflict(
                "the target holds blobs or a dump of an interrupted backup but no record of "
                "how they were encrypted (written before targets kept one); use another "
                f"target, or remove its {BLOBS} and {DB} first"
            )
        else:
            marker = write_marker(target, enc is not None, key_id(enc) if enc else None)
    if bool(marker.get("encrypted")) != (enc is not None):
        raise Conflict(
            "the target holds "
            + ("encrypted" if marker.get("encrypted") else "unencrypted")
            + " backups; use another target when switching encryption on or off"
        )
    if enc is not None and marker.get("key_id") != key_id(enc):
        raise Conflict("the target's backups use another key; use another target for a new key")


def _holds_backup_content(target: BlobStore) -> bool:
    return any(next(iter(target.list(prefix)), None) is not None for prefix in (BLOBS, DB))


def _write_backup(
    settings: Settings,
    store: BlobStore,
    target: BlobStore,
    sessions: SessionFactory,
    previous: dict[str, Any] | None,
    report: BackupReport,
    *,
    enc: bytes | None,
    dialect: str,
    at: datetime,
    progress: Progress,
) -> dict[str, Any]:
    """Dump, blobs and register into the target; returns the manifest to write."""
    # The target's listing does not depend on the dump: take it while the dump runs.
    listing = ThreadPoolExecutor(1)
    in_target_future = listing.submit(
        lambda: {o.key[len(BLOBS) :] for o in list_objects(target, BLOBS)}
    )
    listing.shutdown(wait=False)
    with unit_of_work(sessions) as session:
        head_seq, head_hash = repository.audit_head(session)
        hints = repository.checksum_hints(session)
    progress("database", 0, 1)
    database = _backup_database(settings.database_url, target, report.name, enc, dialect)
    progress("database", 1, 1)

    # Resumable and incremental: what the previous manifest says about an unchanged blob
    # (same key, size and time) is trusted, and content already in the target is skipped.
    known = {
        b["key"]: b for b in (previous or {}).get("blobs", []) if b.get("modified") is not None
    }
    in_target = in_target_future.result()
    blobs: list[dict[str, Any]] = []
    todo: list[tuple[Listed, str | None]] = []
    for stat in list_objects(store):
        modified = stat.last_modified.isoformat()
        prev = known.get(stat.key)
        sha = (
            prev["sha256"]
            if prev and prev["size"] == stat.size and prev["modified"] == modified
            else hints.get(stat.key)
        )
        if sha is not None and sha in in_target:
            blobs.append({"key": stat.key, "sha256": sha, "size": stat.size, "modified": modified})
        else:
            todo.append((stat, sha))
    report.blobs = len(blobs) + len(todo)
    progress("blobs", len(blobs), report.blobs)

    addresses = _Addresses(in_target)
    with ThreadPoolExecutor(settings.backup_workers) as pool:
        futures: dict[Future[_Copied], Listed] = {
            pool.submit(_copy_blob, store, target, stat, sha, enc, addresses): stat
            for stat, sha in todo
        }
        for future in as_completed(futures):
            stat = futures[future]
            try:
                copied = future.result()
            except BlobNotFound:
                # Deleted since the listing (a disposal or the sweeper): not part of it.
                report.blobs -= 1
                progress("blobs", 0, report.blobs)
                continue
            if copied.problem is not None:
                report.problems.append(copied.problem)
            if copied.copied:
                report.copied += 1
                report.bytes_copied += copied.size
            blobs.append(
                {
                    "key": stat.key,
                    "sha256": copied.sha256,
                    "size": copied.size,
                    "modified": stat.last_modified.isoformat(),
                }
            )
            progress("blobs", 1, report.blobs)

    # Read now, not with the audit head: a disposal that finished while the blobs were
    # copied removed content this backup lacks, and only its register entry tells a restore
    # to dispose of the file again. (When the register lives in the primary store, or its
    # after-commit write failed, the target would otherwise not learn of it.)
    with unit_of_work(sessions) as session:
        entries = [
            (register.entry_key(rec, sealed=enc is not None), register.entry_for(rec, rec_run))
            for rec in repository.disposal_records(session)
            for rec_run in [session.get(DisposalRun, rec.run_id)]
        ]
    present = {o.key for o in list_objects(target, register.PREFIX)}
    for key, entry in entries:
        if key not in present and register.write_entry(target, key, entry, enc):
            report.register_written += 1

    blobs.sort(key=lambda b: b["key"])
    return {
        "format": FORMAT,
        "name": report.name,
        "created_at": at.isoformat(),
        "encrypted": enc is not None,
        "key_id": key_id(enc) if enc is not None else None,
        "database": database,
        "audit_head": {"seq": head_seq, "hash": head_hash},
        "blobs": blobs,
        "register_entries": len(entries),
    }


def _remove_stale_dumps(target: BlobStore, manifests: list[str]) -> list[str]:
    """Delete dumps of interrupted runs (a dump without its manifest is never used).

    Only called under the target's lock: no other run is writing a dump now.
    """
    finished = {m[len(MANIFEST_PREFIX) : -len(".json")] for m in manifests}
    stale = [
        s.key
        for s in target.list(DB)
        if s.key.endswith(".dump") and s.key[len(DB) : -len(".dump")] not in finished
    ]
    for key in stale:
        target.delete(key)
    return stale


def _remove_staged(target: BlobStore) -> int:
    """Delete uploads an interrupted run left in staging (under the lock, as above)."""
    staged = [o.key for o in list_objects(target, STAGING)]
    for key in staged:
        target.delete(key)
    return len(staged)


def _backup_database(
    url: str, target: BlobStore, name: str, enc: bytes | None, dialect: str
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="eakte-backup-") as tmp:
        path = Path(tmp) / "database.dump"
        dump_database(url, path)
        key = f"{DB}{name}.dump"
        with path.open("rb") as f:
            sha, size = _put(target, key, f, enc)
    return {"dialect": dialect, "key": key, "sha256": sha, "size": size}


@dataclass(frozen=True)
class _Copied:
    """One blob in the target: its address and size, whether this run copied it, and a
    mismatch with the database's checksum if there was one."""

    sha256: str
    size: int
    copied: bool
    problem: str | None = None


class _Addresses:
    """The content addresses in the target: there when the run began, or claimed by one of
    its workers (so two blobs with the same content are copied once, without asking the
    target)."""

    def __init__(self, present: set[str]) -> None:
        self._taken = set(present)
        self._lock = threading.Lock()

    def claim(self, sha: str) -> bool:
        """True for the first caller of an address not yet in the target."""
        with self._lock:
            if sha in self._taken:
                return False
            self._taken.add(sha)
            return True


def _copy_blob(
    store: BlobStore,
    target: BlobStore,
    blob: Listed,
    sha: str | None,
    enc: bytes | None,
    addresses: _Addresses,
) -> _Copied:
    """Copy one blob to `blobs/<sha256>`, never putting unchecked content under an address.

    The checksum the database recorded is only a claim until the content is read. Written
    straight to `blobs/<sha>`, a corrupt blob would replace the good copy of another blob
    with the same checksum, and a run interrupted before it noticed would leave it there for
    the next run to trust. So the content is hashed before it gets its address: small blobs
    in a spool, large ones in a staging object (moved server-side, which costs little next
    to their transfer, and saves the local disk).
    """
    key = blob.key
    problem = None
    if sha is not None and blob.size > SPOOL_MAX:
        staged = f"{STAGING}{uuid.uuid4().hex}"
        try:
            with store.open(key) as reader:
                actual, size = _put(target, staged, _buffered(reader), enc, blob.size)
        except BaseException:
            target.delete(staged)
            raise
        if actual == sha:
            if not addresses.claim(sha):
                target.delete(staged)
                return _Copied(sha, size, False)
            move_into_place(target, staged, BLOBS + sha)
            return _Copied(sha, size, True)
        target.delete(staged)
        problem = _mismatch(key, actual, sha)
    with tempfile.SpooledTemporaryFile(max_size=BUFFER) as spool:
        digest, size = hashlib.sha256(), 0
        with store.open(key) as reader:
            for chunk in reader:
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
        actual = digest.hexdigest()
        if sha is not None and actual != sha and problem is None:
            problem = _mismatch(key, actual, sha)
        # A mismatching blob is kept under its true address: the backup holds what the
        # store holds, and the fixity check names the version it belongs to.
        if not addresses.claim(actual):
            return _Copied(actual, size, False, problem)
        spool.seek(0)
        _put(target, BLOBS + actual, cast(BinaryIO, spool), enc, size)
    return _Copied(actual, size, True, problem)


def _mismatch(key: str, actual: str, recorded: str) -> str:
    problem = (
        f"{key}: its content has sha256 {actual}, the database records {recorded} "
        "(backed up as it is; run `eakte fixity`)"
    )
    log.warning("blob %s", problem)
    return problem


# --- verify -------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What `verify_backup` found."""

    name: str
    checked: int = 0
    bytes_read: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if everything in the manifest is present and intact."""
        return not self.missing and not self.corrupt


def _check_object(target: BlobStore, key: str, sha: str, size: int, enc: bytes | None) -> str:
    """`ok`, `missing` or `corrupt`, after reading the whole object."""
    digest, length = hashlib.sha256(), 0
    try:
        for chunk in _open_plain(target, key, enc):
            digest.update(chunk)
            length += len(chunk)
    except BlobNotFound:
        return "missing"
    except DecryptionFailed:
        return "corrupt"
    return "ok" if digest.hexdigest() == sha and length == size else "corrupt"


def verify_backup(
    settings: Settings,
    target: BlobStore,
    name: str | None = None,
    *,
    progress: Progress = _no_progress,
    allow_unauthenticated: bool = False,
) -> VerifyReport:
    """Re-read the database dump and every blob of a backup against its manifest."""
    manifest = read_manifest(target, name)
    enc = backup_key(settings)
    _check_manifest(manifest, enc, allow_unauthenticated=allow_unauthenticated)
    report = VerifyReport(manifest["name"])
    by_sha: dict[str, list[dict[str, Any]]] = {}
    for blob in manifest["blobs"]:
        by_sha.setdefault(blob["sha256"], []).append(blob)
    db = manifest["database"]
    jobs: dict[str, tuple[str, int, list[str]]] = {
        db["key"]: (db["sha256"], db["size"], [db["key"]])
    }
    for sha, blobs in by_sha.items():
        jobs[BLOBS + sha] = (sha, blobs[0]["size"], [b["key"] for b in blobs])
    progress("verify", 0, len(jobs))
    with ThreadPoolExecutor(settings.backup_workers) as pool:
        futures = {
            pool.submit(_check_object, target, key, sha, size, enc): (key, size, refs)
            for key, (sha, size, refs) in jobs.items()
        }
        for future in as_completed(futures):
            key, size, refs = futures[future]
            state = future.result()
            report.checked += 1
            report.bytes_read += size
            label = key if refs == [key] else f"{key} ({', '.join(refs)})"
            if state == "missing":
                report.missing.append(label)
            elif state == "corrupt":
                report.corrupt.append(label)
            progress("verify", 1, len(jobs))
    report.missing.sort()
    report.corrupt.sort()
    return report


# --- restore ------------------------------------------------------------------------------


@dataclass
class Reapplied:
    """A disposal done after the backup was taken, applied again after the restore."""

    reference: str
    action: str
    disposed_at: datetime
    blobs_withheld: int


@dataclass
class RestoreReport:
    """What `restore_backup` did."""

    name: str
    blobs: int = 0
    bytes_restored: int = 0
    reapplied: list[Reapplied] = field(default_factory=list)
    audit_events: int = 0
    audit_ok: bool = False
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    protected_files: int = 0


def _store_is_empty(store: BlobStore) -> bool:
    return next(iter(store.list()), None) is None


def restore_backup(
    settings: Settings,
    store: BlobStore,
    target: BlobStore,
    name: str | None = None,
    *,
    progress: Progress = _no_progress,
    allow_unauthenticated: bool = False,
) -> RestoreReport:
    """Restore a backup into an empty database and an empty store, then re-apply disposals
    the destruction register records after it, and verify the audit chain."""
    manifest = read_manifest(target, name)
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"unknown backup format {manifest.get('format')!r}")
    enc = backup_key(settings)
    _check_manifest(manifest, enc, allow_unauthenticated=allow_unauthenticated)
    db = manifest["database"]
    if db["dialect"] != dialect_of(settings.database_url):
        raise InvalidInput(
            f"the backup holds a {db['dialect']} database; "
            f"EAKTE_DATABASE_URL names a {dialect_of(settings.database_url)} one"
        )
    if not database_is_empty(settings.database_url):
        raise Conflict("the database is not empty; restore needs an empty database")
    if not _store_is_empty(store):
        raise Conflict("the blob store is not empty; restore needs an empty store")
    report = RestoreReport(manifest["name"])

    with tempfile.TemporaryDirectory(prefix="eakte-restore-") as tmp:
        path = Path(tmp) / "database.dump"
        digest = hashlib.sha256()
        try:
            with path.open("wb") as out:
                for chunk in _open_plain(target, db["key"], enc):
                    digest.update(chunk)
                    out.write(chunk)
        except BlobNotFound:
            raise BackupCorrupt(f"the database dump {db['key']} is missing") from None
        except DecryptionFailed as exc:
            raise BackupCorrupt(f"the database dump {db['key']} is corrupt: {exc}") from None
        if digest.hexdigest() != db["sha256"]:
            raise BackupCorrupt(f"the database dump {db['key']} does not match its checksum")
        restore_database(settings.database_url, path)

    # Entries the target's register holds, and entries that came into the backup as blobs
    # (the register kept in the primary store, when no backup target was configured).
    found = register.read_entries(target, enc)
    in_blobs = _register_in_blobs(target, manifest, enc)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            known = repository.disposal_record_ids(session)
            later = _later_disposals([*found.entries, *in_blobs.entries], known)
            files = repository.existing_files(session, (e.record.file_id for e in later))
            later = [e for e in later if e.record.file_id in files]
            withheld = repository.blob_keys_of_files(session, files)
        covered = known | {e.record.id for e in [*found.entries, *in_blobs.entries]}
        for refusal in [*found.refused, *in_blobs.refused]:
            if refusal.record_id in covered:
                continue  # an authentic entry or the database has this record: nothing lost
            report.problems.append(f"register: {refusal.key} not applied: {refusal.reason}")

        todo = [b for b in manifest["blobs"] if b["key"] not in withheld]
        report.blobs = len(todo)
        progress("blobs", 0, len(todo))
        with ThreadPoolExecutor(settings.backup_workers) as pool:
            futures = {pool.submit(_restore_blob, target, store, b, enc): b for b in todo}
            for future in as_completed(futures):
                blob = futures[future]
                problem = future.result()
                if problem:
                    report.problems.append(problem)
                else:
                    report.bytes_restored += blob["size"]
                progress("blobs", 1, len(todo))

        with unit_of_work(factory) as session:
            for entry in later:
                report.reapplied.append(_reapply(session, entry.record, entry.run, withheld))
            # Restored blobs come without the Object Lock retentions and legal holds the
            # originals had; closed and held files get them back before anyone else writes.
            protection = protect_restored(
                session, store, RetentionPolicy.from_settings(settings)
            )
            report.protected_files = protection.files
            # Already reported as missing or corrupt above; said again so that nobody takes
            # the file for protected. Not a reason to lose this transaction's disposals.
            report.problems.extend(
                f"lock: {key} of file {reference} is not in the store; not locked"
                for reference, key in protection.missing
            )
            record(
                session,
                SYSTEM,
                "backup.restored",
                "backup",
                manifest["name"],
                blobs=report.blobs,
                problems=len(report.problems),
                reapplied=[r.reference for r in report.reapplied],
            )
        with unit_of_work(factory) as session:
            chain = verify_chain(session)
            report.audit_events = chain.checked
            report.problems.extend(f"audit: {p}" for p in chain.problems)
            head = manifest["audit_head"]
            if head["seq"] and repository.audit_event_hash(session, head["seq"]) != head["hash"]:
                report.problems.append(
                    f"audit: event {head['seq']} does not match the backup's chain head"
                )
            report.audit_ok = chain.ok and not any(
                p.startswith("audit:") for p in report.problems
            )
            from eakte import models  # every table, for the counts

            report.counts = repository.row_counts(
                session, [getattr(models, n) for n in models.__all__ if n != "Base"]
            )
    finally:
        engine.dispose()
    return report


def _restore_blob(
    target: BlobStore, store: BlobStore, blob: dict[str, Any], enc: bytes | None
) -> str | None:
    key, sha = blob["key"], blob["sha256"]
    try:
        # The store was empty when the restore began: every key is new.
        result = put_new(store, key, _buffered(_open_plain(target, BLOBS + sha, enc)), blob["size"])
    except BlobNotFound:
        return f"{key}: {BLOBS}{sha} is missing from the backup"
    except DecryptionFailed as exc:
        store.delete(key)
        return f"{key}: {BLOBS}{sha} is corrupt ({exc})"
    if result.sha256 != sha:
        # Leave nothing that looks restored but is not what was backed up.
        store.delete(key)
        return f"{key}: {BLOBS}{sha} is corrupt (checksum mismatch)"
    return None


def _register_in_blobs(
    target: BlobStore, manifest: dict[str, Any], enc: bytes | None
) -> register.Contents:
    """The register entries among the backup's blobs (checked against the manifest)."""
    contents = register.Contents()
    for blob in manifest["blobs"]:
        key, sha = blob["key"], blob["sha256"]
        if not key.startswith(register.PREFIX):
            continue
        if blob["size"] > REGISTER_ENTRY_MAX:
            contents.refused.append(register.Refusal(key, "it is too large for an entry", None))
            continue
        try:
            data = b"".join(_open_plain(target, BLOBS + sha, enc))
        except (BlobNotFound, DecryptionFailed):
            data = b""
        if hashlib.sha256(data).hexdigest() != sha:
            contents.refused.append(
                register.Refusal(key, f"{BLOBS}{sha} is missing or corrupt", None)
            )
            continue
        try:
            # An encrypted backup's blob authenticated as it was decrypted.
            record, run = register.parse_entry(data, enc, authenticated=True)
        except register.EntryRefused as exc:
            contents.refused.append(register.Refusal(key, str(exc), exc.record_id))
            continue
        contents.entries.append(register.Entry(key, record, run))
    return contents


def _later_disposals(
    entries: list[register.Entry], known: set[uuid.UUID]
) -> list[register.Entry]:
    """The disposals the restored database lacks, once each, oldest first."""
    later: dict[uuid.UUID, register.Entry] = {}
    for entry in entries:
        if entry.record.id not in known:
            later.setdefault(entry.record.id, entry)
    return sorted(later.values(), key=lambda e: e.record.disposed_at)


def _reapply(
    session: Session, rec: DisposalRecord, run: DisposalRun | None, withheld: set[str]
) -> Reapplied:
    """Apply one later disposal to the restored database (its blobs were never restored)."""
    if not repository.run_exists(session, rec.run_id) and run is not None:
        session.add(run)
        session.flush()
    file = repository.existing_files(session, [rec.file_id])[rec.file_id]
    file.status = (
        FileStatus.TRANSFERRED.value
        if rec.action == DisposalAction.TRANSFERRED.value
        else FileStatus.DISPOSED.value
    )
    keys = repository.blob_keys_of_files(session, [file.id])
    repository.clear_extracted_text(session, file.id)
    repository.mark_item_done(session, rec.run_id, file.id)
    session.add(rec)
    session.flush()
    record(
        session,
        SYSTEM,
        "file.disposal_reapplied",
        "file",
        file.id,
        record_id=str(rec.id),
        reference=rec.reference,
        disposed_at=rec.disposed_at.isoformat(),
    )
    return Reapplied(rec.reference, rec.action, rec.disposed_at, len(keys & withheld))

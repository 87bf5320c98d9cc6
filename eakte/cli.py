"""The `eakte` command line: serve, migrate, issue tokens, manage keys, verify the audit chain."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cti_bridge.cli import cti as cti_command
from cti_bridge.cli import desk_app
from eakte.auth.principal import SYSTEM, Role
from eakte.backup import register as destruction_register
from eakte.backup.cli import backup_app
from eakte.cli_support import (
    DATABASE_ERRORS,
    ExitCode,
    database_failure,
    fail,
    open_engine,
    open_session,
    open_store,
    run_command,
    session_factory,
)
from eakte.errors import InvalidInput
from eakte.settings import Settings
from retention.cli import fixity_command, retention_app
from storage import BlobStore

app = typer.Typer(help="eakte: records service of the e-file (E-Akte).", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit log.", no_args_is_help=True)
apikey_app = typer.Typer(help="Service-account API keys.", no_args_is_help=True)
orgunit_app = typer.Typer(help="Org units.", no_args_is_help=True)
plan_app = typer.Typer(help="File plan (Aktenplan).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(apikey_app, name="apikey")
app.add_typer(orgunit_app, name="orgunit")
app.add_typer(plan_app, name="plan")
outgoing_app = typer.Typer(help="Outgoing post: e-mail delivery.", no_args_is_help=True)
app.add_typer(outgoing_app, name="outgoing")
inbox_app = typer.Typer(help="Inbound post.", no_args_is_help=True)
app.add_typer(inbox_app, name="inbox")
classifier_app = typer.Typer(help="Classifier of inbound post.", no_args_is_help=True)
app.add_typer(classifier_app, name="classifier")
# The CTI bridge's commands live in its package (the CLI is part of the composition root).
app.command("cti")(cti_command)
app.add_typer(desk_app, name="desk")
# Retention commands live in their package too.
app.add_typer(retention_app, name="retention")
app.command("fixity")(fixity_command)
# Backups: create, verify, restore.
app.add_typer(backup_app, name="backup")


def _destruction_register() -> BlobStore:
    """Where disposals done by CLI commands (`eakte retention execute`) are registered."""
    from eakte.backup.register import register_store
    from storage import store_from_url

    settings = Settings()
    return register_store(
        settings.backup_target, settings.storage_url, store_from_url(settings.storage_url)
    )()


def _register_seal_key() -> bytes | None:
    """The backup key that seals register entries of CLI commands (read when one is written)."""
    from eakte.backup.crypto import backup_key

    return backup_key(Settings())


destruction_register.attach_default(_destruction_register, _register_seal_key)


def _upgrade(settings: Settings, revision: str = "heads") -> None:
    """Migrate the database, with one readable line if it cannot be."""
    from alembic.util.exc import CommandError

    from eakte.migrate import upgrade

    _prepare_embedded(settings)
    open_engine(settings, create=True).dispose()  # a malformed URL fails here, readably
    try:
        upgrade(settings.database_url, revision)
    except DATABASE_ERRORS as exc:
        raise database_failure(exc) from None
    except CommandError as exc:
        raise fail(f"cannot upgrade to {revision}: {exc}", ExitCode.INPUT) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    migrate: Annotated[bool, typer.Option(help="upgrade the database first")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="server processes on the one port; more than one needs PostgreSQL, "
            "EAKTE_WORKER_IN_SERVE=false and EAKTE_CTI_EMBEDDED=false",
        ),
    ] = 1,
) -> None:
    """Run the API server (embedded defaults: SQLite and files under ./var)."""
    import uvicorn

    from eakte.app import create_app

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if workers > 1:
        _check_several_workers(settings)
    if migrate:
        _upgrade(settings)
    if workers > 1:
        settings.hs256_secret  # noqa: B018 - a kept secret is made here once, not by each process
        uvicorn.run(
            "eakte.app:serve_app",
            factory=True,
            workers=workers,
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level.lower(),
        )
        return
    application = create_app(settings, background=settings.worker_in_serve)
    if settings.cti_embedded:
        from cti_bridge.runtime import attach_bridge

        # A taken CTI port must not keep the records service down: it serves on without.
        attach_bridge(application, settings, required=False)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
    )


def _check_several_workers(settings: Settings) -> None:
    """Several server processes share nothing but the database and the store."""
    if settings.is_sqlite:
        raise fail("several server processes need PostgreSQL (EAKTE_DATABASE_URL)", ExitCode.INPUT)
    if settings.worker_in_serve or settings.cti_embedded:
        raise fail(
            "with several server processes the pipeline and the CTI bridge run in their own: "
            "set EAKTE_WORKER_IN_SERVE=false and EAKTE_CTI_EMBEDDED=false and start "
            "`eakte worker` and `eakte cti`",
            ExitCode.INPUT,
        )


def _prepare_embedded(settings: Settings) -> None:
    """Create the ./var directories the embedded defaults live in."""
    from pathlib import Path

    if settings.is_sqlite and ":memory:" not in settings.database_url:
        db_path = settings.database_url.split("///", 1)[-1]
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Upgrade the database schema (Alembic)."""
    _upgrade(Settings(), revision)
    typer.echo(f"database at revision {revision}")


@app.command()
def token(
    sub: Annotated[str, typer.Option("--sub", help="subject (user name)")],
    role: Annotated[list[Role], typer.Option("--role", help="role; repeat for several")],
    unit: Annotated[
        list[str] | None, typer.Option("--unit", help="org unit code; repeatable")
    ] = None,
    ttl: Annotated[int | None, typer.Option(min=1, help="lifetime in seconds")] = None,
    clearance: Annotated[
        str | None,
        typer.Option(help="highest confidentiality readable: normal, confidential or secret"),
    ] = None,
) -> None:
    """Issue a development token (HS256) for a principal."""
    from eakte.auth.tokens import issue_token

    try:
        typer.echo(issue_token(Settings(), sub, role, unit or [], ttl, clearance))
    except (RuntimeError, ValueError) as exc:
        raise fail(str(exc), ExitCode.INPUT) from None


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 6 if any row was modified or deleted."""
    from eakte.audit.service import verify_chain

    with open_session(Settings()) as session:
        report = verify_chain(session)
    for problem in report.problems:
        typer.echo(f"PROBLEM: {problem}", err=True)
    if not report.ok:
        raise fail(
            f"audit chain broken ({len(report.problems)} problems in {report.checked} events)",
            ExitCode.INTEGRITY,
        )
    typer.echo(f"audit chain ok: {report.checked} events verified")


@apikey_app.command("create")
def apikey_create(
    name: str,
    role: Annotated[list[Role], typer.Option("--role")],
    unit: Annotated[list[str] | None, typer.Option("--unit")] = None,
) -> None:
    """Create a service-account key; the key is printed once."""
    from eakte.audit.service import record
    from eakte.auth.apikeys import create_api_key

    def go() -> str:
        with open_session(Settings()) as session:
            _require_units(session, unit or [])
            row, key = create_api_key(session, name, role, unit or [], "cli")
            record(session, SYSTEM, "api_key.created", "api_key", row.id, name=name)
            return key

    typer.echo(run_command(go))


def _require_units(session: Session, codes: list[str]) -> None:
    """A key for an org unit that does not exist would grant nothing (or a later unit)."""
    from sqlalchemy import select

    from eakte.errors import NotFound
    from eakte.orgunits.models import OrgUnit

    known = set(session.scalars(select(OrgUnit.code).where(OrgUnit.code.in_(codes))))
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise NotFound(f"org unit {', '.join(unknown)} does not exist")


@apikey_app.command("revoke")
def apikey_revoke(name: str) -> None:
    """Revoke a service-account key."""
    from eakte.audit.service import record
    from eakte.auth.apikeys import revoke_api_key

    def go() -> None:
        with open_session(Settings()) as session:
            row = revoke_api_key(session, name)
            record(session, SYSTEM, "api_key.revoked", "api_key", row.id, name=name)

    run_command(go)
    typer.echo(f"revoked {name}")


@orgunit_app.command("add")
def orgunit_add(code: str, name: str) -> None:
    """Add an org unit."""
    from eakte.orgunits.schemas import OrgUnitCreate
    from eakte.orgunits.service import create_unit

    def go() -> None:
        with open_session(Settings()) as session:
            create_unit(session, SYSTEM, OrgUnitCreate(code=code, name=name))

    run_command(go)
    typer.echo(f"org unit {code} added")


@plan_app.command("add")
def plan_add(
    code: str,
    title: str,
    retention_years: Annotated[int | None, typer.Option(help="omit for permanent")] = None,
    archive_value: Annotated[str, typer.Option(help="A, V or B")] = "B",
    parent: Annotated[str | None, typer.Option(help="parent plan code")] = None,
) -> None:
    """Add a file plan item."""
    from eakte.plan.models import ArchiveValue
    from eakte.plan.schemas import PlanItemCreate
    from eakte.plan.service import create_item

    def go() -> None:
        if archive_value not in {v.value for v in ArchiveValue}:
            raise InvalidInput(f"archive value must be A, V or B, not {archive_value!r}")
        data = PlanItemCreate(
            code=code,
            title=title,
            parent_code=parent,
            retention_years=retention_years,
            archive_value=ArchiveValue(archive_value),
        )
        with open_session(Settings()) as session:
            create_item(session, SYSTEM, data)

    run_command(go)
    typer.echo(f"plan item {code} added")


@app.command()
def sweep(
    grace: Annotated[int | None, typer.Option(help="seconds an unreferenced blob may live")] = None,
    dry_run: Annotated[bool, typer.Option(help="only list what would be removed")] = False,
) -> None:
    """Remove blobs no database row refers to, older than the grace period."""
    from eakte.sweeper import document_keys, sweep_orphans
    from inbox.repository import blob_keys_in_use

    settings = Settings()
    store = open_store(settings)

    def go() -> list[str]:
        with open_session(settings) as session:
            return list(
                sweep_orphans(
                    session,
                    store,
                    grace if grace is not None else settings.orphan_grace_seconds,
                    referenced={"docs/": document_keys, "inbox/": blob_keys_in_use},
                    dry_run=dry_run,
                )
            )

    removed = run_command(go)
    for key in removed:
        typer.echo(("would remove " if dry_run else "removed ") + key)
    typer.echo(f"{len(removed)} orphan blobs {'found' if dry_run else 'removed'}")


@app.command()
def worker(
    workers: Annotated[
        int | None, typer.Option(help="OCR workers (default EAKTE_OCR_WORKERS)")
    ] = None,
    until_idle: Annotated[bool, typer.Option(help="stop once no item is waiting")] = False,
) -> None:
    """Run background work: the inbound pipeline, its sources, e-mail delivery of letters."""
    import signal
    import threading

    from eakte import background
    from inbox.pipeline import Worker

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = open_store(settings)
    with session_factory(settings) as factory:
        if until_idle:
            taken = Worker(factory, store, settings).run_until_idle()
            typer.echo(f"{taken} items processed")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        threads = background.start(factory, store, settings, stop, workers)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            stop.set()
        for thread in threads:
            thread.join(timeout=30)


@app.command("import")
def import_files(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (searched recursively)")],
) -> None:
    """Hand a backlog of scans to the inbox, with a progress bar; re-running skips what is in."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from inbox.importer import import_paths

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or folder: {', '.join(missing)}", ExitCode.INPUT)
    files = [
        p
        for path in paths
        for p in ([path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file()))
    ]
    settings = Settings()
    store = open_store(settings)
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with session_factory(settings) as factory, Progress(*columns) as progress:
        task = progress.add_task("importing", total=len(files))
        report = import_paths(factory, store, settings, files, lambda: progress.advance(task))
    typer.echo(
        f"{report.imported} imported, {report.skipped} already in the inbox, "
        f"{len(report.failed)} failed"
    )
    for path, reason in report.failed:
        typer.echo(f"FAILED {path}: {reason}", err=True)
    if report.failed:
        raise typer.Exit(ExitCode.INPUT)


@inbox_app.command("requeue")
def inbox_requeue(item_id: str) -> None:
    """Send a quarantined item through the pipeline again."""
    import uuid

    from inbox.service import requeue

    def go() -> None:
        try:
            item = uuid.UUID(item_id)
        except ValueError:
            raise InvalidInput(f"not an item id: {item_id!r}") from None
        with open_session(Settings()) as session:
            requeue(session, SYSTEM, item)

    run_command(go)
    typer.echo(f"item {item_id} re-queued")


@classifier_app.command("train")
def classifier_train() -> None:
    """Train the classifier on the filed documents; stored as a new signed model version."""
    from inbox.classifier import train_and_save

    settings = Settings()

    def go() -> tuple[int, int, int]:
        with session_factory(settings) as factory:
            model = train_and_save(factory, open_store(settings), settings)
        return model.version, model.samples, len(model.files)

    version, samples, files = run_command(go)
    typer.echo(f"classifier v{version} trained on {samples} documents of {files} files")


@outgoing_app.command("deliver")
def outgoing_deliver(
    loop: Annotated[bool, typer.Option(help="keep running, one pass every --interval")] = False,
    interval: Annotated[float, typer.Option(help="seconds between passes")] = 30.0,
) -> None:
    """Deliver queued e-mail letters (retries with backoff; at most once per letter)."""
    import time

    from eakte.outgoing.delivery import deliver_pending

    settings = Settings()
    store = open_store(settings)
    with session_factory(settings) as factory:
        while True:
            report = deliver_pending(factory, store, settings)
            typer.echo(
                f"{len(report.sent)} sent, {len(report.retried)} deferred, "
                f"{len(report.failed)} failed"
            )
            if not loop:
                return
            time.sleep(interval)


def main() -> None:
    """Entry point of the `eakte` command."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ValidationError as exc:
        # Settings() of a command, read from EAKTE_* variables; the values are not echoed,
        # since a malformed one may be a secret.
        problems = "; ".join(
            f"EAKTE_{str(error['loc'][0]).upper() if error['loc'] else '?'}: {error['msg']}"
            for error in exc.errors()
        )
        typer.echo(f"eakte: invalid setting: {problems}", err=True)
        sys.exit(ExitCode.INPUT)

"""The `eakte backup` commands: create, verify, restore (with a progress bar)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TimeRemainingColumn,
)

from eakte.backup import service
from eakte.backup.target import open_target
from eakte.cli_support import ExitCode, run_command
from eakte.settings import Settings
from storage import BlobStore, S3Store, store_from_url

backup_app = typer.Typer(help="Backups: create, verify, restore.", no_args_is_help=True)

@contextmanager
def _progress_bar() -> Iterator[service.Progress]:
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, transient=False) as bar:

        def advance(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], advance=done, total=total)

        yield advance


def _run(fn: Callable[[], None]) -> None:
    def guarded() -> None:
        try:
            fn()
        except service.BackupCorrupt as exc:  # not bad input: the backup itself is damaged
            typer.echo(f"eakte: {exc.detail}", err=True)
            raise typer.Exit(ExitCode.INTEGRITY) from None

    run_command(guarded)


def _primary(settings: Settings) -> BlobStore:
    store = store_from_url(settings.storage_url)
    if isinstance(store, S3Store):
        store.ensure_bucket()  # a new, empty bucket to restore into
    return store


_AllowUnauthenticated = Annotated[
    bool,
    typer.Option(
        "--allow-unauthenticated",
        help="accept an encrypted backup whose manifest carries no MAC (written before "
        "manifests were authenticated)",
    ),
]

_TargetArg = Annotated[
    str | None,
    typer.Argument(help="a directory or s3://ACCESS:SECRET@host:port/bucket (default: "
                   "EAKTE_BACKUP_TARGET)"),
]


def _target_of(settings: Settings, target: str | None) -> str:
    chosen = target or settings.backup_target
    if not chosen:
        raise typer.BadParameter("give a TARGET or set EAKTE_BACKUP_TARGET")
    return chosen


@backup_app.command("create")
def create(
    to: Annotated[str | None, typer.Option("--to", help="target directory or s3:// URL")] = None,
) -> None:
    """Back up the database and every blob; reruns copy only what the target lacks."""
    settings = Settings()

    outcome: list[service.BackupReport] = []

    def go() -> None:
        target = open_target(_target_of(settings, to), settings.storage_url)
        store = store_from_url(settings.storage_url)
        with _progress_bar() as progress:
            outcome.append(service.create_backup(settings, store, target, progress=progress))

    _run(go)
    report = outcome[0]
    for key in report.stale_removed:
        typer.echo(f"removed the dump of an interrupted backup: {key}")
    if report.staged_removed:
        typer.echo(f"removed {report.staged_removed} unfinished uploads of an interrupted backup")
    for problem in report.problems:
        typer.echo(f"PROBLEM: {problem}", err=True)
    typer.echo(
        f"backup {report.name}: {report.blobs} blobs, {report.copied} copied "
        f"({report.bytes_copied} bytes), {report.register_written} register entries "
        f"written, {report.seconds:.1f} s"
    )
    if report.problems:
        # The backup is complete, but the primary store holds content that does not match
        # the database: a monitoring job must learn of it.
        raise typer.Exit(ExitCode.INTEGRITY)


@backup_app.command("verify")
def verify(
    target: _TargetArg = None,
    name: Annotated[str | None, typer.Option(help="manifest to check (default: newest)")] = None,
    allow_unauthenticated: _AllowUnauthenticated = False,
) -> None:
    """Re-read a backup and check every checksum; exit 6 if anything is missing or corrupt."""
    settings = Settings()
    outcome: list[service.VerifyReport] = []

    def go() -> None:
        store = open_target(_target_of(settings, target), settings.storage_url)
        with _progress_bar() as progress:
            outcome.append(
                service.verify_backup(
                    settings, store, name, progress=progress,
                    allow_unauthenticated=allow_unauthenticated,
                )
            )  # fmt: skip

    _run(go)
    report = outcome[0]
    for label in report.missing:
        typer.echo(f"MISSING {label}", err=True)
    for label in report.corrupt:
        typer.echo(f"CORRUPT {label}", err=True)
    if not report.ok:
        typer.echo(
            f"eakte: backup {report.name} is damaged: {len(report.missing)} missing, "
            f"{len(report.corrupt)} corrupt of {report.checked} objects",
            err=True,
        )
        raise typer.Exit(ExitCode.INTEGRITY)
    typer.echo(f"backup {report.name} ok: {report.checked} objects, {report.bytes_read} bytes")


@backup_app.command("restore")
def restore(
    target: _TargetArg = None,
    name: Annotated[str | None, typer.Option(help="manifest to restore (default: newest)")] = None,
    allow_unauthenticated: _AllowUnauthenticated = False,
) -> None:
    """Restore a backup into an empty database and an empty store; re-apply later disposals."""
    settings = Settings()
    outcome: list[service.RestoreReport] = []

    def go() -> None:
        source = open_target(_target_of(settings, target), settings.storage_url)
        store = _primary(settings)
        with _progress_bar() as progress:
            outcome.append(
                service.restore_backup(
                    settings, store, source, name, progress=progress,
                    allow_unauthenticated=allow_unauthenticated,
                )  # fmt: skip
            )

    _run(go)
    report = outcome[0]
    for item in report.reapplied:
        typer.echo(
            f"re-applied disposal: {item.reference} ({item.action} "
            f"{item.disposed_at.isoformat()}, {item.blobs_withheld} blobs not restored)"
        )
    for problem in report.problems:
        typer.echo(f"PROBLEM: {problem}", err=True)
    typer.echo(
        f"restored backup {report.name}: {report.blobs} blobs, {report.bytes_restored} bytes, "
        f"{len(report.reapplied)} disposals re-applied, {report.protected_files} closed or held "
        f"files locked again, audit chain "
        f"{'ok' if report.audit_ok else 'BROKEN'} ({report.audit_events} events)"
    )
    if report.problems:
        raise typer.Exit(ExitCode.INTEGRITY)

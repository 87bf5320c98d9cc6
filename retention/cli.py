"""`eakte retention due|hold|run|approve|execute|receipt` and `eakte fixity`.

The commands act as an archivist named by `--actor` who works for every org unit: the
command line runs on the server, where the operator is trusted like the database owner.
The actor's name is what the four-eyes rule compares, so two archivists approve as two.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from eakte.auth.principal import Principal, Role
from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.errors import DomainError, InvalidInput
from eakte.orgunits.models import OrgUnit
from eakte.settings import Settings
from retention.disposal import RunView
from retention.rules import RetentionPolicy
from storage import BlobStore, StorageError, store_from_url

retention_app = typer.Typer(
    help="Retention: due files, holds, disposal runs.", no_args_is_help=True
)

T = TypeVar("T")

ActorOption = Annotated[
    str, typer.Option("--actor", help="the archivist acting (recorded; four-eyes rule)")
]

# Exit codes as in eakte.cli.ExitCode (not imported: eakte.cli imports this module).
_INPUT, _NOT_FOUND, _CONFLICT, _UNAVAILABLE, _INTEGRITY = 2, 3, 4, 5, 6


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"eakte: {message}", err=True)
    return typer.Exit(code)


def _run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except DomainError as exc:
        code = {404: _NOT_FOUND, 409: _CONFLICT, 503: _UNAVAILABLE}.get(exc.status, _INPUT)
        raise _fail(exc.detail, code) from None
    except StorageError as exc:
        raise _fail(f"storage: {exc}", _UNAVAILABLE) from None


@contextmanager
def _factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def _archivist(factory: sessionmaker[Session], actor: str) -> Principal:
    with unit_of_work(factory) as session:
        units = frozenset(session.scalars(select(OrgUnit.code)))
    return Principal(subject=actor, roles=frozenset({Role.ARCHIVIST}), units=units, kind="cli")


def _columns() -> tuple[object, ...]:
    return (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )


def _print_run(view: RunView) -> None:
    run = view.run
    counts = ", ".join(f"{n} {state}" for state, n in sorted(view.items.items())) or "no files"
    typer.echo(f"run {run.id} ({run.as_of.isoformat()}): {run.status}; {counts}")
    if view.undecided:
        typer.echo(f"{view.undecided} files of archive value B need a decision")


@retention_app.command("due")
def due(
    as_of: Annotated[str | None, typer.Option(help="date YYYY-MM-DD (default today)")] = None,
    limit: Annotated[int, typer.Option(help="files to list")] = 50,
    actor: ActorOption = "archivist",
) -> None:
    """List the files due for disposal."""
    from retention.service import due_list

    settings = Settings()
    policy = RetentionPolicy.from_settings(settings)
    day = _date(as_of) or policy.today()

    def go() -> None:
        with _factory(settings) as factory:
            principal = _archivist(factory, actor)
            with unit_of_work(factory) as session:
                total, page = due_list(session, principal, policy, day, limit, 0)
                for file, due_on in page:
                    typer.echo(
                        f"{file.reference}\t{due_on.isoformat()}\t"
                        f"{file.plan_item.archive_value}\t{file.title}"
                    )
        typer.echo(f"{total} files due on {day.isoformat()}")

    _run(go)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"not a date (YYYY-MM-DD): {value!r}", _INPUT) from None


def _file_id(session: Session, reference_or_id: str) -> uuid.UUID:
    from eakte.errors import NotFound
    from eakte.files.models import File

    try:
        return uuid.UUID(reference_or_id)
    except ValueError:
        found = session.scalar(select(File.id).where(File.reference == reference_or_id))
        if found is None:
            raise NotFound(f"no file has the reference {reference_or_id}") from None
        return found


@retention_app.command("hold")
def hold(
    file: Annotated[str, typer.Argument(help="file reference (Aktenzeichen) or id")],
    reason: Annotated[str | None, typer.Option(help="why the file is held")] = None,
    owner: Annotated[str | None, typer.Option(help="who answers for the hold")] = None,
    release: Annotated[
        str | None, typer.Option(help="release this hold id instead of placing one")
    ] = None,
    actor: ActorOption = "archivist",
) -> None:
    """Place a hold (legal hold) on a file, or release one with --release HOLD_ID."""
    from retention.service import place_hold, release_hold

    settings = Settings()
    store = store_from_url(settings.storage_url)

    def go() -> str:
        with _factory(settings) as factory:
            principal = _archivist(factory, actor)
            with unit_of_work(factory) as session:
                file_id = _file_id(session, file)
                if release is not None:
                    held = release_hold(session, store, principal, _uuid(release), reason)
                    if held.file_id != file_id:
                        raise InvalidInput(f"hold {release} is not a hold of {file}")
                    return f"hold {held.id} released"
                if not reason or not owner:
                    raise _fail("a hold needs --reason and --owner", _INPUT)
                placed = place_hold(session, store, principal, file_id, reason, owner)
                return f"hold {placed.id} placed"

    typer.echo(_run(go))


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _fail(f"not an id: {value!r}", _INPUT) from None


@retention_app.command("run")
def propose(
    as_of: Annotated[str | None, typer.Option(help="date YYYY-MM-DD (default today)")] = None,
    actor: ActorOption = "archivist",
) -> None:
    """Propose a disposal run of every file due at a date."""
    from retention.disposal import propose_run

    settings = Settings()
    policy = RetentionPolicy.from_settings(settings)
    day = _date(as_of)

    def go() -> RunView:
        with _factory(settings) as factory:
            principal = _archivist(factory, actor)
            with unit_of_work(factory) as session:
                return propose_run(session, principal, policy, day)

    _print_run(_run(go))


@retention_app.command("approve")
def approve(run_id: str, actor: ActorOption) -> None:
    """Approve a proposed run (with four eyes: not by its proposer)."""
    from retention.disposal import approve_run

    settings = Settings()
    policy = RetentionPolicy.from_settings(settings)

    def go() -> RunView:
        with _factory(settings) as factory:
            principal = _archivist(factory, actor)
            with unit_of_work(factory) as session:
                return approve_run(session, principal, policy, _uuid(run_id))

    _print_run(_run(go))


@retention_app.command("execute")
def execute(run_id: str, actor: ActorOption = "archivist") -> None:
    """Execute (or resume) an approved run, with a progress bar."""
    from retention.execution import execute_run

    settings = Settings()
    policy = RetentionPolicy.from_settings(settings)
    store = store_from_url(settings.storage_url)

    def go() -> RunView:
        with _factory(settings) as factory, Progress(*_columns()) as progress:  # type: ignore[arg-type]
            principal = _archivist(factory, actor)
            task = progress.add_task("disposing", total=None)

            def advance(done: int, total: int, _state: str) -> None:
                progress.update(task, completed=done, total=total)

            return execute_run(factory, store, principal, policy, _uuid(run_id), advance)

    _print_run(_run(go))


@retention_app.command("receipt")
def receipt(
    run_id: str,
    archive_reference: Annotated[str, typer.Option(help="the archive's reference of the receipt")],
    actor: ActorOption = "archivist",
) -> None:
    """Record the archive's receipt for a run's transferred files and delete their content."""
    from retention.execution import receive

    settings = Settings()
    policy = RetentionPolicy.from_settings(settings)
    store = store_from_url(settings.storage_url)

    def go() -> RunView:
        with _factory(settings) as factory:
            principal = _archivist(factory, actor)
            return receive(factory, store, principal, policy, _uuid(run_id), archive_reference)

    _print_run(_run(go))


def fixity_command(
    every: Annotated[
        float | None,
        typer.Option(help="repeat every N seconds (a worker task); default: check once"),
    ] = None,
) -> None:
    """Re-read every stored blob, compare its SHA-256 with the database; exit 6 on problems."""
    from retention.fixity import fixity_loop, run_fixity

    settings = Settings()
    store: BlobStore = store_from_url(settings.storage_url)
    if every is not None:
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        with _factory(settings) as factory:
            stop = threading.Event()
            try:
                fixity_loop(factory, store, every, stop)
            except KeyboardInterrupt:
                stop.set()
        return

    def go() -> tuple[int, int, int, list[str]]:
        with _factory(settings) as factory, Progress(*_columns()) as progress:  # type: ignore[arg-type]
            task = progress.add_task("checking", total=None)
            report = run_fixity(
                factory,
                store,
                "cli",
                lambda done, total: progress.update(task, completed=done, total=total),
            )
            lines = [
                f"{p['kind'].upper()} {p['reference']} document {p['document_id']} "
                f"version {p['version']} ({p['blob_key']})"
                for p in report.problems
            ]
            return report.checked, report.mismatches, report.missing, lines

    checked, mismatches, missing, lines = _run(go)
    for line in lines:
        typer.echo(line, err=True)
    typer.echo(f"{checked} versions checked, {mismatches} mismatches, {missing} missing")
    if mismatches or missing:
        raise typer.Exit(_INTEGRITY)

"""`eakte retention due|hold|run|approve|execute|receipt` and `eakte fixity`.

The commands act as an archivist named by `--actor` who works for every org unit: the
command line runs on the server, where the operator is trusted like the database owner.
The actor's name is what the four-eyes rule compares, so two archivists approve as two.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import date
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from eakte.auth.principal import Principal, Role
from eakte.cli_support import ExitCode, fail, open_store, run_command, session_factory
from eakte.db import unit_of_work
from eakte.errors import InvalidInput
from eakte.orgunits.models import OrgUnit
from eakte.settings import Settings
from retention.disposal import RunView
from retention.rules import RetentionPolicy
from retention.schemas import HoldCreate, HoldRelease, ReceiptIn

retention_app = typer.Typer(
    help="Retention: due files, holds, disposal runs.", no_args_is_help=True
)

ActorOption = Annotated[
    str, typer.Option("--actor", help="the archivist acting (recorded; four-eyes rule)")
]

def _actor(actor: str) -> str:
    # Recorded in columns of 200 characters; PostgreSQL refuses a longer name, SQLite not.
    if not actor.strip() or len(actor) > 200:
        raise fail("--actor must name the archivist (1 to 200 characters)", ExitCode.INPUT)
    return actor


def _archivist(factory: sessionmaker[Session], actor: str) -> Principal:
    _actor(actor)
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
    limit: Annotated[int, typer.Option(min=0, help="files to list")] = 50,
    actor: ActorOption = "archivist",
) -> None:
    """List the files due for disposal."""
    from retention.service import due_list

    settings = Settings()
    policy = RetentionPolicy.from_settings(settings)
    day = _date(as_of) or policy.today()

    def go() -> None:
        with session_factory(settings) as factory:
            principal = _archivist(factory, actor)
            with unit_of_work(factory) as session:
                total, page = due_list(session, principal, policy, day, limit, 0)
                for file, due_on in page:
                    typer.echo(
                        f"{file.reference}\t{due_on.isoformat()}\t"
                        f"{file.plan_item.archive_value}\t{file.title}"
                    )
        typer.echo(f"{total} files due on {day.isoformat()}")

    run_command(go)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"not a date (YYYY-MM-DD): {value!r}", ExitCode.INPUT) from None


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
    store = open_store(settings)

    def go() -> str:
        with session_factory(settings) as factory:
            principal = _archivist(factory, actor)
            with unit_of_work(factory) as session:
                file_id = _file_id(session, file)
                if release is not None:
                    note = HoldRelease(note=reason).note
                    held = release_hold(session, store, principal, _uuid(release), note)
                    if held.file_id != file_id:
                        raise InvalidInput(f"hold {release} is not a hold of {file}")
                    return f"hold {held.id} released"
                if not reason or not owner:
                    raise fail("a hold needs --reason and --owner", ExitCode.INPUT)
                wanted = HoldCreate(reason=reason, owner=owner)
                placed = place_hold(
                    session, store, principal, file_id, wanted.reason, wanted.owner
                )
                return f"hold {placed.id} placed"

    typer.echo(run_command(go))


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(f"not an id: {value!r}", ExitCode.INPUT) from None


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
        with session_factory(settings) as factory:
            principal = _archivist(factory, actor)
            with unit_of_work(factory) as session:
                return propose_run(session, principal, policy, day)

    _print_run(run_command(go))


@retention_app.command("approve")
def approve(run_id: str, actor: ActorOption) -> None:
    """Approve a proposed run (with four eyes: not by its proposer)."""
    from retention.disposal import approve_run

    settings = Settings()
    policy = RetentionPolicy.from_settings(settings)

    def go() -> RunView:
        with session_factory(settings) as factory:
            principal = _archivist(factory, actor)
            with unit_of_work(factory) as session:
                return approve_run(session, principal, policy, _uuid(run_id))

    _print_run(run_command(go))


@retention_app.command("execute")
def execute(run_id: str, actor: ActorOption = "archivist") -> None:
    """Execute (or resume) an approved run, with a progress bar."""
    from retention.execution import execute_run

    settings = Settings()
    policy = RetentionPolicy.from_settings(settings)
    store = open_store(settings)

    def go() -> RunView:
        with session_factory(settings) as factory, Progress(*_columns()) as progress:  # type: ignore[arg-type]
            principal = _archivist(factory, actor)
            task = progress.add_task("disposing", total=None)

            def advance(done: int, total: int, _state: str) -> None:
                progress.update(task, completed=done, total=total)

            return execute_run(factory, store, principal, policy, _uuid(run_id), advance)

    _print_run(run_command(go))


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
    store = open_store(settings)

    def go() -> RunView:
        # Checked as the API checks it: an empty reference is no receipt, and PostgreSQL
        # would refuse a longer one only after the run had been looked up.
        wanted = ReceiptIn(archive_reference=archive_reference)
        with session_factory(settings) as factory:
            principal = _archivist(factory, actor)
            return receive(
                factory, store, principal, policy, _uuid(run_id), wanted.archive_reference
            )

    _print_run(run_command(go))


def fixity_command(
    every: Annotated[
        float | None,
        typer.Option(min=1, help="repeat every N seconds (a worker task); default: check once"),
    ] = None,
) -> None:
    """Re-read every stored blob, compare its SHA-256 with the database; exit 6 on problems."""
    from retention.fixity import fixity_loop, run_fixity

    settings = Settings()
    store = open_store(settings)
    if every is not None:
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        with session_factory(settings) as factory:
            stop = threading.Event()
            try:
                fixity_loop(factory, store, every, stop)
            except KeyboardInterrupt:
                stop.set()
        return

    def go() -> tuple[int, int, int, list[str]]:
        with session_factory(settings) as factory, Progress(*_columns()) as progress:  # type: ignore[arg-type]
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

    checked, mismatches, missing, lines = run_command(go)
    for line in lines:
        typer.echo(line, err=True)
    typer.echo(f"{checked} versions checked, {mismatches} mismatches, {missing} missing")
    if mismatches or missing:
        raise typer.Exit(ExitCode.INTEGRITY)

"""The `eakte` command line: serve, migrate, issue tokens, manage keys, verify the audit chain."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from eakte.auth.principal import SYSTEM, Role
from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.errors import DomainError
from eakte.settings import Settings

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

T = TypeVar("T")


class ExitCode:
    """Exit codes, one per kind of failure (as OCRmyPDF does)."""

    OK = 0
    INPUT = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNAVAILABLE = 5
    INTEGRITY = 6
    INTERNAL = 15


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"eakte: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _run(fn: Callable[[], T]) -> T:
    """Turn domain errors into one readable line and an exit code."""
    try:
        return fn()
    except DomainError as exc:
        code = {404: ExitCode.NOT_FOUND, 409: ExitCode.CONFLICT, 503: ExitCode.UNAVAILABLE}.get(
            exc.status, ExitCode.INPUT
        )
        raise _fail(exc.detail, code) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    migrate: Annotated[bool, typer.Option(help="upgrade the database first")] = True,
) -> None:
    """Run the API server (embedded defaults: SQLite and files under ./var)."""
    import uvicorn

    from eakte.app import create_app
    from eakte.migrate import upgrade

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if migrate:
        _prepare_embedded(settings)
        upgrade(settings.database_url)
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
    )


def _prepare_embedded(settings: Settings) -> None:
    """Create the ./var directories the embedded defaults live in."""
    from pathlib import Path

    if settings.is_sqlite and ":memory:" not in settings.database_url:
        db_path = settings.database_url.split("///", 1)[-1]
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Upgrade the database schema (Alembic)."""
    from eakte.migrate import upgrade

    settings = Settings()
    _prepare_embedded(settings)
    upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {revision}")


@app.command()
def token(
    sub: Annotated[str, typer.Option("--sub", help="subject (user name)")],
    role: Annotated[list[Role], typer.Option("--role", help="role; repeat for several")],
    unit: Annotated[
        list[str] | None, typer.Option("--unit", help="org unit code; repeatable")
    ] = None,
    ttl: Annotated[int | None, typer.Option(help="lifetime in seconds")] = None,
) -> None:
    """Issue a development token (HS256) for a principal."""
    from eakte.auth.tokens import issue_token

    try:
        typer.echo(issue_token(Settings(), sub, role, unit or [], ttl))
    except RuntimeError as exc:
        raise _fail(str(exc), ExitCode.INPUT) from None


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 6 if any row was modified or deleted."""
    from eakte.audit.service import verify_chain

    with _session(Settings()) as session:
        report = verify_chain(session)
    for problem in report.problems:
        typer.echo(f"PROBLEM: {problem}", err=True)
    if not report.ok:
        raise _fail(
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
        with _session(Settings()) as session:
            row, key = create_api_key(session, name, role, unit or [], "cli")
            record(session, SYSTEM, "api_key.created", "api_key", row.id, name=name)
            return key

    typer.echo(_run(go))


@apikey_app.command("revoke")
def apikey_revoke(name: str) -> None:
    """Revoke a service-account key."""
    from eakte.audit.service import record
    from eakte.auth.apikeys import revoke_api_key

    def go() -> None:
        with _session(Settings()) as session:
            row = revoke_api_key(session, name)
            record(session, SYSTEM, "api_key.revoked", "api_key", row.id, name=name)

    _run(go)
    typer.echo(f"revoked {name}")


@orgunit_app.command("add")
def orgunit_add(code: str, name: str) -> None:
    """Add an org unit."""
    from eakte.orgunits.schemas import OrgUnitCreate
    from eakte.orgunits.service import create_unit

    def go() -> None:
        with _session(Settings()) as session:
            create_unit(session, SYSTEM, OrgUnitCreate(code=code, name=name))

    _run(go)
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
        data = PlanItemCreate(
            code=code,
            title=title,
            parent_code=parent,
            retention_years=retention_years,
            archive_value=ArchiveValue(archive_value),
        )
        with _session(Settings()) as session:
            create_item(session, SYSTEM, data)

    _run(go)
    typer.echo(f"plan item {code} added")


@app.command()
def sweep(
    grace: Annotated[int | None, typer.Option(help="seconds an unreferenced blob may live")] = None,
    dry_run: Annotated[bool, typer.Option(help="only list what would be removed")] = False,
) -> None:
    """Remove blobs no database row refers to, older than the grace period."""
    from eakte.sweeper import sweep_orphans
    from storage import store_from_url

    settings = Settings()
    store = store_from_url(settings.storage_url)
    with _session(settings) as session:
        removed = sweep_orphans(
            session,
            store,
            grace if grace is not None else settings.orphan_grace_seconds,
            dry_run=dry_run,
        )
    for key in removed:
        typer.echo(("would remove " if dry_run else "removed ") + key)
    typer.echo(f"{len(removed)} orphan blobs {'found' if dry_run else 'removed'}")


def main() -> None:
    """Entry point of the `eakte` command."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

"""What every `eakte` command shares: exit codes, and one readable line for each failure.

A command's work runs inside `run_command`, which turns domain errors, invalid values and
an unavailable store into a message on stderr and an exit code. The database and the store
are opened through `open_engine`, `session_factory`, `open_session` and `open_store`, which
do the same for a malformed URL or a database that cannot be reached. No message carries
SQL, parameter values or the secret part of a URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import Session, sessionmaker

from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.errors import DomainError
from eakte.settings import Settings
from storage import BlobStore, StorageError, store_from_url
from storage.factory import mask_url

T = TypeVar("T")

#: Errors of a database that cannot be reached, has no schema, or refuses a value.
DATABASE_ERRORS = (OperationalError, ProgrammingError, InterfaceError, DataError)


class ExitCode:
    """Exit codes, one per kind of failure (as OCRmyPDF does)."""

    OK = 0
    INPUT = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNAVAILABLE = 5
    INTEGRITY = 6
    INTERNAL = 15


def fail(message: str, code: int) -> typer.Exit:
    """Print `eakte: message` on stderr; the exit to raise."""
    typer.echo(f"eakte: {message}", err=True)
    return typer.Exit(code)


def invalid(exc: ValidationError) -> str:
    """A pydantic validation error as one line: `field: problem; ...`."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors()
    )


def run_command(fn: Callable[[], T]) -> T:
    """Run a command's work; domain errors become one readable line and an exit code."""
    try:
        return fn()
    except DomainError as exc:
        code = {404: ExitCode.NOT_FOUND, 409: ExitCode.CONFLICT, 503: ExitCode.UNAVAILABLE}.get(
            exc.status, ExitCode.INPUT
        )
        raise fail(exc.detail, code) from None
    except ValidationError as exc:
        raise fail(invalid(exc), ExitCode.INPUT) from None
    except StorageError as exc:
        raise fail(f"storage: {exc}", ExitCode.UNAVAILABLE) from None


def database_failure(exc: DBAPIError) -> typer.Exit:
    """One line for a database that cannot be reached or has no schema (no SQL, no values)."""
    reason = (str(exc.orig).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, DataError):
        return fail(f"the database refused a value: {reason}", ExitCode.INPUT)
    return fail(
        f"database unavailable: {reason} (check EAKTE_DATABASE_URL; a new database needs "
        "`eakte db upgrade`)",
        ExitCode.UNAVAILABLE,
    )


def open_engine(settings: Settings, *, create: bool = False) -> Engine:
    """The engine of EAKTE_DATABASE_URL; a missing SQLite file is an error unless `create`."""
    url = settings.database_url
    try:
        parsed = make_url(url)
        if (
            not create
            and parsed.get_backend_name() == "sqlite"
            and parsed.database not in (None, "", ":memory:")
            and parsed.query.get("mode") != "memory"
            and not Path(parsed.database).exists()
        ):
            # SQLite would create an empty file and then fail on its first table.
            raise fail(
                f"no database at {parsed.database}: create it with `eakte db upgrade`",
                ExitCode.UNAVAILABLE,
            )
        return make_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise fail(
            f"EAKTE_DATABASE_URL is not a usable database URL: {mask_url(url)}", ExitCode.INPUT
        ) from None


@contextmanager
def session_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on EAKTE_DATABASE_URL; a database failure inside is one readable line."""
    eng = open_engine(settings)
    try:
        yield make_session_factory(eng)
    except DATABASE_ERRORS as exc:
        raise database_failure(exc) from None
    finally:
        eng.dispose()


@contextmanager
def open_session(settings: Settings) -> Iterator[Session]:
    """One transaction on EAKTE_DATABASE_URL (see `session_factory`)."""
    with session_factory(settings) as factory, unit_of_work(factory) as session:
        yield session


def open_store(settings: Settings) -> BlobStore:
    """The store of EAKTE_STORAGE_URL; a malformed URL is one line (its secret masked)."""
    try:
        return store_from_url(settings.storage_url)
    except ValueError as exc:
        raise fail(f"EAKTE_STORAGE_URL: {exc}", ExitCode.INPUT) from None
    except StorageError as exc:
        raise fail(f"storage: {exc}", ExitCode.UNAVAILABLE) from None

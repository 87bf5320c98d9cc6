"""Dumping and restoring the database: pg_dump/pg_restore, or SQLite's online-backup API."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from psycopg.conninfo import make_conninfo
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from eakte.errors import Conflict, InvalidInput, Unavailable

#: pg_dump and pg_restore of a large database take a while; a hung server must still end.
PG_TIMEOUT_SECONDS = 6 * 3600


def dialect_of(database_url: str) -> str:
    """`postgresql` or `sqlite`; anything else is refused."""
    name = make_url(database_url).get_backend_name()
    if name not in ("postgresql", "sqlite"):
        raise InvalidInput(f"cannot back up a {name} database")
    return name


def libpq_connection(database_url: str) -> tuple[str, dict[str, str]]:
    """The libpq connection string for pg_dump/pg_restore, and the environment to run them in.

    The URL goes through SQLAlchemy's psycopg dialect, so a multi-host URL
    (`?host=a:5432&host=b:5432&target_session_attrs=read-write`) reaches libpq exactly as the
    app's own connections do. The password goes into PGPASSWORD, not onto the command line,
    where any local user could read it.
    """
    engine = create_engine(database_url)
    try:
        _, params = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    text = {k: str(v) for k, v in params.items() if v is not None and k != "context"}
    if text.get("port") and not text["port"].strip(","):
        del text["port"]  # hosts given without ports
    return make_conninfo(**text), env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise Unavailable(f"{name} is not installed (Debian package postgresql-client)")
    return found


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(  # noqa: S603 - fixed program, argument list
            cmd, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what} did not finish within {PG_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        raise Unavailable(f"{what} failed: {result.stderr.strip()[-2000:]}")


def sqlite_path(database_url: str) -> Path:
    """The file of an SQLite database URL."""
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def dump_database(database_url: str, path: Path) -> None:
    """Write a consistent dump of the whole database to `path`."""
    if dialect_of(database_url) == "postgresql":
        conninfo, env = libpq_connection(database_url)
        # Custom format: compressed, and pg_restore can restore it into an empty database.
        _run(
            [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(path),
             "--dbname", conninfo],
            env,
            "pg_dump",
        )
        return
    # The online-backup API copies a consistent snapshot while the server keeps writing.
    source = sqlite3.connect(sqlite_path(database_url), timeout=30)
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def database_is_empty(database_url: str) -> bool:
    """True if the database holds no tables (restore only writes into an empty one)."""
    if dialect_of(database_url) == "sqlite":
        file = sqlite_path(database_url)
        if not file.exists() or file.stat().st_size == 0:
            return True
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return not inspect(conn).get_table_names()
    finally:
        engine.dispose()


def restore_database(database_url: str, dump: Path) -> None:
    """Load a dump made by `dump_database` into an empty database."""
    if not database_is_empty(database_url):
        raise Conflict(
            "the database is not empty; restore needs an empty database "
            "(create a new one, or drop every table first)"
        )
    if dialect_of(database_url) == "postgresql":
        conninfo, env = libpq_connection(database_url)
        # One transaction: a failed restore leaves the database empty, so it can be rerun.
        _run(
            [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
             "--single-transaction", "--dbname", conninfo, str(dump)],
            env,
            "pg_restore",
        )
        return
    file = sqlite_path(database_url)
    file.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(dump)
    target = sqlite3.connect(file)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()

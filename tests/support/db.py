"""Pytest plugin: real databases for the tests, migrated the way production is.

PostgreSQL: the server named by EAKTE_TEST_PG_URL (default: the local one at
127.0.0.1:5432, user postgres). If none answers, a throw-away cluster is
started with initdb/pg_ctl when the binaries exist. If that fails too, the
PostgreSQL tests fail under CI=true and are skipped with a loud reason otherwise.
SQLite: a file in a temporary directory. Both are migrated with `alembic upgrade head`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from eakte.db import make_engine
from eakte.migrate import upgrade

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _libpq(url: str) -> str:
    u = make_url(url)
    parts = [
        f"host={u.host or '127.0.0.1'}",
        f"port={u.port or 5432}",
        f"user={u.username or 'postgres'}",
        f"dbname={u.database or 'postgres'}",
    ]
    if u.password:
        parts.append(f"password={u.password}")
    return " ".join(parts)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _TempCluster:
    """A PostgreSQL cluster of our own, for machines without a running server."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("no PostgreSQL server answers and initdb is not installed")
        self.bindir = Path(bins[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="eakte-pg-"))
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_postgres else cmd

    def start(self) -> str:
        data = str(self.dir / "data")
        subprocess.run(
            self._cmd("initdb", "-D", data, "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            self._cmd(
                "pg_ctl",
                "-D",
                data,
                "-o",
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                "-l",
                str(self.dir / "log"),
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "stop"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database."""
    url = os.environ.get("EAKTE_TEST_PG_URL", DEFAULT_PG)
    if _answers(url):
        yield url
        return
    try:
        cluster = _TempCluster()
        url = cluster.start()
    except Exception as exc:
        reason = f"PostgreSQL unavailable ({url} does not answer; starting one failed: {exc})"
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield url
    finally:
        cluster.stop()


@contextlib.contextmanager
def fresh_pg_database(server_url: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards."""
    name = f"eakte_test_{uuid.uuid4().hex[:12]}"
    admin = _libpq(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_sqlite_database(directory: Path) -> Iterator[str]:
    """A new, migrated SQLite database file."""
    url = f"sqlite:///{directory / f'eakte-{uuid.uuid4().hex[:8]}.db'}"
    upgrade(url)
    yield url


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    """A migrated PostgreSQL database shared by the test session."""
    with fresh_pg_database(pg_server) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated SQLite database shared by the test session."""
    with fresh_sqlite_database(tmp_path_factory.mktemp("sqlite")) as url:
        yield url


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs against both databases."""
    return str(request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url"))


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """One engine per database for the session."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def fresh_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> Iterator[str]:
    """A database of the test's own (for tests that need an empty audit log, say)."""
    if database_url.startswith("sqlite"):
        with fresh_sqlite_database(tmp_path) as url:
            yield url
    else:
        with fresh_pg_database(request.getfixturevalue("pg_server")) as url:
            yield url

"""Installations to back up and restore: PostgreSQL with S3, SQLite with directories."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from eakte.backup.target import open_target
from eakte.db import make_engine
from eakte.settings import Settings
from storage import BlobStore, S3Store, store_from_url
from tests.conftest import Api, api_for, make_settings
from tests.support.db import _libpq, fresh_pg_database, fresh_sqlite_database
from tests.support.s3 import S3Server, remove_bucket


@dataclass
class Place:
    """A database and a blob store, by URL, plus the opened store."""

    database_url: str
    storage_url: str
    store: BlobStore


@dataclass
class Installation:
    """A migrated source installation, a backup target, and empty places to restore into."""

    kind: str
    source: Place
    target_url: str
    empty: Callable[[], Place]
    new_target: Callable[[], str]

    def env(self, place: Place, **extra: str) -> dict[str, str]:
        """EAKTE_ variables for a CLI run against `place`."""
        return {
            "EAKTE_DATABASE_URL": place.database_url,
            "EAKTE_STORAGE_URL": place.storage_url,
            "EAKTE_BACKUP_WORKERS": "4",
            **extra,
        }

    def settings(self, place: Place, **overrides: object) -> Settings:
        """Settings for calling the backup service in this process against `place`."""
        values: dict[str, object] = {"storage_url": place.storage_url, "backup_workers": 4}
        values.update(overrides)
        return make_settings(place.database_url, **values)

    def open(self, target_url: str) -> BlobStore:
        """The opened backup target at `target_url`."""
        return open_target(target_url, self.source.storage_url)


@pytest.fixture(params=["pg-s3", "sqlite-fs"])
def installation(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Installation]:
    """A fresh installation on PostgreSQL + SeaweedFS, and one on SQLite + directories."""
    cleanups: list[Callable[[], None]] = []
    if request.param == "pg-s3":
        server: S3Server = request.getfixturevalue("s3_server")
        pg_server = str(request.getfixturevalue("pg_server"))

        def bucket() -> tuple[str, BlobStore]:
            name = f"eakte-bk-{uuid.uuid4().hex[:16]}"
            url = server.url(name)
            store = store_from_url(url)
            assert isinstance(store, S3Store)
            store.ensure_bucket()
            cleanups.append(lambda: remove_bucket(server.client(), name))
            return url, store

        def empty_db() -> str:
            name = f"eakte_restore_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(_libpq(pg_server), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')

            def drop() -> None:
                with psycopg.connect(_libpq(pg_server), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

            cleanups.append(drop)
            return make_url(pg_server).set(database=name).render_as_string(hide_password=False)

        source_db = fresh_pg_database(pg_server)
        db_url = source_db.__enter__()
        cleanups.append(lambda: source_db.__exit__(None, None, None))
        url, store = bucket()

        def empty() -> Place:
            u, s = bucket()
            return Place(empty_db(), u, s)

        def new_target() -> str:
            return bucket()[0]

        inst = Installation("pg-s3", Place(db_url, url, store), new_target(), empty, new_target)
    else:
        source_db = fresh_sqlite_database(tmp_path)
        db_url = source_db.__enter__()
        counter = iter(range(1000))

        def empty() -> Place:
            n = next(counter)
            blobs = tmp_path / f"restored-blobs-{n}"
            return Place(
                f"sqlite:///{tmp_path / f'restored-{n}.db'}",
                f"file://{blobs}",
                store_from_url(f"file://{blobs}"),
            )

        def new_target() -> str:
            return str(tmp_path / f"backup-{next(counter)}")

        blobs = tmp_path / "blobs"
        inst = Installation(
            "sqlite-fs",
            Place(db_url, f"file://{blobs}", store_from_url(f"file://{blobs}")),
            new_target(),
            empty,
            new_target,
        )
    try:
        yield inst
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


@pytest.fixture
def source_api(installation: Installation) -> Iterator[Api]:
    """The app on the source installation."""
    url = installation.source.database_url
    engine = make_engine(url)
    try:
        yield from api_for(url, engine, installation.source.store,
                           backup_target=installation.target_url)
    finally:
        engine.dispose()

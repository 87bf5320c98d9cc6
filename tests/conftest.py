"""Shared fixtures: real databases, a real S3 server, the app, principals and their tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from eakte.app import create_app
from eakte.auth.tokens import issue_token
from eakte.db import make_engine
from eakte.settings import Settings
from storage import BlobStore

pytest_plugins = ["tests.support.s3", "tests.support.db"]

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for tests: a fixed HS256 secret and the given database."""
    values: dict[str, object] = {
        "database_url": database_url,
        "storage_url": "file:///nonexistent",  # tests hand the app its store directly
        "jwt_secret": TEST_SECRET,
        "max_upload_bytes": 50 * 1024 * 1024,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Api:
    """A test client on the app plus what the tests need to act as principals."""

    client: TestClient
    settings: Settings
    engine: Engine
    store: BlobStore

    def token(self, roles: list[str], units: list[str], sub: str | None = None) -> str:
        """A valid token for a principal."""
        return issue_token(self.settings, sub or f"user-{uuid.uuid4().hex[:6]}", roles, units)

    def auth(self, roles: list[str], units: list[str], sub: str | None = None) -> dict[str, str]:
        """Authorization header for a principal."""
        return {"Authorization": f"Bearer {self.token(roles, units, sub)}"}


def api_for(
    database_url: str, engine: Engine, store: BlobStore, **overrides: object
) -> Iterator[Api]:
    """The app on the given database and store (settings `overrides`), with a test client."""
    settings = make_settings(database_url, **overrides)
    app = create_app(settings, engine=engine, store=store)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, settings, engine, store)


@pytest.fixture
def pg_api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """The app on PostgreSQL with SeaweedFS, for tests of races that row locks settle."""
    url = str(request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    try:
        yield from api_for(url, engine, request.getfixturevalue("s3_store"))
    finally:
        engine.dispose()


@pytest.fixture(params=["pg-s3", "sqlite-fs"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The app on PostgreSQL with SeaweedFS, and on SQLite with the filesystem store."""
    from eakte.db import make_engine

    if request.param == "pg-s3":
        url = str(request.getfixturevalue("pg_url"))
        store = request.getfixturevalue("s3_store")
    else:
        url = str(request.getfixturevalue("sqlite_url"))
        store = request.getfixturevalue("fs_store")
    engine = make_engine(url)
    try:
        yield from api_for(url, engine, store)
    finally:
        engine.dispose()


@pytest.fixture(params=["pg-s3", "sqlite-fs"])
def isolated_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """Like `api`, but on a database of the test's own.

    For tests that run pipeline workers: a worker takes every item waiting in its database,
    so items other tests left behind must not be there.
    """
    from eakte.db import make_engine
    from tests.support.db import fresh_pg_database, fresh_sqlite_database

    if request.param == "pg-s3":
        database = fresh_pg_database(request.getfixturevalue("pg_server"))
        store = request.getfixturevalue("s3_store")
    else:
        database = fresh_sqlite_database(tmp_path)
        store = request.getfixturevalue("fs_store")
    with database as url:
        engine = make_engine(url)
        try:
            yield from api_for(url, engine, store)
        finally:
            engine.dispose()


@pytest.fixture
def api_matrix(engine: Engine, database_url: str, blob_store: BlobStore) -> Iterator[Api]:
    """The app on every combination of database and blob store."""
    yield from api_for(database_url, engine, blob_store)

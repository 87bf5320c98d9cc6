"""Fault-injection fixtures: an S3 server of the faults tests' own that they stop and resume."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import S3Store
from tests.support.s3 import OwnServer, remove_bucket, start_own_server, stop_own_server


def in_ci() -> bool:
    """True under CI=true, where an unavailable prerequisite fails instead of skipping."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def outage_seconds(default: float) -> float:
    """Length of an injected outage: EAKTE_TEST_OUTAGE_SECONDS, else the test's default."""
    return float(os.environ.get("EAKTE_TEST_OUTAGE_SECONDS", default))


@pytest.fixture(scope="module")
def own_s3() -> Iterator[OwnServer]:
    """A SeaweedFS of this module alone, so stopping it disturbs no other test."""
    state_dir = Path(tempfile.mkdtemp(prefix="eakte-fault-s3-"))
    try:
        own = start_own_server(state_dir)
    except RuntimeError as exc:
        if in_ci():
            pytest.fail(f"cannot start a SeaweedFS for the fault tests: {exc}")
        pytest.skip(f"cannot start a SeaweedFS for the fault tests: {exc}")
    try:
        yield own
    finally:
        stop_own_server(own)


@pytest.fixture
def outage_store(own_s3: OwnServer) -> Iterator[S3Store]:
    """A bucket on the module's server, with short timeouts so an outage shows in seconds."""
    s = own_s3.server
    store = S3Store(s.endpoint, s.access_key, s.secret_key, f"fault-{uuid.uuid4().hex[:16]}",
                    connect_timeout=1.0, read_timeout=2.0, retries=0)
    store.ensure_bucket()
    yield store
    remove_bucket(s.client(), store.bucket)


@contextlib.contextmanager
def stopped(own: OwnServer) -> Iterator[float]:
    """SIGSTOP the server (it keeps its sockets but answers nothing), SIGCONT on exit.

    A stopped process is the harsher outage: connections are accepted by the kernel and then
    hang, so only the client's timeouts end them. Yields the time the outage began.
    """
    os.killpg(own.pid, signal.SIGSTOP)
    try:
        yield time.monotonic()
    finally:
        os.killpg(own.pid, signal.SIGCONT)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A PostgreSQL database of each fault test's own (overrides the session's shared one).

    The fault tests run pipeline workers, which take every item waiting in their database;
    items other tests left behind must not be there.
    """
    from tests.support.db import fresh_pg_database

    with fresh_pg_database(pg_server) as url:
        yield url

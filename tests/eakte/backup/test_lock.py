"""One backup at a time per target: a second run is refused, a dead run's lock is taken over."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
from datetime import timedelta

from eakte.backup.lock import PREFIX
from eakte.backup.service import BackupReport, create_backup
from eakte.backup.target import manifest_names
from eakte.db import utcnow
from storage import BlobStore
from tests import factories
from tests.conftest import Api
from tests.eakte.backup.conftest import Installation
from tests.eakte.backup.test_backup import run
from tests.retention.helpers import file_with_documents, office


def test_second_backup_is_refused_while_the_first_copies_blobs(
    installation: Installation, source_api: Api
) -> None:
    o = office(source_api)
    file_with_documents(source_api, o, factories.plan_item(source_api)["code"], documents=3)
    source = installation.source
    target = installation.open(installation.target_url)
    copying, go_on = threading.Event(), threading.Event()
    outcome: list[BackupReport | BaseException] = []

    def pause_while_copying(phase: str, _done: int, _total: int) -> None:
        if phase == "blobs" and not copying.is_set():
            copying.set()
            assert go_on.wait(60)

    def first_run() -> None:
        try:
            outcome.append(
                create_backup(
                    installation.settings(source), source.store, target,
                    progress=pause_while_copying,
                )
            )
        except BaseException as exc:  # handed to the test thread, which reports it
            outcome.append(exc)

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert copying.wait(60), "the first backup never reached its blobs"
        second = run(installation.env(source), "backup", "create", "--to",
                     installation.target_url)
    finally:
        go_on.set()
        thread.join(60)

    assert second.exit_code == 4, second.output
    assert "another backup is running on this target" in second.output
    assert f"pid {os.getpid()}" in second.output  # names the run holding it
    assert len(outcome) == 1 and isinstance(outcome[0], BackupReport), outcome
    # The first run's dump survived the second run: its backup is whole.
    assert manifest_names(target) == [f"manifest-{outcome[0].name}.json"]
    verified = run(installation.env(source), "backup", "verify", installation.target_url)
    assert verified.exit_code == 0, verified.output
    assert list(target.list(PREFIX)) == []  # released when done


def _put_lock(target: BlobStore, name: str, host: str, pid: int, expires_in: timedelta) -> str:
    key = f"{PREFIX}{name}.json"
    now = utcnow()
    body = {
        "format": "eakte-backup-lock/1",
        "host": host,
        "pid": pid,
        "run": name,
        "acquired_at": (now - timedelta(hours=1)).isoformat(),
        "expires_at": (now + expires_in).isoformat(),
    }
    target.put(key, io.BytesIO(json.dumps(body).encode()))
    return key


def test_live_lock_refuses_and_a_dead_or_expired_one_is_taken_over(
    installation: Installation,
) -> None:
    env = installation.env(installation.source)
    target = installation.open(installation.target_url)

    # Another host's run, renewed a minute ago: nothing here can tell it is gone.
    elsewhere = _put_lock(target, "elsewhere", "backup-host-2", 4242, timedelta(minutes=9))
    refused = run(env, "backup", "create", "--to", installation.target_url)
    assert refused.exit_code == 4, refused.output
    assert "host backup-host-2, pid 4242" in refused.output
    assert target.exists(elsewhere) and manifest_names(target) == []

    # The same run, silent past its expiry: taken over.
    _put_lock(target, "elsewhere", "backup-host-2", 4242, timedelta(seconds=-1))
    taken = run(env, "backup", "create", "--to", installation.target_url)
    assert taken.exit_code == 0, taken.output
    assert not target.exists(elsewhere)

    # A run on this host whose process is gone (killed): taken over at once, unexpired.
    gone = subprocess.Popen(["true"])  # noqa: S607 - a process that is certainly over
    gone.wait()
    crashed = _put_lock(target, "crashed", socket.gethostname(), gone.pid, timedelta(minutes=9))
    resumed = run(env, "backup", "create", "--to", installation.target_url)
    assert resumed.exit_code == 0, resumed.output
    assert not target.exists(crashed)
    assert list(target.list(PREFIX)) == [] and len(manifest_names(target)) == 2

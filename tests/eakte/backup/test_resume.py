"""A backup killed with SIGKILL half-way resumes on the next run and completes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

from eakte.backup.service import BLOBS
from eakte.backup.target import manifest_names, open_target, read_manifest
from tests.eakte.backup.conftest import Installation
from tests.support.server import EAKTE, clean_env, eakte

BLOBS_IN_STORE = 300


def test_backup_killed_midway_resumes_and_completes(
    installation: Installation, tmp_path: Path
) -> None:
    source = installation.source
    # Blobs without rows (as an upload leaves them before its row commits): the backup takes
    # every blob of the store, and these have no checksum in the database to go by.
    for n in range(BLOBS_IN_STORE):
        source.store.put(f"inbox/{n:04d}/original", io.BytesIO(os.urandom(4096)))
    env = clean_env(**installation.env(source, EAKTE_BACKUP_WORKERS="1"))
    target_url = installation.new_target()
    target = open_target(target_url, source.storage_url)

    proc = subprocess.Popen(
        [*EAKTE, "backup", "create", "--to", target_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while sum(1 for _ in target.list(BLOBS)) < 40:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the backup copied nothing within 60 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert manifest_names(target) == []  # interrupted: no manifest, so not a backup yet
    copied_before = sum(1 for _ in target.list(BLOBS))
    assert 40 <= copied_before < BLOBS_IN_STORE

    resumed = eakte(tmp_path, "backup", "create", "--to", target_url, env=env)
    assert "removed the dump of an interrupted backup" in resumed.stdout
    assert f"{BLOBS_IN_STORE} blobs, {BLOBS_IN_STORE - copied_before} copied" in resumed.stdout
    manifest = read_manifest(target)
    assert {b["key"] for b in manifest["blobs"]} == {s.key for s in source.store.list()}
    assert sum(1 for _ in target.list("db/")) == 1
    verified = eakte(tmp_path, "backup", "verify", target_url, env=env)
    assert f"ok: {BLOBS_IN_STORE + 1} objects" in verified.stdout

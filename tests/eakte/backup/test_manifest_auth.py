"""Manifests of encrypted backups are authenticated: a rewritten one is refused.

The blobs and the dump in a target are sealed, but the manifest is plain JSON that anyone
who can write to the target could change: claim the backup is unencrypted (so that planted
plaintext is restored), or name other content for a document. Under a key every manifest
carries a MAC, and verify, restore and the next incremental backup check it.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from eakte.backup.crypto import manifest_authentic, manifest_mac
from eakte.backup.target import manifest_names, read_manifest
from storage import BlobStore
from tests import factories
from tests.conftest import Api
from tests.eakte.backup.conftest import Installation
from tests.eakte.backup.test_backup import run
from tests.retention.helpers import file_with_documents, office

pytestmark = pytest.mark.parametrize("installation", ["sqlite-fs"], indirect=True)

KEY = base64.b64encode(os.urandom(32)).decode()


def rewrite(target: BlobStore, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Change the newest manifest in place, as someone with write access to the target can."""
    name = manifest_names(target)[-1]
    manifest = read_manifest(target, name)
    change(manifest)
    target.put(name, io.BytesIO(json.dumps(manifest, indent=1).encode()))
    return manifest


def backed_up(installation: Installation, api: Api) -> tuple[str, BlobStore, dict[str, str]]:
    """An encrypted backup of a file with two documents: its target URL, target and env."""
    o = office(api)
    file_with_documents(api, o, factories.plan_item(api)["code"], documents=2)
    env = installation.env(installation.source, EAKTE_BACKUP_KEY=KEY)
    url = installation.new_target()
    made = run(env, "backup", "create", "--to", url)
    assert made.exit_code == 0, made.output
    return url, installation.open(url), env


def test_an_encrypted_backup_carries_a_valid_mac(
    installation: Installation, source_api: Api
) -> None:
    _, target, _ = backed_up(installation, source_api)
    manifest = read_manifest(target)
    key = base64.b64decode(KEY)
    assert manifest_authentic(key, manifest)
    assert manifest["mac"] == manifest_mac(key, manifest)
    assert not manifest_authentic(os.urandom(32), manifest)


def test_a_changed_manifest_is_refused_by_verify_and_restore(
    installation: Installation, source_api: Api
) -> None:
    url, target, env = backed_up(installation, source_api)
    blobs = read_manifest(target)["blobs"]
    first, second = blobs[0], blobs[1]

    # Point the first document at the second's content, which the target holds, sealed.
    def swap(m: dict[str, Any]) -> None:
        m["blobs"][0]["sha256"], m["blobs"][0]["size"] = second["sha256"], second["size"]

    rewrite(target, swap)
    checked = run(env, "backup", "verify", url)
    assert checked.exit_code == 6, checked.output
    assert "fails authentication" in checked.output

    place = installation.empty()
    restored = run(installation.env(place, EAKTE_BACKUP_KEY=KEY), "backup", "restore", url)
    assert restored.exit_code == 6, restored.output
    assert "fails authentication" in restored.output
    assert next(iter(place.store.list()), None) is None  # nothing restored
    assert first["sha256"] != second["sha256"]


def test_a_manifest_that_drops_the_encryption_is_refused_under_a_key(
    installation: Installation, source_api: Api
) -> None:
    url, target, env = backed_up(installation, source_api)

    def plain(m: dict[str, Any]) -> None:
        m["encrypted"], m["key_id"] = False, None
        del m["mac"]

    rewrite(target, plain)
    place = installation.empty()
    restored = run(installation.env(place, EAKTE_BACKUP_KEY=KEY), "backup", "restore", url)
    assert restored.exit_code == 2, restored.output
    assert "says it is not encrypted" in restored.output
    assert next(iter(place.store.list()), None) is None


def test_a_manifest_without_a_mac_needs_the_operators_word(
    installation: Installation, source_api: Api
) -> None:
    """Backups written before manifests carried a MAC stay restorable, on request."""
    url, target, env = backed_up(installation, source_api)
    rewrite(target, lambda m: m.pop("mac"))

    refused = run(env, "backup", "verify", url)
    assert refused.exit_code == 2, refused.output
    assert "--allow-unauthenticated" in refused.output
    accepted = run(env, "backup", "verify", url, "--allow-unauthenticated")
    assert accepted.exit_code == 0, accepted.output

    place = installation.empty()
    keyed = installation.env(place, EAKTE_BACKUP_KEY=KEY)
    restored = run(keyed, "backup", "restore", url, "--allow-unauthenticated")
    assert restored.exit_code == 0, restored.output


def test_the_next_backup_does_not_take_checksums_from_a_changed_manifest(
    installation: Installation, source_api: Api
) -> None:
    url, target, env = backed_up(installation, source_api)
    truth = {b["key"]: b["sha256"] for b in read_manifest(target)["blobs"]}
    first, second = sorted(truth)[:2]

    def swap(m: dict[str, Any]) -> None:
        for b in m["blobs"]:
            if b["key"] == first:
                b["sha256"] = truth[second]

    rewrite(target, swap)
    again = run(env, "backup", "create", "--to", url)
    assert again.exit_code == 0, again.output
    newest = read_manifest(target)
    assert {b["key"]: b["sha256"] for b in newest["blobs"]} == truth
    assert run(env, "backup", "verify", url).exit_code == 0

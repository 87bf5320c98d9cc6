"""A target records how its backups are encrypted before anything else is written to it."""

from __future__ import annotations

import base64
import io
import os

from eakte.backup.service import BLOBS
from eakte.backup.target import MARKER, manifest_names, read_marker
from tests import factories
from tests.conftest import Api
from tests.eakte.backup.conftest import Installation
from tests.eakte.backup.test_backup import run
from tests.retention.helpers import file_with_documents, office


def _interrupt(installation: Installation, target_url: str) -> None:
    """Leave the target as a run killed before its manifest does: blobs and a dump only."""
    target = installation.open(target_url)
    for name in manifest_names(target):
        target.delete(name)
    assert any(True for _ in target.list(BLOBS))


def test_encryption_and_key_cannot_change_after_an_interrupted_run(
    installation: Installation, source_api: Api
) -> None:
    o = office(source_api)
    file_with_documents(source_api, o, factories.plan_item(source_api)["code"], documents=2)
    key = base64.b64encode(os.urandom(32)).decode()
    plain = installation.env(installation.source)
    keyed = installation.env(installation.source, EAKTE_BACKUP_KEY=key)

    # Unencrypted, interrupted; then with a key: its plaintext blobs must not be taken in.
    unencrypted = installation.new_target()
    assert run(plain, "backup", "create", "--to", unencrypted).exit_code == 0
    _interrupt(installation, unencrypted)
    refused = run(keyed, "backup", "create", "--to", unencrypted)
    assert refused.exit_code == 4, refused.output
    assert "holds unencrypted backups" in refused.output
    assert manifest_names(installation.open(unencrypted)) == []

    # Encrypted, interrupted; then with another key.
    encrypted = installation.new_target()
    assert run(keyed, "backup", "create", "--to", encrypted).exit_code == 0
    _interrupt(installation, encrypted)
    other = installation.env(
        installation.source, EAKTE_BACKUP_KEY=base64.b64encode(os.urandom(32)).decode()
    )
    refused = run(other, "backup", "create", "--to", encrypted)
    assert refused.exit_code == 4 and "another key" in refused.output, refused.output
    refused = run(plain, "backup", "create", "--to", encrypted)
    assert refused.exit_code == 4 and "holds encrypted backups" in refused.output

    # The same key resumes the interrupted run, and what it trusted verifies.
    resumed = run(keyed, "backup", "create", "--to", encrypted)
    assert resumed.exit_code == 0 and ", 0 copied" in resumed.output, resumed.output
    assert run(keyed, "backup", "verify", encrypted).exit_code == 0
    marker = read_marker(installation.open(encrypted))
    assert marker is not None and marker["encrypted"] is True


def test_leftovers_without_a_record_of_their_encryption_are_refused(
    installation: Installation, source_api: Api
) -> None:
    target_url = installation.new_target()
    target = installation.open(target_url)
    # As a run of a version that wrote no marker leaves it, when killed before its manifest.
    target.put(f"{BLOBS}{'0' * 64}", io.BytesIO(b"left over"))
    env = installation.env(installation.source)
    refused = run(env, "backup", "create", "--to", target_url)
    assert refused.exit_code == 4, refused.output
    assert "no record of how they were encrypted" in refused.output
    assert not target.exists(MARKER) and manifest_names(target) == []


def test_a_target_with_manifests_but_no_marker_gets_one_from_its_manifests(
    installation: Installation, source_api: Api
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    keyed = installation.env(installation.source, EAKTE_BACKUP_KEY=key)
    target_url = installation.new_target()
    assert run(keyed, "backup", "create", "--to", target_url).exit_code == 0
    target = installation.open(target_url)
    target.delete(MARKER)  # as a target written before markers existed

    refused = run(installation.env(installation.source), "backup", "create", "--to", target_url)
    assert refused.exit_code == 4 and "holds encrypted backups" in refused.output
    assert run(keyed, "backup", "create", "--to", target_url).exit_code == 0
    marker = read_marker(target)
    assert marker is not None and marker["encrypted"] is True

"""Fixity: a flipped byte and a missing blob are found and reported to archivists."""

from __future__ import annotations

from pathlib import Path

from eakte.db import make_session_factory
from retention.fixity import run_fixity
from storage import FilesystemStore
from tests import factories
from tests.conftest import Api
from tests.retention.helpers import file_with_documents, office
from tests.support.server import clean_env, eakte


def test_fixity_finds_a_flipped_byte_and_a_missing_blob(api: Api) -> None:
    o = office(api)
    item = factories.plan_item(api)
    f, docs = file_with_documents(api, o, item["code"], documents=3)
    keys = [b.key for d in docs for b in api.store.list(f"docs/{d['id']}/")]
    if isinstance(api.store, FilesystemStore):
        path = api.store.root / keys[0]
        data = bytearray(path.read_bytes())
        data[10] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        import io

        blob = api.store.client.get_object(api.store.bucket, keys[0]).read()
        flipped = blob[:10] + bytes([blob[10] ^ 1]) + blob[11:]
        api.store.client.put_object(api.store.bucket, keys[0], io.BytesIO(flipped), len(flipped))
    api.store.delete(keys[1])

    report = run_fixity(make_session_factory(api.engine), api.store, "test")
    mine = {p["blob_key"]: p["kind"] for p in report.problems if p["org_unit"] == o.unit.code}
    assert mine == {keys[0]: "mismatch", keys[1]: "missing"}

    r = api.client.get("/api/v1/retention/fixity?limit=1", headers=o.anna)
    assert r.status_code == 200
    (latest,) = r.json()
    assert {p["blob_key"] for p in latest["problems"]} == {keys[0], keys[1]}
    other = office(api)
    (theirs,) = api.client.get("/api/v1/retention/fixity?limit=1", headers=other.anna).json()
    assert theirs["problems"] == []
    assert api.client.get("/api/v1/retention/fixity", headers=o.unit.clerk).status_code == 403


def test_cli_due_run_approve_execute_and_fixity(tmp_path: Path) -> None:
    env = clean_env(EAKTE_RETENTION_FOUR_EYES="true")
    eakte(tmp_path, "db", "upgrade", env=env)
    eakte(tmp_path, "orgunit", "add", "32", "Bauordnungsamt", env=env)
    eakte(
        tmp_path,
        "plan",
        "add",
        "63.01",
        "Bau",
        "--retention-years",
        "0",
        "--archive-value",
        "V",
        env=env,
    )
    none_due = eakte(tmp_path, "retention", "due", env=env)
    assert "0 files due" in none_due.stdout
    nothing = eakte(tmp_path, "retention", "run", "--actor", "anna", env=env, check=False)
    assert nothing.returncode == 4 and nothing.stderr.startswith("eakte: no file")
    ok = eakte(tmp_path, "fixity", env=env)
    assert "0 versions checked, 0 mismatches, 0 missing" in ok.stdout

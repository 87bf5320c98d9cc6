"""The retention commands as real processes: run, approve, execute, and a SIGKILL mid-run."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from eakte.audit.models import AuditEvent
from eakte.db import make_engine, make_session_factory, unit_of_work
from retention.models import DisposalItem, DisposalRecord, ItemState
from storage import FilesystemStore, S3Store
from tests import factories
from tests.conftest import Api, api_for
from tests.retention.helpers import PDF, Office, close, office
from tests.support.server import EAKTE, clean_env, eakte

LONG_AGO = "2012-06-01T10:00:00+02:00"


@dataclass
class CliApi:
    """The app on a database of the test's own, and the environment for `eakte` processes."""

    api: Api
    env: dict[str, str]
    cwd: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `eakte ARGS` against this database and store."""
        return eakte(self.cwd, *args, env=self.env, check=check)


@pytest.fixture
def cli_api(
    fresh_database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[CliApi]:
    """PostgreSQL with SeaweedFS, or SQLite with files; a database of its own.

    The commands act for every org unit of the database, so a shared database would let
    them dispose of other tests' files.
    """
    url = fresh_database_url
    if url.startswith("sqlite"):
        fs: FilesystemStore = request.getfixturevalue("fs_store")
        store: FilesystemStore | S3Store = fs
        storage_url = f"file://{fs.root}"
    else:
        s3: S3Store = request.getfixturevalue("s3_store")
        store = s3
        storage_url = request.getfixturevalue("s3_server").url(s3.bucket)
    env = clean_env(EAKTE_DATABASE_URL=url, EAKTE_STORAGE_URL=storage_url)
    engine = make_engine(url)
    try:
        for api in api_for(url, engine, store):
            yield CliApi(api, env, tmp_path)
    finally:
        engine.dispose()


def _closed_files(api: Api, o: Office, plan_code: str, n: int) -> list[dict[str, str]]:
    """n files closed long ago, each with one small document."""
    files = []
    for _ in range(n):
        f = factories.file(api, o.unit, plan_code)
        r = factories.upload(api, o.unit.clerk, f["id"], PDF + uuid.uuid4().bytes, name="a.pdf")
        assert r.status_code == 201, r.text
        close(api, o, f["id"], LONG_AGO)
        files.append(f)
    return files


def _run_id(output: str) -> str:
    # "run <uuid> (<date>): <status>; ..."
    return output.split()[1]


def _audit_count(api: Api, action: str, object_id: str) -> int:
    with unit_of_work(make_session_factory(api.engine)) as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    AuditEvent.action == action, AuditEvent.object_id == object_id
                )
            )
            or 0
        )


def test_cli_proposes_approves_with_four_eyes_and_executes(cli_api: CliApi) -> None:
    api = cli_api.api
    o = office(api)
    item = factories.plan_item(api, retention_years=5, archive_value="V")
    files = _closed_files(api, o, item["code"], 2)
    today = date.today().isoformat()

    proposed = cli_api.cli("retention", "run", "--as-of", today, "--actor", "anna")
    run_id = _run_id(proposed.stdout)
    assert "proposed; 2 pending" in proposed.stdout

    same = cli_api.cli("retention", "approve", run_id, "--actor", "anna", check=False)
    assert same.returncode == 2 and "four-eyes" in same.stderr
    early = cli_api.cli("retention", "execute", run_id, "--actor", "anna", check=False)
    assert early.returncode == 4 and "only approved runs execute" in early.stderr
    approved = cli_api.cli("retention", "approve", run_id, "--actor", "bert")
    assert "approved" in approved.stdout

    done = cli_api.cli("retention", "execute", run_id, "--actor", "anna")
    assert "completed; 2 done" in done.stdout
    again = cli_api.cli("retention", "execute", run_id, "--actor", "anna", check=False)
    assert again.returncode == 4

    r = api.client.get(f"/api/v1/retention/runs/{run_id}/certificate", headers=o.bert)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    cert = json.loads(r.content)
    assert (cert["proposed_by"], cert["approved_by"], cert["executed_by"]) == (
        "anna",
        "bert",
        "anna",
    )
    assert sorted(rec["reference"] for rec in cert["records"]) == sorted(
        f["reference"] for f in files
    )
    assert {rec["action"] for rec in cert["records"]} == {"destroyed"}
    for f in files:
        assert list(api.store.list(f"docs/{_document_ids(api, f)[0]}/")) == []
        assert _audit_count(api, "file.destroyed", f["id"]) == 1
    # Another unit's archivist does not see the run, not even its certificate.
    other = office(api)
    assert (
        api.client.get(f"/api/v1/retention/runs/{run_id}/certificate", headers=other.anna)
    ).status_code == 404


def _document_ids(api: Api, f: dict[str, str]) -> list[str]:
    from eakte.documents.models import Document

    with unit_of_work(make_session_factory(api.engine)) as session:
        return [
            str(d)
            for d in session.scalars(
                select(Document.id).where(Document.file_id == uuid.UUID(f["id"]))
            )
        ]


def test_killed_execution_resumes_without_losing_or_repeating(cli_api: CliApi) -> None:
    api, env = cli_api.api, cli_api.env
    o = office(api)
    item = factories.plan_item(api, retention_years=5, archive_value="V")
    files = _closed_files(api, o, item["code"], 30)
    documents = {f["id"]: _document_ids(api, f) for f in files}
    today = date.today().isoformat()
    run_id = _run_id(cli_api.cli("retention", "run", "--as-of", today, "--actor", "anna").stdout)
    cli_api.cli("retention", "approve", run_id, "--actor", "bert")

    factory = make_session_factory(api.engine)
    run = uuid.UUID(run_id)
    # A plain engine: eakte's SQLite engine takes the write lock at BEGIN, and a poller
    # holding it every few milliseconds would stall the process it watches.
    watcher = create_engine(api.settings.database_url)

    def progress() -> int:
        with watcher.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count()).where(
                        DisposalItem.run_id == run,
                        DisposalItem.state != ItemState.PENDING.value,
                    )
                )
                or 0
            )

    proc = subprocess.Popen(  # noqa: S603 - our own CLI, argument list
        [*EAKTE, "retention", "execute", run_id, "--actor", "anna"],
        env=env,
        cwd=cli_api.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while progress() < 3:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the execution made no progress"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        watcher.dispose()
        proc.kill()
        proc.wait(timeout=20)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with unit_of_work(factory) as session:
        states = dict(
            session.execute(
                select(DisposalItem.state, func.count())
                .where(DisposalItem.run_id == run)
                .group_by(DisposalItem.state)
            ).all()
        )
    assert states.get(ItemState.PENDING.value, 0) > 0, f"killed too late: {states}"
    assert sum(states.values()) == len(files)

    resumed = cli_api.cli("retention", "execute", run_id, "--actor", "anna")
    assert f"completed; {len(files)} done" in resumed.stdout

    with unit_of_work(factory) as session:
        records = session.execute(
            select(DisposalRecord.file_id, func.count())
            .where(DisposalRecord.run_id == run)
            .group_by(DisposalRecord.file_id)
        ).all()
    assert sorted((str(f), n) for f, n in records) == sorted((f["id"], 1) for f in files)
    for f in files:
        assert _audit_count(api, "file.disposal_started", f["id"]) == 1
        assert _audit_count(api, "file.destroyed", f["id"]) == 1
        for document_id in documents[f["id"]]:
            assert list(api.store.list(f"docs/{document_id}/")) == []
            assert _audit_count(api, "document.content_deleted", document_id) == 1

"""HTTP routes of retention: closing files, holds, the due list, disposal runs, fixity reports."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from eakte.deps import (
    OffsetQuery,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    get_session_factory,
)
from eakte.idempotency.service import IdempotencyDep
from retention import disposal, execution, fixity, handover, service
from retention.disposal import RunView
from retention.models import FixityReport, Hold
from retention.rules import RetentionPolicy
from retention.schemas import (
    CloseRequest,
    DecisionsIn,
    DueFileOut,
    DueListOut,
    FileRetentionOut,
    FixityReportOut,
    HoldCreate,
    HoldOut,
    HoldRelease,
    ItemOut,
    ReceiptIn,
    ReopenRequest,
    RunCreate,
    RunOut,
)
from retention.service import FileRetention

router = APIRouter(prefix="/api/v1/retention", tags=["retention"])

FactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


async def _policy(settings: SettingsDep) -> RetentionPolicy:
    return RetentionPolicy.from_settings(settings)


PolicyDep = Annotated[RetentionPolicy, Depends(_policy)]


def _file_out(state: FileRetention) -> FileRetentionOut:
    file = state.file
    return FileRetentionOut(
        file_id=file.id,
        reference=file.reference,
        status=file.status,
        closed_at=file.closed_at,
        retention_years=file.plan_item.retention_years,
        archive_value=file.plan_item.archive_value,
        due_on=state.due_on,
        active_holds=state.active_holds,
    )


def _run_out(v: RunView) -> RunOut:
    r = v.run
    return RunOut(
        id=r.id,
        as_of=r.as_of,
        status=r.status,
        org_units=r.org_units,
        proposed_by=r.proposed_by,
        proposed_at=r.proposed_at,
        approved_by=r.approved_by,
        approved_at=r.approved_at,
        executed_by=r.executed_by,
        completed_at=r.completed_at,
        items=v.items,
        undecided=v.undecided,
    )


@router.post("/files/{file_id}/close", response_model=FileRetentionOut)
def close_file(
    file_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    policy: PolicyDep,
    idem: IdempotencyDep,
    data: CloseRequest | None = None,
) -> FileRetentionOut:
    """Close a file (zdA); its content is locked until the due date."""
    closed_at = data.closed_at if data else None
    return idem.once(session, 200, closed_at, lambda: _file_out(
        service.close_file(session, store, principal, policy, file_id, closed_at)))


@router.post("/files/{file_id}/reopen", response_model=FileRetentionOut)
def reopen_file(
    file_id: uuid.UUID,
    data: ReopenRequest,
    session: SessionDep,
    principal: PrincipalDep,
    policy: PolicyDep,
    idem: IdempotencyDep,
) -> FileRetentionOut:
    """Reopen a closed file before it falls due."""
    return idem.once(session, 200, data, lambda: _file_out(
        service.reopen_file(session, principal, policy, file_id, data.reason)))


@router.get("/files/{file_id}", response_model=FileRetentionOut)
def file_retention(
    file_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, policy: PolicyDep
) -> FileRetentionOut:
    """A file's closure, due date and holds."""
    return _file_out(service.retention_of(session, principal, policy, file_id))


@router.post("/files/{file_id}/holds", status_code=status.HTTP_201_CREATED, response_model=HoldOut)
def place_hold(
    file_id: uuid.UUID,
    data: HoldCreate,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    idem: IdempotencyDep,
) -> HoldOut:
    """Place a hold (legal hold) on a file."""
    return idem.once(session, 201, data, lambda: HoldOut.model_validate(
        service.place_hold(session, store, principal, file_id, data.reason, data.owner)))


@router.get("/files/{file_id}/holds", response_model=list[HoldOut])
def list_holds(file_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> list[Hold]:
    """A file's holds, newest first."""
    return list(service.list_holds(session, principal, file_id))


@router.post("/holds/{hold_id}/release", response_model=HoldOut)
def release_hold(
    hold_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    idem: IdempotencyDep,
    data: HoldRelease | None = None,
) -> HoldOut:
    """Release a hold."""
    note = data.note if data else None
    return idem.once(session, 200, note, lambda: HoldOut.model_validate(
        service.release_hold(session, store, principal, hold_id, note)))


@router.get("/due", response_model=DueListOut)
def due(
    session: SessionDep,
    principal: PrincipalDep,
    policy: PolicyDep,
    as_of: date | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> DueListOut:
    """Files of your org units due at a date (today by default), unheld and in no run."""
    day = as_of or policy.today()
    total, page = service.due_list(session, principal, policy, day, limit, offset)
    return DueListOut(
        as_of=day,
        total=total,
        files=[
            DueFileOut(
                file_id=f.id,
                reference=f.reference,
                title=f.title,
                plan_code=f.plan_code,
                org_unit=f.unit_code,
                closed_at=f.closed_at,
                due_on=due_on,
                archive_value=f.plan_item.archive_value,
            )
            for f, due_on in page
        ],
    )


@router.post("/runs", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def propose_run(
    session: SessionDep,
    principal: PrincipalDep,
    policy: PolicyDep,
    idem: IdempotencyDep,
    data: RunCreate | None = None,
) -> RunOut:
    """Propose a disposal run of every file of your org units due at a date."""
    as_of = data.as_of if data else None
    return idem.once(session, 201, as_of, lambda: _run_out(
        disposal.propose_run(session, principal, policy, as_of)))


@router.get("/runs", response_model=list[RunOut])
def list_runs(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQuery = 0,
) -> list[RunOut]:
    """Disposal runs of your org units, newest first."""
    return [_run_out(v) for v in disposal.list_runs(session, principal, limit, offset)]


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> RunOut:
    """One disposal run with its item counts."""
    return _run_out(disposal.view(session, disposal.get_run(session, principal, run_id)))


@router.get("/runs/{run_id}/items", response_model=list[ItemOut])
def run_items(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: OffsetQuery = 0,
) -> list[ItemOut]:
    """The files of a run and where each stands."""
    return [
        ItemOut(
            file_id=f.id,
            reference=f.reference,
            title=f.title,
            archive_value=i.archive_value,
            decision=i.decision,
            decided_by=i.decided_by,
            state=i.state,
            note=i.note,
            archive_reference=i.archive_reference,
        )
        for i, f in disposal.run_items(session, principal, run_id, limit, offset)
    ]


@router.post("/runs/{run_id}/decisions", response_model=RunOut)
def decide(
    run_id: uuid.UUID,
    data: DecisionsIn,
    session: SessionDep,
    principal: PrincipalDep,
    idem: IdempotencyDep,
) -> RunOut:
    """Decide A (archive) or V (destroy) for files of archive value B, before approval."""
    pairs = [(d.file_id, d.decision.value) for d in data.decisions]
    return idem.once(session, 200, pairs, lambda: _run_out(
        disposal.decide(session, principal, run_id, pairs)))


@router.post("/runs/{run_id}/approve", response_model=RunOut)
def approve(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    policy: PolicyDep,
    idem: IdempotencyDep,
) -> RunOut:
    """Approve a proposed run (with four eyes: not its proposer)."""
    return idem.once(session, 200, None, lambda: _run_out(
        disposal.approve_run(session, principal, policy, run_id)))


@router.post("/runs/{run_id}/cancel", response_model=RunOut)
def cancel(
    run_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, idem: IdempotencyDep
) -> RunOut:
    """Cancel a run that has not started executing."""
    return idem.once(session, 200, None, lambda: _run_out(
        disposal.cancel_run(session, principal, run_id)))


@router.post("/runs/{run_id}/execute", response_model=RunOut)
def execute(
    run_id: uuid.UUID,
    principal: PrincipalDep,
    store: StoreDep,
    policy: PolicyDep,
    factory: FactoryDep,
) -> RunOut:
    """Execute (or resume) an approved run: destroy V files, hand A files over."""
    return _run_out(execution.execute_run(factory, store, principal, policy, run_id))


@router.post("/runs/{run_id}/receipt", response_model=RunOut)
def receipt(
    run_id: uuid.UUID,
    data: ReceiptIn,
    principal: PrincipalDep,
    store: StoreDep,
    policy: PolicyDep,
    factory: FactoryDep,
) -> RunOut:
    """Record the archive's receipt; the content of the received files is then deleted."""
    return _run_out(
        execution.receive(
            factory, store, principal, policy, run_id, data.archive_reference, data.file_ids
        )
    )


def _stream(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(1024 * 1024):
            yield chunk


@router.get(
    "/runs/{run_id}/package",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def package(
    run_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    policy: PolicyDep,
) -> StreamingResponse:
    """The handover package (XDOMEA 0503 ZIP) of the files awaiting the archive's receipt."""
    # Built into a temporary file first: a failure is a problem response, not a cut-off ZIP.
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the streaming generator
    try:
        info = handover.build_package(session, store, principal, policy, run_id, handle)
        size = handle.tell()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return StreamingResponse(
        _stream(handle),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{info.name}"',
            "Content-Length": str(size),
        },
    )


@router.get("/runs/{run_id}/certificate", responses={200: {"content": {"application/json": {}}}})
def certificate(run_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Response:
    """The run's destruction and transfer certificate (JSON), to download and file."""
    body = disposal.certificate(session, principal, run_id)
    return Response(
        json.dumps(body, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="Vernichtungsnachweis-{run_id}.json"'
        },
    )


def _report_out(found: FixityReport, problems: list[dict[str, Any]]) -> FixityReportOut:
    return FixityReportOut(
        id=found.id,
        started_at=found.started_at,
        finished_at=found.finished_at,
        started_by=found.started_by,
        checked=found.checked,
        bytes_read=found.bytes_read,
        mismatches=found.mismatches,
        missing=found.missing,
        problems=problems,
    )


@router.get("/fixity", response_model=list[FixityReportOut])
def fixity_reports(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[FixityReportOut]:
    """The latest fixity reports, with the problems found in your org units."""
    return [_report_out(r, p) for r, p in fixity.reports(session, principal, limit)]


@router.get("/fixity/{report_id}", response_model=FixityReportOut)
def fixity_report(
    report_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> FixityReportOut:
    """One fixity report."""
    return _report_out(*fixity.report(session, principal, report_id))

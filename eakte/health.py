"""The unauthenticated health endpoint: is the database and the blob store reachable?"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from eakte import __version__
from eakte.db import ping

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


def _check(name: str, fn: Callable[[], object]) -> str:
    try:
        fn()
    except Exception as exc:
        # Reported by name only: the reason may contain hosts or credentials.
        log.warning("health check %s failed: %s", name, exc)
        return "unavailable"
    return "ok"


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Status of database and storage; 503 if either is unavailable."""
    state = request.app.state
    checks = {
        "database": await run_in_threadpool(_check, "database", lambda: ping(state.engine)),
        "storage": await run_in_threadpool(_check, "storage", state.store.check),
    }
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "degraded", "version": __version__, **checks}
    return JSONResponse(body, status_code=200 if healthy else 503)

"""Attach a running bridge to an app: started and stopped with the app's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import zmq
from fastapi import FastAPI

from cti_bridge.bridge import Bridge
from eakte.settings import Settings

log = logging.getLogger(__name__)


def attach_bridge(app: FastAPI, settings: Settings, *, required: bool = True) -> Bridge:
    """Run a Bridge in this app's process; `required=False` serves on without one.

    The app's existing lifespan is wrapped, not replaced, so other features that hook
    into it keep working.
    """
    bridge = Bridge(settings, app.state.session_factory)
    app.state.cti_bridge = bridge
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            try:
                await bridge.start()
            except zmq.ZMQError as exc:
                if required:
                    raise
                log.error(
                    "CTI bridge not started: cannot bind %s (%s); the API serves on without"
                    " it, call events answer 503",
                    settings.cti_pub_endpoint,
                    exc,
                )
            try:
                yield state
            finally:
                if bridge.running:
                    await bridge.stop()

    app.router.lifespan_context = lifespan
    return bridge

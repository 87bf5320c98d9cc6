"""Fan-out of pop-up events to Server-Sent-Event streams in this process."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

log = logging.getLogger(__name__)

QUEUE_SIZE = 100


class SseBroker:
    """Delivers events from worker threads to the event loop's per-stream queues."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the streams run on."""
        self._loop = loop

    def subscribe(self, extensions: list[str]) -> asyncio.Queue[str]:
        """A queue receiving the events of these extensions (call on the event loop)."""
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        for ext in extensions:
            self._queues[ext].add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        """Stop delivering to a queue (call on the event loop)."""
        for ext in list(self._queues):
            self._queues[ext].discard(queue)
            if not self._queues[ext]:
                del self._queues[ext]

    def publish(self, extension: str, payload: bytes) -> None:
        """Hand an event (JSON) to the streams of `extension`; safe from any thread."""
        if self._loop is None or self._loop.is_closed():
            return
        # Most calls have no browser listening: skip waking the event loop for them. A
        # stream subscribing at this very moment may miss this one event, as it would
        # had it subscribed a moment later.
        if extension not in self._queues:
            return
        self._loop.call_soon_threadsafe(self._deliver, extension, payload.decode())

    def _deliver(self, extension: str, payload: str) -> None:
        for queue in list(self._queues.get(extension, ())):
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:
                log.warning("SSE stream for %s is not reading; event dropped", extension)

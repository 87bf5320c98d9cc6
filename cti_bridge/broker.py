"""Fan-out of pop-up events to Server-Sent-Event streams in this process."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

log = logging.getLogger(__name__)

QUEUE_SIZE = 100


class SseBroker:
    """Delivers events from worker threads to the event loop's per-stream queues.

    Streams are keyed by the clerk they belong to, and each pop-up names the clerk the
    lookup found for its extension: when an extension moves to another clerk, the next
    call goes to the new clerk's streams, never to a stream opened while it was the
    old one's.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the streams run on."""
        self._loop = loop

    def subscribe(self, clerk: str) -> asyncio.Queue[str]:
        """A queue receiving the pop-ups meant for `clerk` (call on the event loop)."""
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._queues[clerk].add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        """Stop delivering to a queue (call on the event loop)."""
        for clerk in list(self._queues):
            self._queues[clerk].discard(queue)
            if not self._queues[clerk]:
                del self._queues[clerk]

    def publish(self, clerk: str | None, payload: bytes) -> None:
        """Hand a pop-up (JSON) to the streams of `clerk`; safe from any thread."""
        if clerk is None or self._loop is None or self._loop.is_closed():
            return
        # Most calls have no browser listening: skip waking the event loop for them. A
        # stream subscribing at this very moment may miss this one event, as it would
        # had it subscribed a moment later.
        if clerk not in self._queues:
            return
        self._loop.call_soon_threadsafe(self._deliver, clerk, payload.decode())

    def _deliver(self, clerk: str, payload: str) -> None:
        for queue in list(self._queues.get(clerk, ())):
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:
                log.warning("an SSE stream of %s is not reading; event dropped", clerk)

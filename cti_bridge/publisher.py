"""The ZeroMQ PUB socket with CURVE: only desktops with enrolled keys may subscribe."""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from cti_bridge import keys

log = logging.getLogger(__name__)


class Publisher:
    """Publishes pop-up events with the extension as topic (frame 1) and JSON (frame 2).

    ZeroMQ sockets are not thread-safe, and events arrive from the web server's worker
    threads: they are handed over a queue to one sender thread, the only user of the
    socket, so no worker waits for a lock or another's send. A PUB send never blocks (a
    slow subscriber loses messages beyond the high-water mark instead of stalling calls).
    """

    def __init__(self, endpoint: str, key_dir: Path) -> None:
        self.endpoint = endpoint
        self.key_dir = key_dir
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None
        self._outbox: queue.SimpleQueue[tuple[bytes, bytes] | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._auth: ThreadAuthenticator | None = None
        self._loaded_mtime: float | None = None

    def start(self) -> None:
        """Start the authenticator and bind the socket; raises zmq.ZMQError if taken."""
        public, secret = keys.server_keys(self.key_dir)
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        auth = ThreadAuthenticator(context, log=logging.getLogger("cti_bridge.zap"))
        auth.start()
        self._context, self._auth = context, auth
        self.reload_keys()
        sock = context.socket(zmq.PUB)
        sock.curve_server = True
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 10_000)
        # Heartbeats notice desktops that vanished without closing their connection.
        sock.setsockopt(zmq.HEARTBEAT_IVL, 5_000)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 15_000)
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError:
            sock.close()
            self.stop()
            raise
        self._socket = sock
        self._outbox = queue.SimpleQueue()
        self._sender = threading.Thread(
            target=self._send_forever, args=(sock, self._outbox), name="cti-publisher", daemon=True
        )
        self._sender.start()
        log.info("CTI publisher bound to %s (CURVE)", self.endpoint)

    def reload_keys(self, force: bool = False) -> bool:
        """Re-read the enrolled desktops' keys if the directory changed; True if re-read."""
        if self._auth is None:
            return False
        directory = keys.desktops_dir(self.key_dir)
        mtime = directory.stat().st_mtime
        if not force and mtime == self._loaded_mtime:
            return False
        self._loaded_mtime = mtime
        # configure_curve reads every *.key file of the directory and replaces the set
        # of allowed keys at once, so a removed file withdraws the desktop's right to
        # connect anew (an open connection stays until it drops).
        self._auth.configure_curve(domain="*", location=str(directory))
        return True

    def publish(self, extension: str, payload: bytes) -> None:
        """Send one event to the subscribers of `extension` (from any thread)."""
        if self._sender is None:
            log.warning("CTI publisher is stopped; event for %s dropped", extension)
            return
        self._outbox.put((extension.encode(), payload))

    @staticmethod
    def _send_forever(
        sock: zmq.Socket[bytes], outbox: queue.SimpleQueue[tuple[bytes, bytes] | None]
    ) -> None:
        # The socket is created on another thread but used only here until stop() joins
        # this thread; ZeroMQ allows handing a socket over with such a full barrier.
        while (item := outbox.get()) is not None:
            try:
                sock.send_multipart(item, flags=zmq.NOBLOCK)
            except zmq.Again:
                log.warning("CTI publisher queue full; event for %s dropped", item[0].decode())
            except zmq.ZMQError:
                log.exception("CTI publisher could not send the event for %s", item[0].decode())
        sock.close(linger=0)

    def stop(self) -> None:
        """Send what is queued, close the socket and stop the authenticator."""
        sender, self._sender = self._sender, None
        if sender is not None:
            self._outbox.put(None)
            sender.join(timeout=10)
        elif self._socket is not None:
            self._socket.close(linger=0)
        self._socket = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._context is not None:
            self._context.term()
            self._context = None

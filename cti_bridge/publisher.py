"""The ZeroMQ PUB socket with CURVE: only desktops with enrolled keys may subscribe."""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from cti_bridge import keys

log = logging.getLogger(__name__)

# How long a rebind waits for the port its own listener has just released.
REBIND_TIMEOUT_SECONDS = 10.0


class _Command(enum.Enum):
    """What the sender thread is told besides events (None still means stop)."""

    REBIND = enum.auto()


Outbox = queue.SimpleQueue[tuple[bytes, bytes] | _Command | None]


class EnrolledKeys:
    """The ZAP credentials provider: a desktop may connect while its key is enrolled.

    The set is replaced whole, never changed in place, so the authenticator's thread
    always reads one consistent set.
    """

    def __init__(self) -> None:
        self.allowed: frozenset[bytes] = frozenset()

    def callback(self, domain: str, key: bytes) -> bool:
        """True if the (Z85) key is enrolled; called by the authenticator per handshake."""
        return key in self.allowed


class Publisher:
    """Publishes pop-up events with the extension as topic (frame 1) and JSON (frame 2).

    ZeroMQ sockets are not thread-safe, and events arrive from the web server's worker
    threads: they are handed over a queue to one sender thread, the only user of the
    socket, so no worker waits for a lock or another's send. A PUB send never blocks (a
    slow subscriber loses messages beyond the high-water mark instead of stalling calls).

    CURVE checks a desktop's key only in the handshake. To withdraw a desktop that is
    connected, the sender thread unbinds the socket and binds it again whenever keys were
    removed: every connection drops, the desktops reconnect by themselves within their
    reconnect interval, and the handshake refuses the withdrawn ones. Events published
    in that moment (some hundred milliseconds) reach no desktop; withdrawals are rare.
    """

    def __init__(self, endpoint: str, key_dir: Path) -> None:
        self.endpoint = endpoint
        self.key_dir = key_dir
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None
        self._outbox: Outbox = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._auth: ThreadAuthenticator | None = None
        self._enrolled = EnrolledKeys()
        self._loaded_mtime: float | None = None
        # reload_keys runs on the event loop (directory poll) and in request threads.
        self._reload_lock = threading.Lock()

    def start(self) -> None:
        """Start the authenticator and bind the socket; raises zmq.ZMQError if taken."""
        public, secret = keys.server_keys(self.key_dir)
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        auth = ThreadAuthenticator(context, log=logging.getLogger("cti_bridge.zap"))
        auth.start()
        self._enrolled = EnrolledKeys()
        auth.configure_curve_callback(domain="*", credentials_provider=self._enrolled)
        self._context, self._auth, self._loaded_mtime = context, auth, None
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
        # The endpoint as bound (a wildcard port resolved), to unbind and bind again.
        bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._sender = threading.Thread(
            target=self._send_forever,
            args=(sock, bound, self._outbox),
            name="cti-publisher",
            daemon=True,
        )
        self._sender.start()
        log.info("CTI publisher bound to %s (CURVE)", self.endpoint)

    def reload_keys(self, force: bool = False) -> bool:
        """Re-read the enrolled desktops' keys if the directory changed; True if re-read.

        If a key was withdrawn, every open connection is dropped (see the class), so a
        connected desktop whose key is gone cannot go on receiving.
        """
        with self._reload_lock:
            if self._auth is None:
                return False
            directory = keys.desktops_dir(self.key_dir)
            mtime = directory.stat().st_mtime
            if not force and mtime == self._loaded_mtime:
                return False
            self._loaded_mtime = mtime
            before = self._enrolled.allowed
            self._enrolled.allowed = frozenset(
                d.public_key.encode() for d in keys.enrolled_desktops(self.key_dir)
            )
            withdrawn = before - self._enrolled.allowed
            if withdrawn and self._sender is not None:
                log.info("%d desktop key(s) withdrawn; dropping connections", len(withdrawn))
                self._outbox.put(_Command.REBIND)
            return True

    def publish(self, extension: str, payload: bytes) -> None:
        """Send one event to the subscribers of `extension` (from any thread)."""
        if self._sender is None:
            log.warning("CTI publisher is stopped; event for %s dropped", extension)
            return
        self._outbox.put((extension.encode(), payload))

    @staticmethod
    def _send_forever(sock: zmq.Socket[bytes], endpoint: str, outbox: Outbox) -> None:
        # The socket is created on another thread but used only here until stop() joins
        # this thread; ZeroMQ allows handing a socket over with such a full barrier.
        while (item := outbox.get()) is not None:
            if item is _Command.REBIND:
                _rebind(sock, endpoint)
                continue
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


def _rebind(sock: zmq.Socket[bytes], endpoint: str) -> None:
    """Drop every connection of the socket: unbind closes the listener and its sessions."""
    try:
        sock.unbind(endpoint)
    except zmq.ZMQError:
        log.exception("CTI publisher could not unbind %s", endpoint)
    # The listener closes on ZeroMQ's I/O thread: the port is free a moment later.
    deadline = time.monotonic() + REBIND_TIMEOUT_SECONDS
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                log.error(
                    "CTI publisher could not bind %s again (%s): desktops get no pop-ups"
                    " until the bridge restarts",
                    endpoint,
                    exc,
                )
                return
            time.sleep(0.01)

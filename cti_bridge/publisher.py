"""The ZeroMQ XPUB socket with CURVE: each enrolled desktop gets only its own clerk's pop-ups.

The wire protocol, as `cti_bridge.desk` speaks it:

- A desktop connects a SUB socket with its enrolled CURVE keypair and subscribes to its
  own public key (Z85). Which topic it asks for does not matter: the bridge decides.
- The bridge runs its XPUB socket in manual mode: a subscription request only tells it
  that a connection wants pop-ups. It subscribes that connection to the topic of the key
  the connection authenticated with (ZAP reports the key as the message's User-Id), and
  to nothing else, whatever topic was asked for.
- A pop-up goes out once per enrolled desktop of the clerk the lookup found for the
  called extension: frame 1 is the desktop's public key (the topic), frame 2 the JSON.

So a desktop receives the pop-ups of the extensions mapped to the clerk who enrolled its
key, and a client cannot widen that by choosing a topic (or the empty one).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import queue
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class AddressedPop:
    """One pop-up for the desktops of `clerk`; `extension` only names it in log lines."""

    clerk: str
    extension: str
    payload: bytes


Outbox = queue.SimpleQueue[AddressedPop | _Command | None]


@dataclass(frozen=True)
class Enrollment:
    """Who enrolled which key: a snapshot of the authorised-clients directory."""

    clerk_of: Mapping[bytes, str] = field(default_factory=dict)
    keys_of: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, desktops: list[keys.Desktop]) -> Enrollment:
        """The enrollment the key files describe; keys that name no single clerk are left out.

        A key without an enrolling clerk (a file placed by hand before enrollments were
        recorded) would receive nobody's pop-ups, and a key enrolled by two clerks could
        not be told whose pop-ups it may get: both are refused at the handshake.
        """
        clerks: dict[bytes, set[str | None]] = {}
        for desktop in desktops:
            clerks.setdefault(desktop.public_key.encode(), set()).add(desktop.enrolled_by)
        clerk_of: dict[bytes, str] = {}
        for key, names in clerks.items():
            only = next(iter(names))
            if len(names) == 1 and only is not None:
                clerk_of[key] = only
            else:
                log.warning(
                    "CTI key %s is not enrolled by exactly one clerk (%s); refused",
                    key.decode(),
                    ", ".join(sorted(n or "nobody" for n in names)),
                )
        keys_of: dict[str, list[bytes]] = {}
        for key, clerk in clerk_of.items():
            keys_of.setdefault(clerk, []).append(key)
        return cls(clerk_of, {clerk: tuple(found) for clerk, found in keys_of.items()})


class EnrolledKeys:
    """The ZAP credentials provider: a desktop may connect while its key is enrolled.

    The enrollment is replaced whole, never changed in place, so the authenticator's
    thread and the sender thread always read one consistent snapshot.
    """

    def __init__(self) -> None:
        self.enrollment = Enrollment()

    def callback(self, domain: str, key: bytes) -> bool:
        """True if the (Z85) key is enrolled; called by the authenticator per handshake."""
        return key in self.enrollment.clerk_of


class Publisher:
    """Publishes each pop-up to the enrolled desktops of the clerk it is meant for.

    ZeroMQ sockets are not thread-safe, and events arrive from the web server's worker
    threads: they are handed over a queue to one sender thread, the only user of the
    socket, so no worker waits for a lock or another's send. The thread also answers the
    desktops' subscription requests; a byte on a local socket pair wakes it for events.
    A send never blocks (a slow subscriber loses messages beyond the high-water mark
    instead of stalling calls).

    A pop-up is addressed by the enrollment at the time it is sent: a withdrawn key gets
    nothing from then on. CURVE checks keys only in the handshake, so connections are
    also dropped when keys were withdrawn: the sender thread unbinds the socket and binds
    it again, every connection drops, the desktops reconnect by themselves within their
    reconnect interval, and the handshake refuses the withdrawn ones. Events published
    in that moment (some hundred milliseconds) reach no desktop; withdrawals are rare.
    """

    def __init__(self, endpoint: str, key_dir: Path) -> None:
        self.endpoint = endpoint
        self.key_dir = key_dir
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None
        self._outbox: Outbox = queue.SimpleQueue()
        self._wake: tuple[socket.socket, socket.socket] | None = None
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
        sock = context.socket(zmq.XPUB)
        sock.curve_server = True
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        # Manual: a desktop's subscription is only a request; the bridge picks the topic.
        sock.setsockopt(zmq.XPUB_MANUAL, 1)
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
        wake_reader, wake_writer = socket.socketpair()
        wake_reader.setblocking(False)
        wake_writer.setblocking(False)
        self._wake = (wake_reader, wake_writer)
        # The endpoint as bound (a wildcard port resolved), to unbind and bind again.
        bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._sender = threading.Thread(
            target=Sender(sock, bound, self._outbox, wake_reader, self._enrolled).run,
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
            before = self._enrolled.enrollment.clerk_of
            after = Enrollment.of(keys.enrolled_desktops(self.key_dir))
            self._enrolled.enrollment = after
            withdrawn = [key for key, clerk in before.items() if after.clerk_of.get(key) != clerk]
            if withdrawn and self._sender is not None:
                log.info("%d desktop key(s) withdrawn; dropping connections", len(withdrawn))
                self._put(_Command.REBIND)
            return True

    def publish(self, extension: str, clerk: str | None, payload: bytes) -> None:
        """Send a pop-up of `extension` to the desktops `clerk` enrolled (from any thread).

        `clerk` is who answers the extension according to the lookup that made the
        pop-up; with no clerk (an unmapped extension) no desktop may see it.
        """
        if clerk is None:
            return
        if self._sender is None:
            log.warning("CTI publisher is stopped; event for %s dropped", extension)
            return
        self._put(AddressedPop(clerk, extension, payload))

    def _put(self, item: AddressedPop | _Command | None) -> None:
        self._outbox.put(item)
        if self._wake is not None:
            # A full buffer is full of wake-ups: the thread wakes anyway.
            with contextlib.suppress(BlockingIOError):
                self._wake[1].send(b"\0")

    def stop(self) -> None:
        """Send what is queued, close the socket and stop the authenticator."""
        sender, self._sender = self._sender, None
        if sender is not None:
            self._put(None)
            sender.join(timeout=10)
        elif self._socket is not None:
            self._socket.close(linger=0)
        self._socket = None
        if self._wake is not None:
            for end in self._wake:
                end.close()
            self._wake = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._context is not None:
            self._context.term()
            self._context = None


class Sender:
    """The one thread using the XPUB socket: admits subscribers and sends the pop-ups."""

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        endpoint: str,
        outbox: Outbox,
        wake: socket.socket,
        enrolled: EnrolledKeys,
    ) -> None:
        # The socket is created on another thread but used only here until stop() joins
        # this thread; ZeroMQ allows handing a socket over with such a full barrier.
        self.sock = sock
        self.endpoint = endpoint
        self.outbox = outbox
        self.wake = wake
        self.enrolled = enrolled

    def run(self) -> None:
        """Serve until told to stop (None in the outbox), then close the socket."""
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.wake, zmq.POLLIN)
        try:
            while True:
                try:
                    for polled, _ in poller.poll():
                        if polled is self.sock:
                            self.admit()
                        else:
                            self._drain_wake()
                    # Wake-ups are drained before the queue: an event queued after this
                    # point leaves a wake-up behind, so it is never left waiting.
                    if not self.send_queued():
                        return
                except zmq.ContextTerminated:
                    return
                except Exception:
                    # A dead sender would silence every desktop until a restart.
                    log.exception("CTI publisher failed a round; going on")
                    time.sleep(0.1)
        finally:
            self.sock.close(linger=0)

    def _drain_wake(self) -> None:
        try:
            while self.wake.recv(4096):
                pass
        except BlockingIOError:
            pass

    def send_queued(self) -> bool:
        """Send everything queued; False once told to stop."""
        while True:
            try:
                item = self.outbox.get_nowait()
            except queue.Empty:
                return True
            if item is None:
                return False
            if isinstance(item, _Command):
                _rebind(self.sock, self.endpoint)
                continue
            for key in self.enrolled.enrollment.keys_of.get(item.clerk, ()):
                try:
                    self.sock.send_multipart((key, item.payload), flags=zmq.NOBLOCK)
                except zmq.ZMQError:
                    log.exception("CTI publisher could not send the event for %s", item.extension)

    def admit(self) -> None:
        """Subscribe each requesting connection to the topic of the key it authenticated with.

        In manual mode libzmq applies SUBSCRIBE to the connection whose request was read
        last. libzmq 4.3 keeps that connection in a queue of its own, which a message that
        is no request (only an XSUB peer sends one) puts out of step with the requests: the
        next requests would be applied to other connections. So after such a message no
        request is honoured until the socket has nothing more to read (then both queues
        are empty and in step again), and every connection is dropped so that the
        desktops whose requests were passed over reconnect and ask again.
        """
        out_of_step = None
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            data = frame.bytes
            user_id = _user_id(frame)
            if not data or data[0] not in (0, 1):
                out_of_step = user_id or "an unknown key"
                continue
            if data[0] == 0 or out_of_step is not None:
                continue  # cancelled requests change nothing: the bridge chose the topic
            key = user_id.encode() if user_id else b""
            if key not in self.enrolled.enrollment.clerk_of:
                # Withdrawn since the handshake; the drop of its connection is under way.
                continue
            self.sock.setsockopt(zmq.SUBSCRIBE, key)
        if out_of_step is not None:
            log.warning(
                "a desktop with key %s sent a message that is no subscription; dropping"
                " every connection so that none gets another's subscription",
                out_of_step,
            )
            _rebind(self.sock, self.endpoint)


def _user_id(frame: zmq.Frame) -> str | None:
    """The Z85 key the sender of a message authenticated with (ZAP's User-Id)."""
    try:
        value = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    return value if isinstance(value, str) and value else None


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

"""The clerk's desktop agent: enroll a CURVE key, subscribe to an extension, open the file."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import zmq

log = logging.getLogger(__name__)

CONFIG_NAME = "desk.json"


class DeskError(Exception):
    """The agent cannot run: not enrolled, or enrollment was refused."""


@dataclass(frozen=True)
class DeskConfig:
    """What an enrolled desktop keeps: its keypair, the bridge's key and endpoint."""

    endpoint: str
    server_public_key: str
    public_key: str
    secret_key: str
    desktop_id: str


def load_config(desk_dir: Path) -> DeskConfig:
    """The saved enrollment; DeskError if this desktop is not enrolled."""
    path = desk_dir / CONFIG_NAME
    try:
        data = json.loads(path.read_text())
        return DeskConfig(**data)
    except FileNotFoundError:
        raise DeskError(f"not enrolled ({path} missing): run `eakte desk enroll` first") from None
    except (ValueError, TypeError) as exc:
        raise DeskError(f"{path} is damaged ({exc}); enroll again") from None


def save_config(desk_dir: Path, config: DeskConfig) -> Path:
    """Write the enrollment, readable by the clerk only (it holds the secret key)."""
    desk_dir.mkdir(parents=True, exist_ok=True)
    path = desk_dir / CONFIG_NAME
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(config), handle, indent=2)
    os.replace(tmp, path)
    return path


def _call(
    method: str, server: str, path: str, token: str, expected: int, refused: str, **kw: Any
) -> httpx.Response:
    """One request to eakte's API; DeskError (with the problem's detail) unless `expected`."""
    try:
        response = httpx.request(
            method,
            server.rstrip("/") + path,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            **kw,
        )
    except httpx.HTTPError as exc:
        raise DeskError(f"cannot reach {server}: {exc}") from None
    if response.status_code != expected:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise DeskError(f"{refused} ({response.status_code}): {detail}")
    return response


def enroll(server: str, token: str, desk_dir: Path, name: str = "desktop") -> DeskConfig:
    """Create a keypair, register its public key with the bridge, save the enrollment."""
    public, secret = zmq.curve_keypair()
    response = _call(
        "POST",
        server,
        "/api/v1/cti/desktops",
        token,
        201,
        "enrollment refused",
        json={"public_key": public.decode(), "name": name},
    )
    body = response.json()
    config = DeskConfig(
        endpoint=body["endpoint"],
        server_public_key=body["server_public_key"],
        public_key=public.decode(),
        secret_key=secret.decode(),
        desktop_id=body["id"],
    )
    save_config(desk_dir, config)
    return config


def list_desktops(server: str, token: str) -> list[dict[str, Any]]:
    """The enrolled desktops the token may see (a clerk's own, every one for an admin)."""
    response = _call("GET", server, "/api/v1/cti/desktops", token, 200, "listing refused")
    desktops: list[dict[str, Any]] = response.json()
    return desktops


def withdraw(server: str, token: str, desktop_id: str, desk_dir: Path | None = None) -> None:
    """Withdraw an enrolled desktop; forget the local enrollment if it was this desktop's."""
    _call(
        "DELETE",
        server,
        f"/api/v1/cti/desktops/{quote(desktop_id, safe='')}",
        token,
        200,
        "withdrawal refused",
    )
    if desk_dir is None:
        return
    try:
        mine = load_config(desk_dir).desktop_id == desktop_id
    except DeskError:
        return
    if mine:
        # The keypair can no longer connect; without it `eakte desk` says so plainly.
        (desk_dir / CONFIG_NAME).unlink(missing_ok=True)


class DeskAgent:
    """A CURVE SUB socket receiving the pop-ups of the clerk who enrolled this desktop.

    The bridge sends a desktop the pop-ups of every extension its clerk answers (see
    `cti_bridge.publisher`); the agent shows those of `extension` only, so a clerk with
    two phones can run one agent per desk. ZeroMQ reconnects by itself when the bridge
    restarts (redoing the CURVE handshake with the same pinned server key, and asking
    for its pop-ups again); heartbeats notice a bridge that vanished without closing the
    connection, so the agent does not wait on a dead one.
    """

    def __init__(self, config: DeskConfig, extension: str) -> None:
        self.config = config
        self.extension = extension
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = self._context.socket(zmq.SUB)
        sock.curve_serverkey = config.server_public_key.encode()
        sock.curve_publickey = config.public_key.encode()
        sock.curve_secretkey = config.secret_key.encode()
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 200)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5_000)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 2_000)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6_000)
        # The bridge addresses each desktop by its public key. Asking for that topic is
        # what lets this socket's own filter pass the pop-ups; the bridge decides anyway.
        sock.setsockopt(zmq.SUBSCRIBE, config.public_key.encode())
        sock.connect(config.endpoint)
        self._socket = sock

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next pop-up for this extension, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not self._socket.poll(left_ms):
                return None
            frames = self._socket.recv_multipart()
            if len(frames) != 2:
                log.warning("ignored an event of %d frames", len(frames))
                continue
            try:
                event: dict[str, Any] = json.loads(frames[1])
            except ValueError:
                log.warning("ignored a malformed event")
                continue
            if not isinstance(event, dict) or event.get("extension") != self.extension:
                continue  # a call to another of the clerk's extensions
            return event

    def run(self, handle: Callable[[dict[str, Any]], None], stop: threading.Event) -> None:
        """Hand every pop-up to `handle` until `stop` is set."""
        while not stop.is_set():
            event = self.receive(0.5)
            if event is not None:
                handle(event)

    def close(self) -> None:
        """Close the socket."""
        self._socket.close(linger=0)
        self._context.term()


def describe(event: dict[str, Any]) -> str:
    """One line for the clerk: who calls, and the file to open."""
    files = event.get("files") or []
    # The file to open names its own contact: several people may share one number.
    contact = (files[0].get("contact") if files else None) or event.get("contact") or {}
    caller = event.get("caller") or "unterdrückt"
    who = f"{contact.get('name')} ({caller})" if contact else caller
    if files:
        first = files[0]
        return f"{who}: {first['reference']} {first['title']} {first['url']}"
    return f"{who}: keine Akte"

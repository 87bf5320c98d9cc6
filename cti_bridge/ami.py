"""The Asterisk Manager Interface adapter: ringing events become CallEvents.

The wire protocol is panoramisk's; this module adds what a long-running bridge needs:
mapping Asterisk's events to one CallEvent per call and extension, and reconnecting
with exponential backoff (panoramisk retries at a fixed interval).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk import Manager

from cti_bridge.events import CallEvent, CallState

log = logging.getLogger(__name__)

RINGING_STATES = {"4", "5"}  # Ring (the caller's side), Ringing (the called phone)
UNUSABLE_EXTENSIONS = {"", "s", "<unknown>", "i", "t"}
_SEEN_LIMIT = 10_000


def _ext(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if value.lower() in UNUSABLE_EXTENSIONS else value


def _dial_target(dial_string: str | None) -> str | None:
    # "PJSIP/201", "SIP/201@trunk" or just "201": the extension is the part after the tech.
    text = (dial_string or "").split("@", 1)[0]
    return _ext(text.rsplit("/", 1)[-1])


def call_event_from_ami(event: Mapping[str, Any]) -> CallEvent | None:
    """Map one AMI event to a ringing CallEvent, or None if it says nothing about ringing.

    - DialBegin: CallerIDNum calls DestExten (or the DialString's extension).
    - Newchannel in state Ring: CallerIDNum dialled Exten.
    - Newstate Ringing: the rung channel's own number (CallerIDNum, or Exten) is the
      extension, and ConnectedLineNum the caller.
    """
    name = str(event.get("Event", ""))
    call_id = str(event.get("Linkedid") or event.get("Uniqueid") or "")
    if not call_id:
        return None
    if name == "DialBegin":
        extension = (
            _ext(event.get("DestExten"))
            or _dial_target(event.get("DialString"))
            or _ext(event.get("DestCallerIDNum"))
        )
        caller = event.get("CallerIDNum")
    elif name == "Newchannel" and str(event.get("ChannelState")) in RINGING_STATES:
        extension, caller = _ext(event.get("Exten")), event.get("CallerIDNum")
    elif name == "Newstate" and str(event.get("ChannelState")) == "5":
        extension = _ext(event.get("CallerIDNum")) or _ext(event.get("Exten"))
        caller = event.get("ConnectedLineNum")
    else:
        return None
    if extension is None:
        return None
    return CallEvent(call_id, str(caller) if caller else None, extension, CallState.RINGING, "ami")


class AmiAdapter:
    """Follows an Asterisk's ringing events and hands each call once to `on_call`."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_call: Callable[[CallEvent], None],
        *,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._on_call = on_call
        self._initial = initial_backoff
        self._max = max_backoff
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.logins = 0
        self._manager = _BackoffManager(
            self,
            host=host,
            port=port,
            username=username,
            secret=secret,
            events="call",
            reconnect_timeout=initial_backoff,
            ping_delay=10,
            ping_interval=10,
            log=logging.getLogger("cti_bridge.ami.wire"),
        )
        for name in ("Newchannel", "Newstate", "DialBegin"):
            self._manager.register_event(name, self._on_event)

    def start(self) -> None:
        """Connect (and keep reconnecting) on the running event loop."""
        self._manager.loop = asyncio.get_running_loop()
        self._manager.connect()

    def stop(self) -> None:
        """Disconnect and stop reconnecting."""
        self._manager.stopping = True
        self._manager.close()

    def _on_event(self, _manager: object, message: Mapping[str, Any]) -> None:
        event = call_event_from_ami(message)
        if event is None:
            return
        key = (event.call_id, event.called_extension)
        if key in self._seen:  # the same call rings as Newchannel, DialBegin and Newstate
            return
        self._seen[key] = None
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        self._on_call(event)

    def backoff(self, failed: bool) -> float:
        """The next reconnect delay: doubled after each failure, reset after a login."""
        current = float(self._manager.reconnect_timeout)
        nxt = min(self._max, current * 2) if failed else self._initial
        self._manager.reconnect_timeout = nxt
        return nxt


class _BackoffManager(Manager):  # type: ignore[misc]  # panoramisk ships no type hints
    """panoramisk's Manager with exponential backoff and a clean stop."""

    def __init__(self, adapter: AmiAdapter, **config: Any) -> None:
        super().__init__(**config)
        self.adapter = adapter
        self.stopping = False
        # panoramisk casts the timeout to int; we want sub-second first retries.
        self.reconnect_timeout = config["reconnect_timeout"]
        self.on_login = self._logged_in

    def _logged_in(self, _manager: object) -> None:
        self.adapter.logins += 1
        self.adapter.backoff(failed=False)
        log.info("AMI logged in at %s:%s", self.config["host"], self.config["port"])

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.stopping:
            return None
        return super().connect(*args, **kwargs)

    def connection_made(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            delay = self.adapter.backoff(failed=True)
            log.warning(
                "AMI at %s:%s unreachable (%s); retrying in %.1f s",
                self.config["host"],
                self.config["port"],
                future.exception(),
                delay,
            )
        super().connection_made(future)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = bool(super().login(future))
        if not ok:
            log.error(
                "AMI login as %s refused; check the username and secret", self.config["username"]
            )
        return ok

    def connection_lost(self, exc: object) -> None:
        if self.stopping:
            return
        log.warning("AMI connection lost; reconnecting in %.1f s", self.reconnect_timeout)
        super().connection_lost(exc)

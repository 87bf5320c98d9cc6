"""Parsing and authenticating PBX webhooks: generic JSON and sipgate-style forms."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from urllib.parse import parse_qs

from pydantic import ValidationError

from cti_bridge.events import CallEvent, CallState
from cti_bridge.schemas import EXTENSION_PATTERN, WebhookCall
from eakte.contacts.phones import MIN_SUBSCRIBER_DIGITS
from eakte.errors import InvalidInput

SIGNATURE_HEADER = "X-Eakte-Signature"
MAX_BODY = 16 * 1024

_STATES = {
    "ringing": CallState.RINGING,
    "ring": CallState.RINGING,
    "incoming": CallState.RINGING,
    "newcall": CallState.RINGING,
    "answer": CallState.ANSWERED,
    "answered": CallState.ANSWERED,
    "hangup": CallState.HANGUP,
}


def sign(body: bytes, secret: str) -> str:
    """The signature header value for a body: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, header: str, secret: str) -> bool:
    """True if the header carries the body's HMAC-SHA256 under the shared secret."""
    presented = header.strip()
    if not presented.startswith("sha256="):
        presented = "sha256=" + presented
    return hmac.compare_digest(presented.lower(), sign(body, secret))


def _state(event: str) -> CallState:
    state = _STATES.get(event.strip().lower())
    if state is None:
        raise InvalidInput(
            f"unknown call event {event!r}; expected one of {', '.join(sorted(_STATES))}"
        )
    return state


def _extension(value: str) -> str:
    ext = value.strip()
    if ext.lower().startswith("sip:"):
        ext = ext[4:].split("@", 1)[0]
    if not re.fullmatch(EXTENSION_PATTERN, ext):
        raise InvalidInput(f"{value!r} is not an extension")
    return ext


def parse_json(body: bytes) -> CallEvent:
    """A generic webhook: {"event", "call_id", "from", "to"}."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not JSON") from None
    try:
        call = WebhookCall.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors())
        raise InvalidInput(f"the webhook lacks or mistypes: {fields}") from None
    return CallEvent(call.call_id, call.from_, _extension(call.to), _state(call.event))


def sipgate_caller(value: str | None) -> str | None:
    """sipgate's `from` as a dialable number: `4941011234567` becomes `+4941011234567`.

    sipgate.io's push API reports numbers in international format without the plus
    (`from=4941011234567`) and `anonymous` for withheld ones.
    Taken as it is, such a number would read as local and gain the town's area code.
    Short digit strings are left alone: they are internal extensions, not numbers.
    """
    if value is None:
        return None
    text = value.strip()
    international = text.isascii() and text.isdigit() and not text.startswith("0")
    if international and len(text) >= MIN_SUBSCRIBER_DIGITS:
        return "+" + text
    return value


def parse_form(body: bytes) -> CallEvent | None:
    """A sipgate-style form (event=newCall, from, to, callId, direction); None if outgoing."""
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form body cannot be parsed") from None

    def field(name: str, required: bool = True) -> str | None:
        values = fields.get(name)
        if not values:
            if required:
                raise InvalidInput(f"the form lacks the field {name!r}")
            return None
        if len(values[0]) > 200:
            raise InvalidInput(f"the field {name!r} is too long")
        return values[0]

    event = field("event") or ""
    direction = (field("direction", required=False) or "in").lower()
    call_id = field("callId") or ""
    if not call_id:
        raise InvalidInput("callId is empty")
    to = field("to") or ""
    caller = sipgate_caller(field("from", required=False))
    state = _state(event)
    if direction != "in":
        return None  # a clerk's own outgoing call pops nothing up
    return CallEvent(call_id, caller, _extension(to), state, "sipgate")

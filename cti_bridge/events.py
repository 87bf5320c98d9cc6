"""What every telephony adapter produces: a call event in the PBX-neutral form."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CallState(StrEnum):
    """The states of a call the adapters report; only `ringing` pops up a file."""

    RINGING = "ringing"
    ANSWERED = "answered"
    HANGUP = "hangup"


@dataclass(frozen=True)
class CallEvent:
    """A call event: who calls (raw, as the PBX reports it) which extension."""

    call_id: str
    caller: str | None
    called_extension: str
    state: CallState = CallState.RINGING
    source: str = "webhook"

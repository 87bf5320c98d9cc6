"""The AMI adapter against an in-test server speaking Asterisk's manager wire format."""

from __future__ import annotations

import asyncio

from cti_bridge.ami import AmiAdapter, call_event_from_ami
from cti_bridge.events import CallEvent, CallState

BANNER = b"Asterisk Call Manager/5.0.1\r\n"


def _message(**fields: str) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in fields.items()) + b"\r\n"


NEWCHANNEL = _message(
    Event="Newchannel", Privilege="call,all", Channel="PJSIP/trunk-00000001", ChannelState="4",
    ChannelStateDesc="Ring", CallerIDNum="04101123456", CallerIDName="<unknown>",
    ConnectedLineNum="<unknown>", Exten="201", Context="from-trunk",
    Uniqueid="1700000000.1", Linkedid="1700000000.1",
)  # fmt: skip
NEWSTATE = _message(
    Event="Newstate", Privilege="call,all", Channel="PJSIP/202-00000003", ChannelState="5",
    ChannelStateDesc="Ringing", CallerIDNum="202", ConnectedLineNum="+494101654321",
    Exten="202", Context="from-internal", Uniqueid="1700000001.3", Linkedid="1700000001.2",
)  # fmt: skip
DIALBEGIN = _message(
    Event="DialBegin", Privilege="call,all", Channel="PJSIP/trunk-00000002", ChannelState="4",
    CallerIDNum="+494101654321", Exten="202", Uniqueid="1700000001.2",
    Linkedid="1700000001.2", DestChannel="PJSIP/202-00000003", DestCallerIDNum="202",
    DestExten="202", DialString="202",
)  # fmt: skip
HANGUP = _message(Event="Hangup", Channel="PJSIP/202-00000003", Linkedid="1700000001.2")


class FakeAsterisk:
    """Speaks AMI: banner, Login -> Success (or Error), Ping -> Pong, then scripted events."""

    def __init__(self, secret: str, sessions: list[list[bytes]]) -> None:
        self.secret = secret
        self.sessions = sessions  # events per connection; the first session drops afterwards
        self.connections = 0
        self.logins: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One manager connection."""
        index = self.connections
        self.connections += 1
        writer.write(BANNER)
        await writer.drain()
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                fields = dict(
                    line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line
                )
                action, action_id = fields.get("Action", "").lower(), fields.get("ActionID", "")
                if action == "login":
                    ok = fields.get("Secret") == self.secret
                    self.logins.append(fields.get("Username", ""))
                    writer.write(
                        _message(Response="Success", ActionID=action_id,
                                 Message="Authentication accepted")
                        if ok
                        else _message(Response="Error", ActionID=action_id,
                                      Message="Authentication failed")
                    )  # fmt: skip
                    await writer.drain()
                    if not ok:
                        break
                    for event in self.sessions[min(index, len(self.sessions) - 1)]:
                        writer.write(event)
                        await writer.drain()
                        await asyncio.sleep(0.01)
                    if index == 0:
                        break  # the first connection drops, as when Asterisk restarts
                elif action == "ping":
                    writer.write(_message(Response="Success", ActionID=action_id, Ping="Pong"))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _run_adapter(server: FakeAsterisk, want: int, timeout: float) -> list[CallEvent]:
    calls: list[CallEvent] = []
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    adapter = AmiAdapter(
        "127.0.0.1", port, "eakte", server.secret, calls.append, initial_backoff=0.1
    )
    adapter.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(calls) < want and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        adapter.stop()
        listener.close()
        await listener.wait_closed()
    return calls


def test_ami_adapter_follows_ringing_events_and_reconnects_after_a_drop() -> None:
    server = FakeAsterisk("s3cret", [[NEWCHANNEL], [NEWSTATE, DIALBEGIN, HANGUP]])
    calls = asyncio.run(_run_adapter(server, want=2, timeout=10))
    assert server.connections >= 2 and server.logins[:2] == ["eakte", "eakte"]
    assert calls == [
        CallEvent("1700000000.1", "04101123456", "201", CallState.RINGING, "ami"),
        # Newstate and DialBegin of one call and extension pop up once.
        CallEvent("1700000001.2", "+494101654321", "202", CallState.RINGING, "ami"),
    ]


def test_ami_adapter_with_a_wrong_secret_publishes_nothing() -> None:
    server = FakeAsterisk("right", [[NEWCHANNEL]])

    async def run() -> list[CallEvent]:
        calls: list[CallEvent] = []
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        adapter = AmiAdapter("127.0.0.1", port, "eakte", "wrong", calls.append)
        adapter.start()
        await asyncio.sleep(0.5)
        adapter.stop()
        listener.close()
        await listener.wait_closed()
        return calls

    assert asyncio.run(run()) == []
    assert server.logins == ["eakte"]


def test_ami_events_map_to_call_events() -> None:
    dial_string = {
        "Event": "DialBegin",
        "Linkedid": "1",
        "CallerIDNum": "anonymous",
        "DestExten": "s",
        "DialString": "PJSIP/305@office",
    }
    assert call_event_from_ami(dial_string) == CallEvent("1", "anonymous", "305", source="ami")
    assert call_event_from_ami({"Event": "Newstate", "ChannelState": "6", "Linkedid": "1"}) is None
    assert call_event_from_ami({"Event": "Newchannel", "ChannelState": "4", "Exten": "s",
                                "Linkedid": "1"}) is None  # fmt: skip
    assert call_event_from_ami({"Event": "DialBegin", "DestExten": "201"}) is None

"""A desktop receives the pop-ups of its own clerk's extensions, whatever it subscribes to."""

from __future__ import annotations

import json
import queue
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from zmq.auth.thread import ThreadAuthenticator

from cti_bridge import keys
from cti_bridge.desk import DeskConfig
from cti_bridge.publisher import AddressedPop, EnrolledKeys, Enrollment, Outbox, Sender
from tests.cti_bridge.conftest import CtiApp
from tests.support.server import free_port


def _event(call_id: str, caller: str, extension: str) -> dict[str, str]:
    return {"event": "ringing", "call_id": call_id, "from": caller, "to": extension}


def _sub(
    context: zmq.Context[zmq.Socket[bytes]], config: DeskConfig, topic: bytes
) -> zmq.Socket[bytes]:
    """A plain SUB socket with an enrolled desktop's keys, asking for `topic`."""
    sock = context.socket(zmq.SUB)
    sock.curve_serverkey = config.server_public_key.encode()
    sock.curve_publickey = config.public_key.encode()
    sock.curve_secretkey = config.secret_key.encode()
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.connect(config.endpoint)
    return sock


def _call_ids(sock: zmq.Socket[bytes], quiet: float = 1.0) -> list[str]:
    """The call ids of everything the socket receives until it has been quiet a while."""
    ids = []
    while sock.poll(int(quiet * 1000)):
        frames = sock.recv_multipart()
        ids.append(str(json.loads(frames[-1]).get("call_id")))
    return ids


def test_desktop_of_one_clerk_never_receives_another_clerks_pop_ups(cti: CtiApp) -> None:
    anna = cti.call_data()
    bert = cti.call_data()
    bert_agent = cti.agent(cti.enroll(bert.clerk_sub, [bert.unit.code]), bert.extension)
    anna_pc = cti.enroll(anna.clerk_sub, [anna.unit.code])
    bert_pc = cti.enroll(bert.clerk_sub, [bert.unit.code])
    # Anna's enrolled keypair, asking for everything, for Bert's extension (the old
    # topic) and for the topic of Bert's desktop (its public key).
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    asks = {
        "everything": _sub(context, anna_pc, b""),
        "bert's extension": _sub(context, anna_pc, bert.extension.encode()),
        "bert's desktop": _sub(context, anna_pc, bert_pc.public_key.encode()),
    }
    try:
        time.sleep(1.0)  # every chance to connect and subscribe
        for i in range(3):
            r = cti.webhook(_event(f"bert-{i}", bert.e164, bert.extension))
            assert r.status_code == 202, r.text
        received = []
        while (event := bert_agent.receive(1.0)) is not None:
            received.append(event["call_id"])
        assert received == ["bert-0", "bert-1", "bert-2"]
        for asked, sock in asks.items():
            assert _call_ids(sock, quiet=0.3) == [], f"anna's desktop asking for {asked}"

        # The same connection does get Anna's own pop-ups: it was listening all along.
        assert cti.webhook(_event("anna-1", anna.e164, anna.extension)).status_code == 202
        assert _call_ids(asks["everything"]) == ["anna-1"]
    finally:
        for sock in asks.values():
            sock.close()
        context.term()


def test_moving_an_extension_moves_its_pop_ups_to_the_new_clerks_desktop(cti: CtiApp) -> None:
    call = cti.call_data()
    old = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    successor = f"{call.clerk_sub}-successor"
    cti.map_extension(f"{call.extension}9", successor, [call.unit.code])  # to enroll
    new = cti.agent(cti.enroll(successor, [call.unit.code]), call.extension)

    cti.map_extension(call.extension, successor, [call.unit.code])
    assert cti.webhook(_event("moved", call.e164, call.extension)).status_code == 202
    event = new.receive(2.0)
    assert event is not None and event["call_id"] == "moved"
    assert old.receive(1.0) is None


def test_clerk_without_an_extension_cannot_enroll_and_a_key_is_enrolled_once(
    cti: CtiApp,
) -> None:
    public, _ = zmq.curve_keypair()
    body = {"public_key": public.decode(), "name": "pc"}
    r = cti.client.post(
        "/api/v1/cti/desktops", json=body, headers=cti.auth(["clerk"], ["10"], sub="nobody")
    )
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert "no phone extension" in r.json()["detail"]
    assert keys.enrolled_desktops(cti.settings.cti_key_dir) == []

    call = cti.call_data()
    clerk = cti.auth(["clerk"], [call.unit.code], sub=call.clerk_sub)
    assert cti.client.post("/api/v1/cti/desktops", json=body, headers=clerk).status_code == 201
    cti.map_extension(f"{call.extension}7", "someone-else", [call.unit.code])
    other = cti.auth(["clerk"], [call.unit.code], sub="someone-else")
    r = cti.client.post("/api/v1/cti/desktops", json=body, headers=other)
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/conflict"
    assert [d.enrolled_by for d in keys.enrolled_desktops(cti.settings.cti_key_dir)] == [
        call.clerk_sub
    ]


@pytest.fixture
def bare_sender(tmp_path: Path) -> Iterator[tuple[Sender, Outbox, dict[str, DeskConfig]]]:
    """The publisher's sender on a real XPUB socket, driven step by step by the test.

    The running publisher answers each subscription request as it arrives; driving its
    sender by hand lets a test line several requests up in one batch, as they can be
    when many desktops reconnect at once.
    """
    public, secret = keys.server_keys(tmp_path)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    configs = {}
    for clerk in ("anna", "bert"):
        desk_public, desk_secret = zmq.curve_keypair()
        keys.write_desktop_key(tmp_path, f"{clerk}-pc", desk_public, clerk)
        configs[clerk] = DeskConfig(
            endpoint, public.decode(), desk_public.decode(), desk_secret.decode(), clerk
        )
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = ThreadAuthenticator(context)
    auth.start()
    enrolled = EnrolledKeys()
    enrolled.enrollment = Enrollment.of(keys.enrolled_desktops(tmp_path))
    auth.configure_curve_callback(domain="*", credentials_provider=enrolled)
    sock = context.socket(zmq.XPUB)
    sock.curve_server, sock.curve_publickey, sock.curve_secretkey = True, public, secret
    sock.setsockopt(zmq.XPUB_MANUAL, 1)
    sock.bind(endpoint)
    outbox: Outbox = queue.SimpleQueue()
    reader, writer = socket.socketpair()
    try:
        yield Sender(sock, endpoint, outbox, reader, enrolled), outbox, configs
    finally:
        sock.close(linger=0)
        reader.close()
        writer.close()
        auth.stop()
        context.term()


def test_a_message_that_is_no_subscription_cannot_shift_subscriptions_to_others(
    bare_sender: tuple[Sender, Outbox, dict[str, DeskConfig]],
) -> None:
    sender, outbox, configs = bare_sender
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()

    def xsub(config: DeskConfig) -> zmq.Socket[bytes]:
        sock = context.socket(zmq.XSUB)  # unlike SUB, it may send anything upstream
        sock.curve_serverkey = config.server_public_key.encode()
        sock.curve_publickey = config.public_key.encode()
        sock.curve_secretkey = config.secret_key.encode()
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(config.endpoint)
        return sock

    # libzmq 4.3 pairs manual subscription requests with connections through a queue
    # that a message which is no request puts out of step. Lined up as stray message
    # (Anna), Bert's request, Anna's request, Bert's request would be granted to Anna's
    # second connection.
    stray = xsub(configs["anna"])
    time.sleep(0.3)
    stray.send(b"\x02not a subscription")
    time.sleep(0.3)
    bert = _sub(context, configs["bert"], b"")  # takes whatever the bridge grants it
    time.sleep(0.3)
    anna = xsub(configs["anna"])
    time.sleep(0.3)
    anna.send(b"\x01")
    time.sleep(0.5)
    sockets = (stray, bert, anna)
    try:
        sender.admit()  # one batch: the stray message, then both requests
        # The connections were dropped; they come back and ask again. A socket resends
        # its subscriptions when its own thread next uses it, as an agent's loop does.
        for _ in range(20):
            for sock in sockets:
                sock.poll(20)
            sender.admit()
        for clerk in ("anna", "bert"):
            payload = json.dumps({"call_id": f"for-{clerk}"}).encode()
            outbox.put(AddressedPop(clerk, "201", payload))
        assert sender.send_queued()
        assert _call_ids(anna) == ["for-anna"]
        assert _call_ids(bert, quiet=0.3) == ["for-bert"]
        assert _call_ids(stray, quiet=0.3) == []
    finally:
        for sock in sockets:
            sock.close()
        context.term()

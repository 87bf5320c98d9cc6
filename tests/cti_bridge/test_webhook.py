"""Webhooks to pop-ups: authentication, lookup, publish after commit, ZeroMQ CURVE and SSE."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from cti_bridge import api, webhook
from cti_bridge.desk import DeskAgent, DeskConfig
from cti_bridge.webhook import SIGNATURE_HEADER, sign
from eakte.auth.tokens import issue_token
from tests import factories
from tests.cti_bridge.conftest import LOCAL_AREA_CODE, WEBHOOK_SECRET, CtiApp, cti_process
from tests.support.server import free_port


def _event(call_id: str, caller: str, extension: str) -> dict[str, str]:
    return {"event": "ringing", "call_id": call_id, "from": caller, "to": extension}


def test_signed_webhook_pops_the_callers_file_at_the_enrolled_desktop(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)

    started = time.monotonic()
    r = cti.webhook(_event("c-1", call.e164, call.extension))
    assert r.status_code == 202, r.text
    assert r.json()["published"] and r.json()["contact_found"]
    event = agent.receive(1.0)
    assert event is not None and time.monotonic() - started < 1.0
    assert event["call_id"] == "c-1" and event["extension"] == call.extension
    assert event["caller"] == call.e164 and not event["withheld"]
    assert event["contact"] == {"id": call.contact_id, "name": "Erika Mustermann"}
    assert [f["id"] for f in event["files"]] == [call.file["id"]]
    assert event["files"][0]["reference"] == call.file["reference"]
    assert event["files"][0]["url"] == f"http://eakte.test/files/{call.file['id']}"


def test_national_international_and_local_notation_find_the_same_contact(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    notations = [
        f"0{LOCAL_AREA_CODE} {call.local_number}",  # national
        f"+49 {LOCAL_AREA_CODE} {call.local_number}",  # international
        f"0049{LOCAL_AREA_CODE}{call.local_number}",  # international, dialled
        call.local_number,  # local: the town's area code is implied
    ]
    for i, caller in enumerate(notations):
        assert cti.webhook(_event(f"n-{i}", caller, call.extension)).status_code == 202
        event = agent.receive(2.0)
        assert event is not None, caller
        assert event["caller"] == call.e164, caller
        assert event["contact"]["id"] == call.contact_id, caller


def test_withheld_and_unknown_callers_pop_up_without_a_contact(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    for i, caller in enumerate(["anonymous", "unknown", "", "Withheld"]):
        assert cti.webhook(_event(f"w-{i}", caller, call.extension)).status_code == 202
        event = agent.receive(2.0)
        assert event is not None
        assert event["withheld"] and event["caller"] is None
        assert event["contact"] is None and event["files"] == []
    # A valid number that nobody has: no contact, but not withheld.
    assert cti.webhook(_event("u-1", "+49 30 90123456", call.extension)).status_code == 202
    event = agent.receive(2.0)
    assert event is not None
    assert event["caller"] == "+493090123456" and not event["withheld"]
    assert event["contact"] is None


def test_files_of_other_org_units_are_not_offered(cti: CtiApp) -> None:
    call = cti.call_data()
    other = factories.org_unit(cti)
    plan = factories.plan_item(cti)
    factories.file(cti, other, plan["code"], title="Fremde Akte", contact_ids=[call.contact_id])
    newer = factories.file(cti, call.unit, plan["code"], contact_ids=[call.contact_id])
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    assert cti.webhook(_event("v-1", call.e164, call.extension)).status_code == 202
    event = agent.receive(2.0)
    assert event is not None
    # Most recently active first; the other unit's file stays invisible.
    assert [f["id"] for f in event["files"]] == [newer["id"], call.file["id"]]


def test_wrong_signature_is_refused_and_publishes_nothing(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    r = cti.webhook(_event("x-1", call.e164, call.extension), secret="wrong-secret")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/unauthenticated"
    unsigned = cti.client.post("/cti/webhook", json=_event("x-2", call.e164, call.extension))
    assert unsigned.status_code == 401
    clerk = cti.client.post(
        "/cti/webhook",
        json=_event("x-3", call.e164, call.extension),
        headers=cti.auth(["clerk"], [call.unit.code]),
    )
    assert clerk.status_code == 403
    assert agent.receive(0.5) is None


def test_service_bearer_token_is_accepted(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    r = cti.client.post(
        "/cti/webhook",
        json=_event("b-1", call.e164, call.extension),
        headers=cti.auth(["service"], [], sub="pbx"),
    )
    assert r.status_code == 202, r.text
    event = agent.receive(2.0)
    assert event is not None and event["call_id"] == "b-1"


def test_subscribers_without_enrolled_keys_receive_nothing(cti: CtiApp) -> None:
    call = cti.call_data()
    enrolled = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    # A desktop with a keypair the bridge never saw, and a socket without CURVE at all.
    public, secret = zmq.curve_keypair()
    server_key = cti.enroll(call.clerk_sub, [call.unit.code]).server_public_key
    stranger = DeskAgent(
        DeskConfig(
            cti.settings.cti_pub_endpoint, server_key, public.decode(), secret.decode(), "x"
        ),
        call.extension,
    )
    cti.agents.append(stranger)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    plain = context.socket(zmq.SUB)
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    plain.setsockopt(zmq.LINGER, 0)
    plain.connect(cti.settings.cti_pub_endpoint)
    try:
        time.sleep(0.5)  # give both every chance to join
        for i in range(5):
            assert cti.webhook(_event(f"s-{i}", call.e164, call.extension)).status_code == 202
        assert enrolled.receive(1.0) is not None
        assert stranger.receive(0.5) is None
        assert not plain.poll(500)
    finally:
        plain.close()
        context.term()


def test_bad_input_is_a_problem_and_publishes_nothing(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    bad = [
        {"event": "ringing", "call_id": "b"},  # no "to"
        {"event": "exploded", "call_id": "b", "from": "1", "to": call.extension},
        {"event": "ringing", "call_id": "b", "from": "1", "to": "<script>"},
    ]
    for body in bad:
        r = cti.webhook(body)
        assert r.status_code == 422, body
        assert r.json()["type"] == "/problems/invalid-input"
    raw = b"not json"
    r = cti.client.post(
        "/cti/webhook",
        content=raw,
        headers={
            "Content-Type": "application/json",
            "X-Eakte-Signature": sign(raw, "pbx-shared-secret-0123456789"),
        },
    )
    assert r.status_code == 422
    assert agent.receive(0.5) is None


def test_sipgate_form_webhook_pops_up_and_outgoing_calls_do_not(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)

    def post(form: str) -> int:
        raw = form.encode()
        r = cti.client.post(
            "/cti/webhook",
            content=raw,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Eakte-Signature": sign(raw, "pbx-shared-secret-0123456789"),
            },
        )
        return int(r.status_code)

    caller = f"49{LOCAL_AREA_CODE}{call.local_number}"  # sipgate sends numbers without "+"
    assert post(f"event=newCall&direction=out&from={caller}&to={call.extension}&callId=o1") == 202
    assert agent.receive(0.5) is None
    # As sipgate posts it (from=4941011234567), and with the plus some proxies add.
    for call_id, sent in (("s1", caller), ("s2", f"%2B{caller}")):
        form = f"event=newCall&direction=in&from={sent}&to={call.extension}&callId={call_id}"
        assert post(form) == 202
        event = agent.receive(2.0)
        assert event is not None and event["call_id"] == call_id
        assert event["caller"] == call.e164, sent
        assert event["contact"]["id"] == call.contact_id
    assert post(f"event=newCall&direction=in&from=anonymous&to={call.extension}&callId=s3") == 202
    event = agent.receive(2.0)
    assert event is not None and event["withheld"] and event["contact"] is None


def test_internal_callers_are_no_outside_numbers_and_tel_uris_are_read(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    for i, internal in enumerate(["201", "**21", "sip:2042@pbx.local"]):
        assert cti.webhook(_event(f"i-{i}", internal, call.extension)).status_code == 202
        event = agent.receive(2.0)
        assert event is not None, internal
        # Not +494101201: a colleague's extension is nobody's number in town.
        assert event["caller"] is None and event["contact"] is None, internal
    tel = f"tel:+49-{LOCAL_AREA_CODE}-{call.local_number};phone-context=+49"
    assert cti.webhook(_event("t-1", tel, call.extension)).status_code == 202
    event = agent.receive(2.0)
    assert event is not None
    assert event["caller"] == call.e164
    assert event["contact"]["id"] == call.contact_id


def test_contacts_sharing_a_number_each_keep_their_files_and_are_each_audited(
    cti: CtiApp,
) -> None:
    call = cti.call_data()  # Erika Mustermann and her file
    r = cti.client.post(
        "/api/v1/contacts",
        json={"name": "Max Mustermann", "phones": [{"number": call.e164}]},
        headers=call.unit.clerk,
    )
    assert r.status_code == 201, r.text
    max_id = r.json()["id"]
    plan = factories.plan_item(cti)
    max_file = factories.file(cti, call.unit, plan["code"], contact_ids=[max_id])
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)

    call_id = f"shared-{uuid.uuid4().hex[:8]}"
    r = cti.webhook(_event(call_id, call.e164, call.extension))
    assert r.status_code == 202 and r.json()["files"] == 2
    event = agent.receive(2.0)
    assert event is not None
    owners = {f["id"]: f["contact"] for f in event["files"]}
    assert owners == {
        max_file["id"]: {"id": max_id, "name": "Max Mustermann"},
        call.file["id"]: {"id": call.contact_id, "name": "Erika Mustermann"},
    }
    # The caller named is the contact of the first (most recently active) file.
    assert event["contact"] == event["files"][0]["contact"]

    admin = cti.auth(["admin"], [])
    for contact_id, file_id in ((call.contact_id, call.file["id"]), (max_id, max_file["id"])):
        r = cti.client.get(
            "/api/v1/audit",
            params={"object_id": contact_id, "action": "cti.call_popped"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        details = [e["details"] for e in r.json() if e["details"]["call_id"] == call_id]
        assert [d["files"] for d in details] == [[file_id]], contact_id


def test_chunked_call_event_without_a_length_is_read(cti: CtiApp) -> None:
    call = cti.call_data()
    agent = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    raw = json.dumps(_event("chunked", call.e164, call.extension)).encode()

    def pieces() -> Iterator[bytes]:
        yield raw[:20]
        yield raw[20:]

    r = cti.client.post(
        "/cti/webhook",
        content=pieces(),  # sent chunked, with no Content-Length
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, WEBHOOK_SECRET)},
    )
    assert r.status_code == 202, r.text
    event = agent.receive(2.0)
    assert event is not None and event["call_id"] == "chunked"

    big = b" " * webhook.MAX_BODY + raw
    r = cti.client.post(
        "/cti/webhook",
        content=iter([big[: len(big) // 2], big[len(big) // 2 :]]),
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(big, WEBHOOK_SECRET)},
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(4096)
        assert piece, "the connection closed before a response"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers["content-length"]):
        piece = sock.recv(4096)
        assert piece, "the connection closed within the response"
        body += piece
    return int(status_line.split()[1]), headers, body


@pytest.mark.slow
def test_oversized_chunked_body_is_refused_without_waiting_for_its_end(
    cti: CtiApp, tmp_path: Path
) -> None:
    with cti_process(cti, tmp_path, free_port(), free_port()) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /cti/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            piece = b"x" * 1024
            for _ in range(webhook.MAX_BODY // len(piece) + 2):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            # The body never ends: a bridge reading it whole would never answer (the
            # socket's timeout fails the test), one reading it in pieces answers now.
            status, headers, body = _read_response(sock)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["type"] == "/problems/payload-too-large"


def test_pop_up_is_audited(cti: CtiApp) -> None:
    call = cti.call_data()
    call_id = f"a-{uuid.uuid4().hex[:8]}"
    assert cti.webhook(_event(call_id, call.e164, call.extension)).status_code == 202
    r = cti.client.get(
        "/api/v1/audit",
        params={"object_id": call.contact_id, "action": "cti.call_popped"},
        headers=cti.auth(["admin"], []),
    )
    assert r.status_code == 200, r.text
    details = [e["details"] for e in r.json()]
    assert any(d["call_id"] == call_id and d["clerk"] == call.clerk_sub for d in details)


def test_sse_stream_delivers_the_signed_in_clerks_calls(cti: CtiApp) -> None:
    call = cti.call_data()
    headers = cti.auth(["clerk"], [call.unit.code], sub=call.clerk_sub)
    with cti.client.stream("GET", "/cti/events", headers=headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        assert cti.webhook(_event("sse-1", call.e164, call.extension)).status_code == 202
        data = None
        for line in lines:
            if line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                break
        assert data is not None and data["call_id"] == "sse-1"
        assert data["files"][0]["id"] == call.file["id"]


def _read_until_closed(lines: Iterator[str], limit: int = 60) -> list[str]:
    """The lines of an SSE stream until the bridge ends it; fails if it goes on and on."""
    seen = []
    for line in lines:
        seen.append(line)
        assert len(seen) < limit, "the stream was not ended"
    return seen


@pytest.fixture
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep-alives (and the checks made with them) every 0.2 s instead of 15 s."""
    monkeypatch.setattr(api, "SSE_KEEPALIVE_SECONDS", 0.2)


@pytest.mark.usefixtures("quick_checks")
def test_sse_stream_ends_once_the_extension_is_moved_to_another_clerk(cti: CtiApp) -> None:
    call = cti.call_data()
    headers = cti.auth(["clerk"], [call.unit.code], sub=call.clerk_sub)
    with cti.client.stream("GET", "/cti/events", headers=headers) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        # Several checks pass while the clerk answers the extension.
        keep_alives = 0
        while keep_alives < 3:
            keep_alives += next(lines) == ": keep-alive"
        assert cti.webhook(_event("before-move", call.e164, call.extension)).status_code == 202
        assert any("before-move" in line for line in lines if line.startswith("data: "))

        cti.map_extension(call.extension, f"{call.clerk_sub}-successor", [call.unit.code])
        assert cti.webhook(_event("after-move", call.e164, call.extension)).status_code == 202
        rest = _read_until_closed(lines)
    assert not any("after-move" in line for line in rest)


@pytest.mark.usefixtures("quick_checks")
def test_sse_stream_ends_when_the_token_expires(cti: CtiApp) -> None:
    call = cti.call_data()
    token = issue_token(cti.settings, call.clerk_sub, ["clerk"], [call.unit.code], ttl_seconds=2)
    with cti.client.stream(
        "GET", "/cti/events", headers={"Authorization": f"Bearer {token}"}
    ) as stream:
        assert stream.status_code == 200
        started = time.monotonic()
        lines = _read_until_closed(stream.iter_lines())
    assert lines.count(": keep-alive") >= 3  # it ran while the token was valid
    assert time.monotonic() - started < 10
    r = cti.client.get("/cti/events", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_sse_needs_a_signed_in_clerk_with_an_extension(cti: CtiApp) -> None:
    assert cti.client.get("/cti/events").status_code == 401
    r = cti.client.get("/cti/events", headers=cti.auth(["clerk"], ["X"], sub="nobody"))
    assert r.status_code == 404


def test_extension_mapping_is_for_admins_and_validated(cti: CtiApp) -> None:
    clerk = cti.auth(["clerk"], ["10"])
    r = cti.client.put(
        "/api/v1/cti/extensions/201", json={"subject": "a", "units": ["10"]}, headers=clerk
    )
    assert r.status_code == 403
    admin = cti.auth(["admin"], [])
    r = cti.client.put(
        "/api/v1/cti/extensions/2%2001", json={"subject": "a", "units": ["10"]}, headers=admin
    )
    assert r.status_code == 422
    r = cti.client.put(
        "/api/v1/cti/extensions/777", json={"subject": "a", "units": []}, headers=admin
    )
    assert r.status_code == 422
    assert (
        cti.client.delete("/api/v1/cti/extensions/nothing-here", headers=admin).status_code == 404
    )


def test_enrollment_is_for_clerks_with_a_valid_key(cti: CtiApp) -> None:
    public, _ = zmq.curve_keypair()
    body = {"public_key": public.decode()}
    r = cti.client.post("/api/v1/cti/desktops", json=body, headers=cti.auth(["archivist"], []))
    assert r.status_code == 403
    r = cti.client.post(
        "/api/v1/cti/desktops", json={"public_key": "~" * 40}, headers=cti.auth(["clerk"], [])
    )
    assert r.status_code == 422
    keys_dir = cti.settings.cti_key_dir / "desktops"
    assert not list(keys_dir.glob("*.key"))

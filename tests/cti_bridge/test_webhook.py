"""Webhooks to pop-ups: authentication, lookup, publish after commit, ZeroMQ CURVE and SSE."""

from __future__ import annotations

import json
import time
import uuid

import zmq

from cti_bridge.desk import DeskAgent, DeskConfig
from tests import factories
from tests.cti_bridge.conftest import LOCAL_AREA_CODE, CtiApp


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
    from cti_bridge.webhook import sign

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
    from cti_bridge.webhook import sign

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
        return r.status_code

    caller = f"49{LOCAL_AREA_CODE}{call.local_number}"  # sipgate sends numbers without "+"
    assert post(f"event=newCall&direction=out&from={caller}&to={call.extension}&callId=o1") == 202
    assert agent.receive(0.5) is None
    assert post(f"event=newCall&direction=in&from=%2B{caller}&to={call.extension}&callId=s1") == 202
    event = agent.receive(2.0)
    assert event is not None and event["call_id"] == "s1"
    assert event["contact"]["id"] == call.contact_id


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

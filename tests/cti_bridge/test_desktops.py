"""Enrolled desktops: listing, withdrawal (API, CLI, by hand), and cutting off connections."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
import zmq
from typer.testing import CliRunner

from cti_bridge import keys
from cti_bridge.bridge import KEY_RELOAD_SECONDS
from cti_bridge.desk import CONFIG_NAME, DeskAgent, DeskConfig
from eakte.cli import app as eakte_cli
from tests.cti_bridge.conftest import (
    CtiApp,
    cti_process,
    wait_until_subscribed,
)
from tests.support.server import free_port


def _event(call_id: str, caller: str, extension: str) -> dict[str, str]:
    return {"event": "ringing", "call_id": call_id, "from": caller, "to": extension}


def _answering(cti: CtiApp, *subjects: str) -> None:
    """Map a fresh extension to each clerk: only clerks who answer one may enroll."""
    for subject in subjects:
        cti.map_extension(str(random.randint(100_000, 999_999)), subject, ["10"])


def _received(agent: DeskAgent, call_id: str, timeout: float = 2.0) -> bool:
    """True if the agent gets the pop-up of `call_id` (skipping leftover probes)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = agent.receive(left)
        if event is None:
            return False
        if event.get("call_id") == call_id:
            return True
    return False


def test_withdrawn_desktop_stops_receiving_while_another_goes_on(cti: CtiApp) -> None:
    call = cti.call_data()
    clerk = cti.auth(["clerk"], [call.unit.code], sub=call.clerk_sub)
    office = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    laptop_config = cti.enroll(call.clerk_sub, [call.unit.code])
    laptop = cti.agent(laptop_config, call.extension)
    assert cti.webhook(_event("before", call.e164, call.extension)).status_code == 202
    assert _received(office, "before") and _received(laptop, "before")

    r = cti.client.delete(f"/api/v1/cti/desktops/{laptop_config.desktop_id}", headers=clerk)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == laptop_config.desktop_id
    assert r.json()["enrolled_by"] == call.clerk_sub
    assert not (cti.settings.cti_key_dir / "desktops" / f"{laptop_config.desktop_id}.key").exists()

    # The remaining desktop reconnects by itself; the laptop, still connected until the
    # withdrawal, is refused from then on.
    wait_until_subscribed(cti.bridge, office)
    for i in range(3):
        assert cti.webhook(_event(f"after-{i}", call.e164, call.extension)).status_code == 202
        assert _received(office, f"after-{i}")
    assert laptop.receive(1.0) is None


def test_key_file_removed_by_hand_cuts_off_the_connected_desktop(cti: CtiApp) -> None:
    # As when another process sharing the key directory withdraws it: the bridge's
    # directory poll notices, not a request of this process.
    call = cti.call_data()
    office = cti.agent(cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    laptop_config = cti.enroll(call.clerk_sub, [call.unit.code])
    laptop = cti.agent(laptop_config, call.extension)
    assert keys.remove_desktop_key(cti.settings.cti_key_dir, laptop_config.desktop_id)

    probe = json.dumps({"probe": "cut", "extension": call.extension}).encode()
    deadline = time.monotonic() + 10
    silent = 0
    while silent < 5:  # a second without anything arriving at the laptop
        assert time.monotonic() < deadline, "the withdrawn desktop kept receiving"
        cti.bridge.publisher.publish(call.extension, call.clerk_sub, probe)
        silent = silent + 1 if laptop.receive(0.2) is None else 0
    wait_until_subscribed(cti.bridge, office)
    assert cti.webhook(_event("by-hand", call.e164, call.extension)).status_code == 202
    assert _received(office, "by-hand")
    assert laptop.receive(1.0) is None


def test_clerk_lists_own_desktops_and_admin_lists_all(cti: CtiApp) -> None:
    _answering(cti, "anna", "bert")
    anna = cti.enroll("anna", ["10"]), cti.enroll("anna", ["10"])
    bert = cti.enroll("bert", ["10"])

    r = cti.client.get("/api/v1/cti/desktops", headers=cti.auth(["clerk"], ["10"], sub="anna"))
    assert r.status_code == 200, r.text
    assert sorted(d["id"] for d in r.json()) == sorted(c.desktop_id for c in anna)
    assert {(d["name"], d["enrolled_by"]) for d in r.json()} == {("test-pc", "anna")}
    assert {d["public_key"] for d in r.json()} == {c.public_key for c in anna}
    assert all(d["enrolled_at"] for d in r.json())

    r = cti.client.get("/api/v1/cti/desktops", headers=cti.auth(["admin"], []))
    assert r.status_code == 200, r.text
    assert {d["id"]: d["enrolled_by"] for d in r.json()} == {
        anna[0].desktop_id: "anna",
        anna[1].desktop_id: "anna",
        bert.desktop_id: "bert",
    }
    r = cti.client.get("/api/v1/cti/desktops", headers=cti.auth(["archivist"], []))
    assert r.status_code == 403
    assert cti.client.get("/api/v1/cti/desktops").status_code == 401


def test_only_the_enrolling_clerk_or_an_admin_withdraws_and_it_is_audited(cti: CtiApp) -> None:
    _answering(cti, "anna", "bert")
    anna_pc = cti.enroll("anna", ["10"])
    bert_pc = cti.enroll("bert", ["10"])
    anna = cti.auth(["clerk"], ["10"], sub="anna")
    admin = cti.auth(["admin"], [], sub="root")
    key_dir = cti.settings.cti_key_dir

    r = cti.client.delete(f"/api/v1/cti/desktops/{bert_pc.desktop_id}", headers=anna)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert keys.desktop(key_dir, bert_pc.desktop_id) is not None
    archivist = cti.auth(["archivist"], [], sub="anna")
    r = cti.client.delete(f"/api/v1/cti/desktops/{anna_pc.desktop_id}", headers=archivist)
    assert r.status_code == 403

    r = cti.client.delete("/api/v1/cti/desktops/no-such-pc-0123", headers=anna)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/not-found"
    r = cti.client.delete("/api/v1/cti/desktops/bad%20id", headers=admin)
    assert r.status_code == 422 and r.json()["type"] == "/problems/invalid-input"
    r = cti.client.delete("/api/v1/cti/desktops/..%2F..%2Fserver", headers=admin)
    assert r.status_code == 404
    assert (key_dir / "server.key").exists()

    assert cti.client.delete(f"/api/v1/cti/desktops/{anna_pc.desktop_id}", headers=anna).is_success
    r = cti.client.delete(f"/api/v1/cti/desktops/{anna_pc.desktop_id}", headers=anna)
    assert r.status_code == 404
    r = cti.client.delete(f"/api/v1/cti/desktops/{bert_pc.desktop_id}", headers=admin)
    assert r.status_code == 200, r.text
    assert keys.enrolled_desktops(key_dir) == []

    r = cti.client.get("/api/v1/audit", params={"action": "cti.desktop_withdrawn"}, headers=admin)
    assert r.status_code == 200, r.text
    events = {e["object_id"]: e for e in r.json()}
    assert events[anna_pc.desktop_id]["actor"] == "anna"
    assert events[bert_pc.desktop_id]["actor"] == "root"
    assert events[bert_pc.desktop_id]["details"]["enrolled_by"] == "bert"
    assert events[bert_pc.desktop_id]["details"]["public_key"] == bert_pc.public_key


def test_subject_in_the_key_file_cannot_forge_its_fields(tmp_path: Path) -> None:
    public = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    forged = 'eve"\n    enrolled-by = "anna"\ncurve\n    public-key = "x'
    keys.write_desktop_key(tmp_path, "pc-1", public.encode(), forged, name="pc")
    desktop = keys.desktop(tmp_path, "pc-1")
    assert desktop is not None
    assert desktop.enrolled_by == forged and desktop.public_key == public
    # ZeroMQ's own reader sees the same key.
    import zmq.auth

    assert zmq.auth.load_certificate(tmp_path / "desktops" / "pc-1.key")[0] == public.encode()


@pytest.mark.slow
def test_desk_withdraw_command_withdraws_this_desktop(cti: CtiApp, tmp_path: Path) -> None:
    _answering(cti, "anna")
    token = cti.token(["clerk"], ["10"], sub="anna")
    desk_dir = tmp_path / "desk"
    runner = CliRunner()
    with cti_process(cti, tmp_path, free_port(), free_port()) as base:
        auth = ["--server", base, "--token", token]
        enrolled = runner.invoke(
            eakte_cli, ["desk", "enroll", *auth, "--name", "pc", "--desk-dir", str(desk_dir)]
        )
        assert enrolled.exit_code == 0, enrolled.output
        desktop_id = json.loads((desk_dir / CONFIG_NAME).read_text())["desktop_id"]
        listed = runner.invoke(eakte_cli, ["desk", "list", *auth])
        assert listed.exit_code == 0, listed.output
        assert listed.output.startswith(f"{desktop_id}\tanna\t")

        withdrawn = runner.invoke(
            eakte_cli, ["desk", "withdraw", *auth, "--desk-dir", str(desk_dir)]
        )
        assert withdrawn.exit_code == 0, withdrawn.output
        assert f"withdrawn {desktop_id}" in withdrawn.output
        assert not (desk_dir / CONFIG_NAME).exists()
        assert not (tmp_path / "cti-keys" / "desktops" / f"{desktop_id}.key").exists()
        assert runner.invoke(eakte_cli, ["desk", "list", *auth]).output == ""

        again = runner.invoke(eakte_cli, ["desk", "withdraw", *auth, desktop_id])
        assert again.exit_code == 2
        assert "404" in again.output and "not enrolled" in again.output


def test_key_in_z85_alphabet_that_decodes_to_nothing_is_refused(cti: CtiApp) -> None:
    _answering(cti, "anna")
    anna = cti.auth(["clerk"], ["10"], sub="anna")
    for bad in ("#" * 40, "%" * 40):  # Z85 characters, but groups beyond 32 bits
        r = cti.client.post("/api/v1/cti/desktops", json={"public_key": bad}, headers=anna)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "/problems/invalid-input"
        assert "Z85" in r.json()["detail"]
    assert keys.enrolled_desktops(cti.settings.cti_key_dir) == []


def test_key_reload_goes_on_after_a_damaged_key_file(cti: CtiApp) -> None:
    call = cti.call_data()
    key_dir = cti.settings.cti_key_dir
    # Entries another process (or a person) left damaged, met by the bridge's poll.
    keys.write_desktop_key(key_dir, "damaged", b"#" * 40, call.clerk_sub)
    (keys.desktops_dir(key_dir) / "not-a-file.key").mkdir()
    time.sleep(2 * KEY_RELOAD_SECONDS)

    # Enrolled by another process sharing the directory: only the poll can load it.
    public, secret = zmq.curve_keypair()
    keys.write_desktop_key(key_dir, "by-hand", public, call.clerk_sub)
    time.sleep(2 * KEY_RELOAD_SECONDS)  # a key refused at the handshake is not retried
    server_public, _ = keys.server_keys(key_dir)
    config = DeskConfig(
        cti.settings.cti_pub_endpoint,
        server_public.decode(),
        public.decode(),
        secret.decode(),
        "by-hand",
    )
    agent = cti.agent(config, call.extension)
    assert cti.webhook(_event("after-damage", call.e164, call.extension)).status_code == 202
    assert _received(agent, "after-damage")
    assert [d.id for d in keys.enrolled_desktops(key_dir)] == ["by-hand"]

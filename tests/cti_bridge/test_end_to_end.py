"""End to end: sipp calls kamailio, kamailio posts the webhook to `eakte cti`, desktops pop up.

kamailio 5.6 has no HMAC function in its Debian modules, so it authenticates with a
service account's bearer token; HMAC is tested with a real HTTP client below.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cti_bridge.desk import DeskAgent, enroll
from cti_bridge.webhook import SIGNATURE_HEADER, sign
from tests.cti_bridge.conftest import LOCAL_AREA_CODE, WEBHOOK_SECRET, Call, CtiApp, cti_process
from tests.support.server import EAKTE, clean_env, free_port

pytestmark = pytest.mark.slow

KAMAILIO_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _signed_call(base: str, call_id: str, caller: str, extension: str) -> int:
    raw = json.dumps({"event": "ringing", "call_id": call_id, "from": caller, "to": extension})
    r = httpx.post(
        base + "/cti/webhook",
        content=raw.encode(),
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(raw.encode(), WEBHOOK_SECRET),
        },
        timeout=10,
    )
    return r.status_code


def _join(base: str, agent: DeskAgent, call: Call) -> None:
    """Send warm-up calls until the agent is subscribed (PUB drops what comes earlier)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert _signed_call(base, "warm-up", "anonymous", call.extension) == 202
        if agent.receive(0.3) is not None:
            while agent.receive(0.3) is not None:
                pass
            return
    raise AssertionError("the desktop agent never joined")


KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:{sip_port}
mpath="{modules}"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "http_client.so"
modparam("http_client", "connection_timeout", 5)

request_route {{
    if (is_method("INVITE")) {{
        $var(body) = "{{\\"event\\":\\"ringing\\",\\"call_id\\":\\"" + $ci + "\\",\\"from\\":\\""
            + $fU + "\\",\\"to\\":\\"" + $rU + "\\"}}";
        $var(rc) = http_client_query("{url}", "$var(body)",
            "Content-Type: application/json\\r\\nAuthorization: Bearer {token}", "$var(answer)");
        xlog("L_NOTICE", "webhook for $ci answered $var(rc): $var(answer)\\n");
        sl_send_reply("480", "Temporarily Unavailable");
        exit;
    }}
    if (is_method("ACK")) {{
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"""

SIPP_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="incoming call">
  <Global variables="caller" />
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[$caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true" />
  <recv response="480" />
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


@contextmanager
def kamailio(workdir: Path, sip_port: int, url: str, token: str) -> Iterator[Path]:
    """kamailio in the foreground on a loopback UDP port, posting the webhook per INVITE."""
    if shutil.which("kamailio") is None or not (KAMAILIO_MODULES / "http_client.so").exists():
        pytest.skip("kamailio with http_client is not installed (scripts/system-deps test)")
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(
        KAMAILIO_CFG.format(sip_port=sip_port, modules=KAMAILIO_MODULES, url=url, token=token)
    )
    check = subprocess.run(
        ["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stderr
    log = workdir / "kamailio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(cfg), "-P", str(workdir / "kamailio.pid"),
             "-Y", str(workdir)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        time.sleep(0.5)
        if proc.poll() is not None:
            raise AssertionError(f"kamailio exited: {log.read_text()}")
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def sipp_call(workdir: Path, sip_port: int, caller: str, extension: str) -> None:
    """One INVITE from `caller` to `extension` through kamailio, as a phone would send."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian sip-tester; scripts/system-deps test)")
    scenario = workdir / "call.xml"
    scenario.write_text(SIPP_SCENARIO)
    result = subprocess.run(
        ["sipp", f"127.0.0.1:{sip_port}", "-sf", str(scenario), "-s", extension,
         "-set", "caller", caller, "-m", "1", "-i", "127.0.0.1", "-p", str(_free_udp_port()),
         "-timeout", "20s", "-timeout_error", "-nostdin"],
        cwd=workdir, capture_output=True, text=True, timeout=40,
    )  # fmt: skip
    assert result.returncode == 0, f"sipp failed:\n{result.stdout[-2000:]}\n{result.stderr}"


def test_kamailio_invite_pops_the_file_at_the_enrolled_desktop_only(
    cti: CtiApp, tmp_path: Path
) -> None:
    call = cti.call_data()
    http_port, pub_port, sip_port = free_port(), free_port(), _free_udp_port()
    with cti_process(cti, tmp_path, http_port, pub_port) as base:
        token = cti.auth(["clerk"], [call.unit.code], sub=call.clerk_sub)["Authorization"]
        config = enroll(base, token.removeprefix("Bearer "), tmp_path / "desk")
        agent = DeskAgent(config, call.extension)
        stranger_config = enroll(base, token.removeprefix("Bearer "), tmp_path / "desk2")
        # Same server key and endpoint, but a keypair the bridge never enrolled.
        import zmq

        public, secret = zmq.curve_keypair()
        stranger = DeskAgent(
            type(stranger_config)(
                stranger_config.endpoint,
                stranger_config.server_public_key,
                public.decode(),
                secret.decode(),
                "stranger",
            ),
            call.extension,
        )
        try:
            _join(base, agent, call)
            service_token = cti.token(["service"], [], sub="kamailio")
            with kamailio(tmp_path, sip_port, base + "/cti/webhook", service_token) as log:
                for notation in (
                    f"0{LOCAL_AREA_CODE}{call.local_number}",
                    f"+49{LOCAL_AREA_CODE}{call.local_number}",
                    call.local_number,
                ):
                    started = time.monotonic()
                    sipp_call(tmp_path, sip_port, notation, call.extension)
                    event = agent.receive(1.0)
                    assert event is not None, log.read_text()[-3000:]
                    assert time.monotonic() - started < 2.0  # sipp's own start-up included
                    assert event["caller"] == call.e164
                    assert event["contact"]["id"] == call.contact_id
                    assert [f["id"] for f in event["files"]] == [call.file["id"]]
                    assert event["files"][0]["reference"] == call.file["reference"]
            assert stranger.receive(0.5) is None
            # A wrong HMAC is refused and publishes nothing.
            raw = b'{"event":"ringing","call_id":"evil","from":"1","to":"' + call.extension.encode()
            raw += b'"}'
            r = httpx.post(
                base + "/cti/webhook",
                content=raw,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, "nope")},
            )
            assert r.status_code == 401
            assert agent.receive(0.5) is None
        finally:
            agent.close()
            stranger.close()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str | None:
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if sel.select(timeout):
            return proc.stdout.readline()
        return None
    finally:
        sel.close()


def test_desk_agent_prints_the_file_and_reconnects_after_the_bridge_restarts(
    cti: CtiApp, tmp_path: Path
) -> None:
    call = cti.call_data()
    http_port, pub_port = free_port(), free_port()
    token = cti.token(["clerk"], [call.unit.code], sub=call.clerk_sub)
    desk: subprocess.Popen[str] | None = None

    def pop_until_printed(base: str, label: str) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert _signed_call(base, label, call.local_number, call.extension) == 202
            line = _read_line(desk, 0.5) if desk else None
            if line:
                return line
        raise AssertionError("the desk agent printed nothing")

    with cti_process(cti, tmp_path, http_port, pub_port) as base:
        subprocess.run(
            [*EAKTE, "desk", "enroll", "--server", base, "--token", token,
             "--desk-dir", str(tmp_path / "desk")],
            check=True, capture_output=True, text=True, timeout=60, env=clean_env(),
        )  # fmt: skip
        desk = subprocess.Popen(
            [*EAKTE, "desk", "--extension", call.extension, "--print",
             "--desk-dir", str(tmp_path / "desk")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=clean_env(PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        try:
            assert "waiting for calls" in (_read_line(desk, 20) or "")
            line = pop_until_printed(base, "before")
            assert call.file["reference"] in line
            assert f"http://eakte.test/files/{call.file['id']}" in line
        except BaseException:
            desk.kill()
            raise
    try:
        # The same bridge (same keys, same ports) comes back: the agent reconnects by itself.
        with cti_process(cti, tmp_path, http_port, pub_port) as base:
            line = pop_until_printed(base, "after")
            assert call.file["reference"] in line
    finally:
        desk.terminate()
        desk.wait(timeout=10)

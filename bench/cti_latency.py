"""CTI latency: webhook received -> ZeroMQ pop-up received, with a large phone index.

Loads N contacts (2 numbers each) into a fresh PostgreSQL database with COPY, starts
`eakte cti` as a real process, sends M signed webhook calls for callers that have an open
file, and measures from sending each webhook until its pop-up arrives at an enrolled
ZeroMQ subscriber. Two runs: "capacity" sends as fast as the bridge answers (closed loop,
`--concurrency` connections) and gives calls per second; the paced run offers `--rate`
calls per second (open loop: each call is sent when due, latency counted from then) and
gives p50/p99 at that load. The baseline, measured in the same run, is the capacity run
for withheld callers (no phone-index lookup, nothing to audit), so the ratio shows what
recognising the caller costs at this size.

    .venv/bin/python bench/cti_latency.py --contacts 1000000 --calls 10000
Target: at least 500 calls/s, and p99 below 20 ms at 500 calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import psycopg
import zmq
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cti_bridge import keys  # noqa: E402
from cti_bridge.webhook import SIGNATURE_HEADER, sign  # noqa: E402
from eakte.auth.principal import SYSTEM, Principal, Role  # noqa: E402
from eakte.db import make_engine, make_session_factory, unit_of_work  # noqa: E402
from eakte.files.schemas import FileCreate  # noqa: E402
from eakte.files.service import create_file  # noqa: E402
from eakte.migrate import upgrade  # noqa: E402
from eakte.orgunits.schemas import OrgUnitCreate  # noqa: E402
from eakte.orgunits.service import create_unit  # noqa: E402
from eakte.plan.models import ArchiveValue  # noqa: E402
from eakte.plan.schemas import PlanItemCreate  # noqa: E402
from eakte.plan.service import create_item  # noqa: E402

SECRET = "bench-webhook-secret"  # noqa: S105 - a throw-away secret of this run
EXTENSION = "201"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def number(i: int) -> str:
    """The i-th phone number (valid Berlin numbers)."""
    return f"+4930{10_000_000 + i:08d}"


def libpq(url: str) -> str:
    u = make_url(url)
    return (
        f"host={u.host or '127.0.0.1'} port={u.port or 5432} user={u.username or 'postgres'} "
        f"dbname={u.database or 'postgres'}" + (f" password={u.password}" if u.password else "")
    )


def load(url: str, contacts: int, files: int) -> list[int]:
    """Contacts and phones by COPY; `files` open files linked to every k-th contact."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    clerk = Principal("bench-clerk", frozenset({Role.CLERK}), frozenset({"B1"}))
    with unit_of_work(factory) as session:
        create_unit(session, SYSTEM, OrgUnitCreate(code="B1", name="Bench"))
        create_item(
            session,
            SYSTEM,
            PlanItemCreate(
                code="99.01", title="Bench", retention_years=10, archive_value=ArchiveValue("V")
            ),
        )
    file_ids: list[uuid.UUID] = []
    with unit_of_work(factory) as session:
        for i in range(files):
            f = create_file(session, clerk, FileCreate(title=f"Akte {i}", plan_code="99.01"))
            file_ids.append(f.id)
    engine.dispose()
    step = max(1, contacts // max(1, files))
    with_files = [i * step for i in range(files)]
    t0 = time.perf_counter()
    with psycopg.connect(libpq(url)) as conn, conn.cursor() as cur:
        ids = [uuid.uuid4() for _ in range(contacts)]
        with cur.copy("COPY contacts (id, name, created_at) FROM STDIN") as copy:
            for i, cid in enumerate(ids):
                copy.write_row((cid, f"Kontakt {i}", "2026-01-01T00:00:00+00"))
        with cur.copy("COPY contact_phones (id, contact_id, e164, position) FROM STDIN") as copy:
            for i, cid in enumerate(ids):
                copy.write_row((uuid.uuid4(), cid, number(2 * i), 0))
                copy.write_row((uuid.uuid4(), cid, number(2 * i + 1), 1))
        with cur.copy("COPY file_contacts (file_id, contact_id, role) FROM STDIN") as copy:
            for fid, i in zip(file_ids, with_files, strict=True):
                copy.write_row((fid, ids[i], "party"))
        cur.execute(
            "INSERT INTO cti_extensions (id, extension, subject, units, updated_at, updated_by)"
            " VALUES (%s, %s, 'bench-clerk', '[\"B1\"]', now(), 'bench')",
            (uuid.uuid4(), EXTENSION),
        )
        conn.commit()
        cur.execute("ANALYZE")
    print(
        f"loaded {contacts} contacts ({2 * contacts} numbers) in {time.perf_counter() - t0:.1f} s"
    )
    return with_files


class Subscriber(threading.Thread):
    """An enrolled ZeroMQ subscriber recording when each call's pop-up arrives."""

    def __init__(self, endpoint: str, server_key: bytes, public: bytes, secret: bytes) -> None:
        super().__init__(daemon=True)
        self.received: dict[str, float] = {}
        self.stop = threading.Event()
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.curve_serverkey, self.sock.curve_publickey = server_key, public
        self.sock.curve_secretkey = secret
        # The bridge sends each desktop its clerk's pop-ups under its own key as topic.
        self.sock.setsockopt(zmq.SUBSCRIBE, public)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        self.sock.connect(endpoint)

    def run(self) -> None:
        while not self.stop.is_set():
            if self.sock.poll(100):
                _, payload = self.sock.recv_multipart()
                self.received[json.loads(payload)["call_id"]] = time.perf_counter()
        self.sock.close(0)
        self.ctx.term()


def _request(port: int, call_id: str, caller: str) -> bytes:
    body = json.dumps(
        {"event": "ringing", "call_id": call_id, "from": caller, "to": EXTENSION}
    ).encode()
    head = (
        f"POST /cti/webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{SIGNATURE_HEADER}: {sign(body, SECRET)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def send_calls(
    port: int, calls: list[tuple[str, str]], concurrency: int, rate: float | None = None
) -> tuple[dict[str, float], float]:
    """POST signed webhooks over `concurrency` keep-alive connections; send times, duration.

    Without `rate`, each connection sends its next call as soon as the last is answered
    (closed loop: the bridge's capacity). With `rate`, call i is due at start + i / rate
    whether or not earlier calls were answered (open loop, as calls arrive at a PBX), and
    its latency counts from when it was due, so a stalled bridge cannot hide its queue.
    A minimal HTTP/1.1 client on raw sockets (requests prepared beforehand), so the load
    generator costs far less per call than the bridge it measures.
    """
    sent: dict[str, float] = {}
    pending = [(i, call_id, _request(port, call_id, caller))
               for i, (call_id, caller) in enumerate(calls)]
    pending.reverse()
    clock = time.perf_counter
    start = clock()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.set_write_buffer_limits(0)
        try:
            while pending:
                i, call_id, raw = pending.pop()
                if rate is None:
                    sent[call_id] = clock()
                else:
                    due = start + i / rate
                    if due > clock():
                        await asyncio.sleep(due - clock())
                    sent[call_id] = due
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                answer = await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 202"):
                    raise RuntimeError(f"webhook answered {head[:12]!r}: {answer!r}")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent, clock() - start


def _load_process(
    port: int,
    calls: list[tuple[str, str]],
    concurrency: int,
    rate: float | None,
    out: Connection,
) -> None:
    out.send(asyncio.run(send_calls(port, calls, concurrency, rate)))
    out.close()


def measure(
    port: int,
    sub: Subscriber,
    calls: list[tuple[str, str]],
    concurrency: int,
    label: str,
    rate: float | None = None,
) -> tuple[float, float, float]:
    """Send the calls from a separate process; latency is send -> pop-up received.

    Both processes read time.perf_counter, which is CLOCK_MONOTONIC on Linux: one clock
    for the whole machine, so send and receive times of different processes compare.
    """
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    loader = ctx.Process(target=_load_process, args=(port, calls, concurrency, rate, sender))
    loader.start()
    sender.close()
    sent, duration = receiver.recv()
    loader.join()
    if loader.exitcode != 0:
        raise RuntimeError(f"the load generator failed ({loader.exitcode})")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(c in sub.received for c in sent):
        time.sleep(0.05)
    latencies = sorted((sub.received[c] - t) * 1000 for c, t in sent.items() if c in sub.received)
    lost = len(sent) - len(latencies)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rate = len(sent) / duration
    print(
        f"{label:>9}: {len(sent)} calls, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"{rate:.0f} calls/s, lost {lost}",
        flush=True,
    )
    return p50, p99, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=500.0, help="calls/s of the paced run")
    parser.add_argument("--pg-url", default=os.environ.get("EAKTE_BENCH_PG_URL", DEFAULT_PG))
    args = parser.parse_args()

    name = f"eakte_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(args.pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    workdir = Path(tempfile.mkdtemp(prefix="eakte-bench-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        upgrade(url)
        with_files = load(url, args.contacts, args.files)
        key_dir = workdir / "cti"
        server_public, _ = keys.server_keys(key_dir)
        public, secret = zmq.curve_keypair()
        # Enrolled by the clerk who answers the extension: pop-ups go to that clerk's desktops.
        keys.write_desktop_key(key_dir, "bench", public, "bench-clerk")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            socket_port = sock.getsockname()[1]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            http_port = sock.getsockname()[1]
        endpoint = f"tcp://127.0.0.1:{socket_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EAKTE_")}
        env.update(
            EAKTE_DATABASE_URL=url,
            EAKTE_STORAGE_URL=f"file://{workdir}/blobs",
            EAKTE_JWT_SECRET="bench-jwt-secret-0123456789-0123456789",  # noqa: S106
            EAKTE_CTI_WEBHOOK_SECRET=SECRET,
            EAKTE_CTI_PUB_ENDPOINT=endpoint,
            EAKTE_CTI_KEY_DIR=str(key_dir),
            EAKTE_LOG_LEVEL="WARNING",
        )
        log = (workdir / "cti.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "eakte", "cti", "--port", str(http_port)],
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{http_port}"
        for _ in range(300):
            try:
                httpx.get(base + "/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        sub = Subscriber(endpoint, server_public, public, secret)
        sub.start()
        # Warm up: connections, the CURVE handshake, the database pool, the query plans.
        warm = [(f"warm-{i}", number(2 * with_files[i % len(with_files)])) for i in range(300)]
        measure(http_port, sub, warm, args.concurrency, "warm-up")
        baseline = [(f"base-{i}", "anonymous") for i in range(max(100, args.calls // 5))]
        _, b99, brate = measure(http_port, sub, baseline, args.concurrency, "baseline")
        calls = [
            (f"call-{i}", number(2 * with_files[i % len(with_files)] + i % 2))
            for i in range(args.calls)
        ]
        _, _, rate = measure(http_port, sub, calls, args.concurrency, "capacity")
        paced = [(f"paced-{c}", n) for c, n in calls]
        p50, p99, offered = measure(
            http_port, sub, paced, 4 * args.concurrency, f"{args.rate:.0f}/s", args.rate
        )
        sub.stop.set()
        print(
            f"contacts {args.contacts}, calls {args.calls}: capacity {rate:.0f} calls/s "
            f"(ratio to baseline {rate / brate:.2f}); at {offered:.0f} calls/s p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms (baseline's p99 at capacity {b99:.2f} ms)"
        )
        ok = p99 < 20 and rate >= 500 and offered >= 0.98 * args.rate
        print(
            f"target (>= 500 calls/s; p99 < 20 ms at {args.rate:.0f} calls/s): "
            f"{'met' if ok else 'NOT met'}"
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        with psycopg.connect(libpq(args.pg_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

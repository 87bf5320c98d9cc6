"""Run `eakte` commands and a real `eakte serve` process for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

EAKTE = [sys.executable, "-m", "eakte"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_processes(pid: int) -> list[int]:
    """The process ids of a process's children (e.g. `eakte serve --workers`'s servers)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without EAKTE_ settings of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAKTE_")}
    env.update(extra)
    return env


def eakte(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the eakte CLI in `cwd`."""
    result = subprocess.run(
        [*EAKTE, *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"eakte {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


@contextmanager
def serve(
    cwd: Path,
    env: dict[str, str] | None = None,
    command: str = "serve",
    port: int | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start `eakte serve` (or another serving command, e.g. `cti`) on a port, by default a
    free one; yields its base URL and process once /health answers."""
    port = port or free_port()
    log_path = cwd / f"{command}.log"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [*EAKTE, command, "--port", str(port), *args],
        cwd=cwd,
        env=env or clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"eakte {command} exited: {log_path.read_text()}")
            try:
                httpx.get(base + "/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"eakte {command} did not answer within 60 s") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()

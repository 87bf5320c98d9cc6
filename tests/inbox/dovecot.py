"""A real Dovecot IMAP server on loopback for the tests, with one user and plain login."""

from __future__ import annotations

import imaplib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import free_port
from tests.support.tls import ServerCertificate

CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = {host}
{ssl}
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
  }}
}}
"""
PLAIN = "ssl = no\ndisable_plaintext_auth = no"
# Logins only over TLS: STARTTLS on the imap port, or TLS from the start on imaps.
TLS = "ssl = required\nssl_cert = <{cert}\nssl_key = <{key}"


@dataclass
class Dovecot:
    """A running Dovecot: where it listens and who may log in."""

    port: int
    user: str
    password: str
    directory: Path
    tls: ServerCertificate | None = None
    tls_port: int = 0  # implicit TLS (imaps), when `tls`
    host: str = "127.0.0.1"

    def connect(self) -> imaplib.IMAP4:
        """A logged-in client connection (the test's own IMAP peer)."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        if self.tls is not None:
            conn.starttls(ssl.create_default_context(cafile=self.tls.ca_file))
        conn.login(self.user, self.password)
        return conn

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a mail into a folder, unread."""
        conn = self.connect()
        try:
            typ, data = conn.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, str]:
        """The flags of every mail in a folder, by UID."""
        conn = self.connect()
        try:
            conn.select(folder, readonly=True)
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            found: dict[int, str] = {}
            for entry in data:
                if isinstance(entry, bytes) and b"UID" in entry:
                    text = entry.decode()
                    uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                    found[uid] = text.split("FLAGS (")[1].split(")")[0]
            return found
        finally:
            conn.logout()

    def create_folder(self, folder: str) -> None:
        """Make a folder (for tests that move taken mails)."""
        conn = self.connect()
        try:
            conn.create(folder)
        finally:
            conn.logout()


def _wait_for_port(host: str, port: int, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on {port}: "
                       f"{log.read_text() if log.exists() else 'no log'}")


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def start_dovecot(tls: ServerCertificate | None = None) -> Iterator[Dovecot]:
    """Start Dovecot in a fresh directory; stop it and remove the directory afterwards.

    With `tls`, it presents that certificate and takes logins only over TLS.
    """
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot"
                                         if Path("/usr/sbin/dovecot").exists() else None)
    if binary is None:
        message = ("Dovecot is not installed (Debian package dovecot-imapd; "
                   "scripts/system-deps test)")
        if _ci():
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's 0700 temp dirs: Dovecot's mail processes run as the dovecot user.
    directory = Path(tempfile.mkdtemp(prefix="eakte-dovecot-"))
    directory.chmod(0o755)
    port, tls_port = free_port(), (free_port() if tls else 0)
    user, password = "post", "geheim"
    (directory / "mail").mkdir()
    shutil.chown(directory / "mail", "dovecot", "dovecot")
    (directory / "users").write_text(f"{user}:{{PLAIN}}{password}\n")
    (directory / "users").chmod(0o644)
    config = directory / "dovecot.conf"
    ssl_settings = TLS.format(cert=tls.cert_file, key=tls.key_file) if tls else PLAIN
    # Dovecot counts a connection from the address it listens on as secure and then allows
    # a plain login anyway; with TLS it listens on 127.0.0.2 (clients come from 127.0.0.1).
    host = "127.0.0.2" if tls else "127.0.0.1"
    config.write_text(CONFIG.format(d=directory, host=host, port=port, tls_port=tls_port,
                                    ssl=ssl_settings))
    # The master daemonises; its output goes to a file, since a pipe it inherits would keep
    # subprocess.run waiting for an end of file that never comes.
    with (directory / "start.log").open("wb") as out:
        subprocess.run([binary, "-c", str(config)], check=True, timeout=30,
                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(host, port, directory / "dovecot.log")
        if tls:
            _wait_for_port(host, tls_port, directory / "dovecot.log")
        yield Dovecot(port, user, password, directory, tls, tls_port, host)
    finally:
        pid_file = directory / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.05)
        shutil.rmtree(directory, ignore_errors=True)

"""CURVE keys of the bridge: the server keypair and the directory of enrolled desktops."""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

import zmq
import zmq.auth
from zmq.utils import z85

from eakte.errors import InvalidInput

log = logging.getLogger(__name__)

SERVER_NAME = "server"
DESKTOPS_DIR = "desktops"
DESKTOP_ID = r"[\w.-]{1,120}"
# One `name = "value"` line of a ZPL certificate (metadata or curve section).
_FIELD = re.compile(r'\s*([\w-]+)\s*=\s*"([^"]*)"\s*')


def desktops_dir(key_dir: Path) -> Path:
    """The authorised-clients directory: one public certificate per enrolled desktop."""
    path = key_dir / DESKTOPS_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def server_keys(key_dir: Path) -> tuple[bytes, bytes]:
    """The bridge's (public, secret) CURVE keys, created on first use and kept in `key_dir`.

    The keypair must survive restarts: desktops pin the public key when they enroll.
    """
    key_dir.mkdir(parents=True, exist_ok=True)
    secret_file = key_dir / f"{SERVER_NAME}.key_secret"
    if not secret_file.exists():
        # Written under a temporary name and renamed, so a second process starting at
        # the same time never reads half a file; the loser's rename keeps one keypair.
        with tempfile.TemporaryDirectory(dir=key_dir) as tmp:
            public, secret = zmq.auth.create_certificates(tmp, SERVER_NAME)
            os.chmod(secret, 0o600)
            if not secret_file.exists():
                os.replace(public, key_dir / f"{SERVER_NAME}.key")
                os.replace(secret, secret_file)
    public_key, secret_key = zmq.auth.load_certificate(secret_file)
    if secret_key is None:
        raise RuntimeError(f"{secret_file} holds no secret key")
    return public_key, secret_key


def check_public_key(text: str) -> bytes:
    """The Z85 public key as bytes; InvalidInput unless it decodes to 32 bytes."""
    if not re.fullmatch(r"[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}", text):
        raise InvalidInput("public_key must be a Z85-encoded CURVE key of 40 characters")
    try:
        decoded = z85.decode(text)
    except (struct.error, ValueError, OverflowError):
        # Z85 characters, but a group of five stands for more than 32 bits (`#####`):
        # no key was ever encoded like this.
        raise InvalidInput(
            "public_key is not a Z85-encoded CURVE key (a group of 5 characters is out of range)"
        ) from None
    if len(decoded) != 32:
        raise InvalidInput("public_key must decode to 32 bytes")
    return text.encode()


@dataclass(frozen=True)
class Desktop:
    """An enrolled desktop, as its key file in the authorised-clients directory says."""

    id: str
    name: str
    public_key: str
    enrolled_by: str | None
    enrolled_at: datetime | None


def valid_desktop_id(desktop_id: str) -> bool:
    """True if the id can name a key file: a plain file name, no path."""
    return re.fullmatch(DESKTOP_ID, desktop_id) is not None


def _desktop_path(key_dir: Path, desktop_id: str) -> Path | None:
    # Ids come from URLs: anything but a plain file name is no desktop of ours.
    if not valid_desktop_id(desktop_id):
        return None
    return desktops_dir(key_dir) / f"{desktop_id}.key"


def write_desktop_key(
    key_dir: Path,
    desktop_id: str,
    public_key: bytes,
    enrolled_by: str,
    *,
    name: str | None = None,
    enrolled_at: datetime | None = None,
) -> Path:
    """Register a desktop's public key in the authorised-clients directory.

    The key file is the record of the enrollment: besides the key (the part ZeroMQ
    reads), its metadata section names the desktop, the clerk who enrolled it and
    when. Keeping this in the file rather than in a table means there is one source of
    truth for who may connect, shared by every process that uses the directory, and a
    key file removed by hand is withdrawn from the listing too. Values are
    percent-encoded, so no subject can break out of its quoted value.
    """
    path = _desktop_path(key_dir, desktop_id)
    if path is None:
        raise InvalidInput(f"{desktop_id!r} is not a valid desktop id")
    safe_comment = re.sub(r"[^\w.@:-]", "_", enrolled_by)[:200]
    when = (enrolled_at or datetime.now(UTC)).isoformat()
    body = (
        f"#   enrolled desktop {safe_comment}\n"
        "metadata\n"
        f'    name = "{quote(name or desktop_id, safe="")}"\n'
        f'    enrolled-by = "{quote(enrolled_by, safe="")}"\n'
        f'    enrolled-at = "{quote(when, safe="")}"\n'
        "curve\n"
        f'    public-key = "{public_key.decode()}"\n'
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(body)
    os.replace(tmp, path)
    return path


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.fullmatch(line)
        if match:
            fields.setdefault(match[1], match[2])
    return fields


def read_desktop(path: Path) -> Desktop | None:
    """The desktop a key file describes; None if the file is gone or holds no valid key."""
    try:
        fields = _fields(path.read_text(errors="replace"))
    except FileNotFoundError:
        return None  # withdrawn meanwhile
    except OSError as exc:
        # One unreadable entry (a directory, no permission) must not hide the others.
        log.warning("%s cannot be read (%s); ignored", path, exc)
        return None
    public_key = fields.get("public-key", "")
    try:
        check_public_key(public_key)
    except InvalidInput:
        log.warning("%s holds no valid CURVE public key; ignored", path)
        return None
    enrolled_at: datetime | None = None
    if "enrolled-at" in fields:
        try:
            enrolled_at = datetime.fromisoformat(unquote(fields["enrolled-at"]))
        except ValueError:
            log.warning("%s has an unreadable enrolled-at; shown without it", path)
    desktop_id = path.name.removesuffix(".key")
    return Desktop(
        id=desktop_id,
        name=unquote(fields.get("name", desktop_id)),
        public_key=public_key,
        # Files from before enrollments were recorded name their clerk only in a
        # sanitised comment, which cannot prove who it was: no one, so admins only.
        enrolled_by=unquote(fields["enrolled-by"]) if "enrolled-by" in fields else None,
        enrolled_at=enrolled_at,
    )


def enrolled_desktops(key_dir: Path) -> list[Desktop]:
    """Every enrolled desktop with a valid key, by id."""
    found = (read_desktop(path) for path in sorted(desktops_dir(key_dir).glob("*.key")))
    return [desktop for desktop in found if desktop is not None]


def desktop(key_dir: Path, desktop_id: str) -> Desktop | None:
    """One enrolled desktop, if it is enrolled."""
    path = _desktop_path(key_dir, desktop_id)
    return None if path is None else read_desktop(path)


def remove_desktop_key(key_dir: Path, desktop_id: str) -> bool:
    """Withdraw an enrolled desktop; True if it was enrolled."""
    path = _desktop_path(key_dir, desktop_id)
    if path is None:
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True

"""CURVE keys of the bridge: the server keypair and the directory of enrolled desktops."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from eakte.errors import InvalidInput

SERVER_NAME = "server"
DESKTOPS_DIR = "desktops"


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
    if len(z85.decode(text)) != 32:
        raise InvalidInput("public_key must decode to 32 bytes")
    return text.encode()


def write_desktop_key(key_dir: Path, desktop_id: str, public_key: bytes, comment: str) -> Path:
    """Register a desktop's public key in the authorised-clients directory."""
    path = desktops_dir(key_dir) / f"{desktop_id}.key"
    safe_comment = re.sub(r"[^\w.@:-]", "_", comment)[:200]
    body = (
        f"#   enrolled desktop {safe_comment}\n"
        "metadata\n"
        "curve\n"
        f'    public-key = "{public_key.decode()}"\n'
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(body)
    os.replace(tmp, path)
    return path


def remove_desktop_key(key_dir: Path, desktop_id: str) -> bool:
    """Withdraw an enrolled desktop; True if it was enrolled."""
    path = desktops_dir(key_dir) / f"{desktop_id}.key"
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


"""The `eakte` command line, run as a person would run it."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jwt

from eakte.settings import Settings
from tests.support.server import clean_env, eakte


def test_setup_commands_and_audit_verification(tmp_path: Path) -> None:
    eakte(tmp_path, "db", "upgrade")
    assert (tmp_path / "var" / "eakte.db").exists()
    eakte(tmp_path, "orgunit", "add", "32", "Bauordnungsamt")
    eakte(
        tmp_path,
        "plan",
        "add",
        "63.01",
        "Baugenehmigungen",
        "--retention-years",
        "30",
        "--archive-value",
        "A",
    )
    duplicate = eakte(tmp_path, "orgunit", "add", "32", "again", check=False)
    assert duplicate.returncode == 4
    assert duplicate.stderr.strip() == "eakte: org unit 32 exists already"

    ok = eakte(tmp_path, "audit", "verify")
    assert "audit chain ok: 2 events verified" in ok.stdout

    with sqlite3.connect(tmp_path / "var" / "eakte.db") as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    broken = eakte(tmp_path, "audit", "verify", check=False)
    assert broken.returncode == 6
    assert "event 1: content was modified" in broken.stderr


def test_token_is_accepted_by_the_secret_it_was_issued_with(tmp_path: Path) -> None:
    out = eakte(tmp_path, "token", "--sub", "anna", "--role", "clerk", "--unit", "32")
    token = out.stdout.strip()
    secret = (tmp_path / "var" / "secret.key").read_text().strip()
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["sub"] == "anna" and claims["roles"] == ["clerk"] and claims["units"] == ["32"]
    assert (tmp_path / "var" / "secret.key").stat().st_mode & 0o077 == 0


def _secret_of(path: str) -> str:
    settings = Settings(secret_file=Path(path))  # type: ignore[call-arg]
    secret = settings.hs256_secret
    assert secret is not None
    return secret


def test_processes_starting_together_make_one_private_secret(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret.key"
    with ProcessPoolExecutor(8) as pool:
        secrets = set(pool.map(_secret_of, [str(path)] * 32))
    assert len(secrets) == 1 and path.read_text().strip() in secrets
    assert path.stat().st_mode & 0o077 == 0
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left


def test_bad_input_gets_a_readable_message(tmp_path: Path) -> None:
    bad_role = eakte(tmp_path, "token", "--sub", "x", "--role", "pope", check=False)
    assert bad_role.returncode == 2
    assert "pope" in bad_role.stderr
    rs256 = eakte(
        tmp_path,
        "token",
        "--sub",
        "x",
        "--role",
        "clerk",
        check=False,
        env=clean_env(EAKTE_JWKS_URL="http://127.0.0.1:1/jwks"),
    )
    assert rs256.returncode == 2
    assert "identity provider" in rs256.stderr

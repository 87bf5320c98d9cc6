"""The command line on bad input and a missing database: one readable line, a meaningful code."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.server import clean_env, eakte

SECRET = "TopSecret-7f3a"


def _one_line(result: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output and SECRET not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eakte: ") and says in lines[0], output


def test_commands_without_a_database_say_how_to_create_it(tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF-1.4\n")
    for args in (
        ("orgunit", "add", "32", "Bauordnungsamt"),
        ("audit", "verify"),
        ("retention", "due"),
        ("fixity",),
        ("sweep", "--dry-run"),
        ("worker", "--until-idle"),
        ("import", str(scan)),
        ("classifier", "train"),
        ("outgoing", "deliver"),
    ):
        _one_line(eakte(tmp_path, *args, check=False), 5, "eakte db upgrade")
    assert not (tmp_path / "var" / "eakte.db").exists()  # no empty database left behind


def test_an_unreachable_database_is_unavailable_without_its_password(tmp_path: Path) -> None:
    env = clean_env(EAKTE_DATABASE_URL=f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:1/x")
    for args in (("orgunit", "add", "32", "Bau"), ("retention", "due"), ("db", "upgrade")):
        _one_line(eakte(tmp_path, *args, env=env, check=False), 5, "database unavailable")
    bad = clean_env(EAKTE_DATABASE_URL=f"postgresql+psycopg://postgres:{SECRET}@db:port/x")
    _one_line(eakte(tmp_path, "audit", "verify", env=bad, check=False), 2, "EAKTE_DATABASE_URL")


def test_a_malformed_storage_url_or_setting_is_bad_input(tmp_path: Path) -> None:
    eakte(tmp_path, "db", "upgrade")
    env = clean_env(EAKTE_STORAGE_URL=f"s3://key:{SECRET}@127.0.0.1:port/bucket")
    for args in (("fixity",), ("sweep",), ("retention", "execute", "x")):
        _one_line(eakte(tmp_path, *args, env=env, check=False), 2, "EAKTE_STORAGE_URL")
    env = clean_env(EAKTE_RETENTION_FOUR_EYES="maybe")
    _one_line(eakte(tmp_path, "retention", "due", env=env, check=False), 2, "FOUR_EYES")


def test_bad_arguments_get_a_readable_message(tmp_path: Path) -> None:
    eakte(tmp_path, "db", "upgrade")
    _one_line(eakte(tmp_path, "orgunit", "add", "", "", check=False), 2, "code")
    _one_line(
        eakte(tmp_path, "plan", "add", "1", "T", "--archive-value", "X", check=False),
        2,
        "archive value",
    )
    _one_line(
        eakte(tmp_path, "plan", "add", "1", "T", "--retention-years", "-5", check=False),
        2,
        "retention_years",
    )
    _one_line(eakte(tmp_path, "inbox", "requeue", "xyz", check=False), 2, "xyz")
    _one_line(
        eakte(tmp_path, "apikey", "create", "k", "--role", "clerk", "--unit", "99", check=False),
        3,
        "org unit 99",
    )
    expired = eakte(tmp_path, "token", "--sub", "a", "--role", "clerk", "--ttl", "-5", check=False)
    assert expired.returncode == 2 and "--ttl" in expired.stderr, expired.stdout
    _one_line(
        eakte(tmp_path, "retention", "run", "--actor", "", check=False), 2, "--actor"
    )
    _one_line(
        eakte(
            tmp_path,
            "retention",
            "receipt",
            "00000000-0000-0000-0000-000000000000",
            "--archive-reference",
            "",
            check=False,
        ),
        2,
        "archive_reference",
    )
    for args in (("retention", "due", "--limit", "-1"), ("fixity", "--every", "0")):
        refused = eakte(tmp_path, *args, check=False)
        assert refused.returncode == 2 and "Invalid value" in refused.stderr, refused.stdout

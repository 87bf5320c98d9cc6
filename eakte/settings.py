"""Configuration read once from the environment (EAKTE_*) and passed down."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ImapMailbox(BaseModel):
    """One IMAP mailbox the inbox polls (e-mail intake)."""

    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str
    password: SecretStr | None = None
    oauth2_token: SecretStr | None = None  # XOAUTH2 instead of a password
    folder: str = "INBOX"
    move_to: str | None = None  # a folder to move taken mails to; else they are flagged
    ca_file: Path | None = None

    @property
    def label(self) -> str:
        """The mailbox as it is named in receipts and logs (no secrets)."""
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"


class Settings(BaseSettings):
    """All settings of the records service; see README for each variable."""

    model_config = SettingsConfigDict(env_prefix="EAKTE_", env_file=None, extra="ignore")

    database_url: str = "sqlite:///./var/eakte.db"
    storage_url: str = "file://./var/blobs"
    default_region: str = "DE"
    local_area_code: str | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"

    # Authentication. HS256 with a shared secret is for development; production
    # configures RS256 with a PEM public key or a JWKS URL (e.g. Keycloak).
    jwt_secret: SecretStr | None = None
    secret_file: Path = Path("./var/secret.key")
    jwt_public_key: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_roles_claim: str = "roles"
    jwt_units_claim: str = "units"
    # Reliability and security (issue 7): the claim naming the highest confidentiality level
    # (normal, confidential, secret) the principal may read; absent means normal.
    jwt_clearance_claim: str = "clearance"
    token_ttl_seconds: int = 8 * 3600

    max_upload_bytes: int = Field(default=4 * 1024**3, ge=1)
    orphan_grace_seconds: int = Field(default=24 * 3600, ge=0)

    log_level: str = "INFO"

    # Inbound pipeline (inbox/).
    ocr_languages: str = "deu+eng"
    ocr_timeout_seconds: float = Field(default=600.0, gt=0)
    ocr_workers: int = Field(default=1, ge=1, description="documents OCRed at the same time")
    ocr_max_pages: int = Field(default=500, ge=1)
    # Memory cap (RLIMIT_AS) of each OCR process; unset: derived from the largest page allowed
    # (about 4.6 GiB per process with two pages in parallel).
    ocr_max_memory_bytes: int | None = Field(default=None, ge=256 * 1024 * 1024)
    inbox_lease_seconds: float = Field(default=60.0, gt=0)
    inbox_max_attempts: int = Field(default=8, ge=1)
    inbox_retry_base_seconds: float = Field(default=5.0, gt=0)
    hot_folder: Path | None = None
    hot_folder_settle_seconds: float = Field(default=2.0, ge=0)
    worker_in_serve: bool = True

    # Outgoing post, forwarding and paper documents (eakte/outgoing, eakte/worklist).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: Path | None = None
    smtp_from: str = "Stadtverwaltung <post@example.org>"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    smtp_max_attempts: int = Field(default=8, ge=1)
    smtp_retry_base_seconds: int = Field(default=60, ge=1)
    smtp_retry_max_seconds: int = Field(default=6 * 3600, ge=1)
    outgoing_deliver_on_commit: bool = True
    letter_sender_name: str = "Stadtverwaltung"
    letter_sender_address: str = "Rathausplatz 1, 12345 Musterstadt"
    forward_grant_max_days: int = Field(default=30, ge=1)
    paper_keep_after_scan_days: int = Field(default=180, ge=0)

    # Retention (retention/). GOVERNANCE by default: eakte never bypasses it, yet an
    # operator with the bypass right can still correct a wrong due date (a wrong closure
    # date, a plan item with a wrong period), which COMPLIANCE would lock in for decades.
    retention_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    retention_four_eyes: bool = True
    retention_timezone: str = "Europe/Berlin"
    retention_archive_name: str = "Kommunalarchiv"
    retention_agency_name: str = "Stadtverwaltung"
    fixity_interval_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    # CTI bridge (telephony): webhook secret, ZeroMQ publisher, CURVE keys, AMI, desktop agent.
    cti_embedded: bool = True  # `eakte serve` runs the bridge; false when `eakte cti` does
    cti_host: str = "127.0.0.1"
    cti_port: int = 8010
    cti_pub_endpoint: str = "tcp://127.0.0.1:5560"
    cti_public_endpoint: str | None = None  # what desktops connect to, if not the bind address
    cti_key_dir: Path = Path("./var/cti")
    cti_webhook_secret: SecretStr | None = None
    cti_max_files: int = Field(default=10, ge=1, le=100)
    cti_ami_host: str | None = None
    cti_ami_port: int = 5038
    cti_ami_username: str | None = None
    cti_ami_secret: SecretStr | None = None
    cti_ami_max_backoff_seconds: float = Field(default=30.0, gt=0)
    desk_dir: Path = Path("./var/desk")

    # E-mail intake and classification (inbox/mail.py, inbox/imap.py, inbox/classifier.py).
    # IMAP mailboxes as JSON: [{"host": ..., "port": 993, "security": "tls", "username": ...,
    # "password": ... or "oauth2_token": ..., "folder": "INBOX", "move_to": null}]
    imap_mailboxes: list[ImapMailbox] = Field(default_factory=list)
    imap_poll_seconds: float = Field(default=60.0, gt=0)
    imap_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_max_bytes: int = Field(default=100 * 1024**2, ge=1)
    classifier_threshold: float = Field(default=0.9, gt=0, le=1)  # see bench/classification.py
    classifier_key: SecretStr | None = None  # HMAC key of model files; else from jwt secret
    classifier_retrain_seconds: int = Field(default=24 * 3600, ge=0)  # 0: only by the CLI

    # Backups (eakte/backup): the default target (also where the destruction register is
    # written), the AES-256 key (base64 of 32 bytes) for client-side encryption, parallelism.
    backup_target: str | None = None
    backup_key: SecretStr | None = None
    backup_workers: int = Field(default=8, ge=1, le=64)
    # Idempotency-Key: how long a stored response answers a retried request.
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)

    # Reliability and security (issue 7): limits checked before any route runs. Uploads
    # (multipart) have max_upload_bytes instead of max_body_bytes.
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Test hook of tests/faults: a pipeline worker that reaches an item in this state holds it
    # (lease kept) for test_pause_seconds before the next step, so a test can kill it exactly
    # at that step boundary. Never set in production.
    test_pause_after_step: str | None = None
    test_pause_seconds: float = Field(default=60.0, ge=0)

    @cached_property
    def hs256_secret(self) -> str | None:
        """The HS256 secret: configured, or kept in `secret_file` (created on first use).

        Only used when no RS256 key source is configured, so a production
        deployment with an identity provider never falls back to a local secret.
        """
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.jwt_public_key or self.jwks_url:
            return None
        return _kept_secret(self.secret_file)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.database_url.startswith("sqlite")


def _kept_secret(path: Path) -> str:
    """The secret in `path`, made on first use: private from its first byte, and made once.

    Written to a private temporary file and linked into place, so no other user can read
    it while it is written, and processes starting together all read the one that won.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use its
                os.link(temp, path)
        finally:
            os.unlink(temp)
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"the secret file {path} is empty; remove it to have a new one made")
    return secret

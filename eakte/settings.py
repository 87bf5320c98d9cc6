"""Configuration read once from the environment (EAKTE_*) and passed down."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    token_ttl_seconds: int = 8 * 3600

    max_upload_bytes: int = Field(default=4 * 1024**3, ge=1)
    orphan_grace_seconds: int = Field(default=24 * 3600, ge=0)

    log_level: str = "INFO"

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
        path = self.secret_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.database_url.startswith("sqlite")

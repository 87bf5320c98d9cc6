"""Tokens of an identity provider: RS256, keys from its JWKS URL or one configured key."""

from __future__ import annotations

import base64
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import jwt.jwk_set_cache
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from eakte.app import create_app
from eakte.db import make_engine
from storage import FilesystemStore
from tests.conftest import make_settings

ISSUER = "https://idp.stadt.example/realms/rathaus"
AUDIENCE = "eakte"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Jwks:
    """A JWKS endpoint on loopback, serving the public halves of its keys."""

    keys: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]
    url: str = ""
    fetches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def document(self) -> bytes:
        entries = []
        for kid, key in self.keys.items():
            if isinstance(key, ec.EllipticCurvePrivateKey):
                jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
                entries.append({**jwk, "kid": kid, "use": "sig", "alg": "ES256"})
            else:
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                entries.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        with self._lock:
            self.fetches += 1
        return json.dumps({"keys": entries}).encode()


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    served = Jwks({"k1": _new_key()})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            body = served.document()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_port}/protocol/openid-connect/certs"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _token(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "m.muster", "roles": ["admin"], "units": [], "iss": ISSUER,
            "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}  # fmt: skip
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def _hs256(secret: bytes, claims: dict[str, Any]) -> str:
    """An HS256 token signed by hand: PyJWT itself refuses a PEM key as HMAC secret."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signed = ".".join(part(json.dumps(x).encode())
                      for x in ({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims))
    return f"{signed}.{part(hmac.digest(secret, signed.encode(), 'sha256'))}"


def _client(sqlite_url: str, tmp_path: Path, **settings: object) -> TestClient:
    app = create_app(
        make_settings(sqlite_url, jwt_secret=None, secret_file=tmp_path / "unused.key",
                      jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **settings),
        engine=make_engine(sqlite_url),
        store=FilesystemStore(tmp_path / "blobs"),
    )  # fmt: skip
    return TestClient(app, raise_server_exceptions=False)


def _me(client: TestClient, token: str) -> tuple[int, dict[str, Any]]:
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json()


def test_tokens_are_checked_against_the_identity_providers_jwks(
    jwks: Jwks, sqlite_url: str, tmp_path: Path
) -> None:
    with _client(sqlite_url, tmp_path, jwks_url=jwks.url) as client:
        status, me = _me(client, _token(jwks.keys["k1"], "k1"))
        assert status == 200 and me["subject"] == "m.muster"
        assert jwks.fetches >= 1

        public_pem = _pem(jwks.keys["k1"])
        refused = {
            "signed by another key under the same kid": _token(_new_key(), "k1"),
            "naming a key the provider does not publish": _token(_new_key(), "k9"),
            "expired": _token(jwks.keys["k1"], "k1", exp=int(time.time()) - 60),
            "for another audience": _token(jwks.keys["k1"], "k1", aud="other-app"),
            "from another issuer": _token(jwks.keys["k1"], "k1", iss="https://evil.example"),
            # Algorithm confusion: HS256 with the public key as the shared secret.
            "HS256 with the public key": _hs256(public_pem, {"sub": "x", "roles": ["admin"],
                                                             "iss": ISSUER, "aud": AUDIENCE,
                                                             "exp": int(time.time()) + 300}),
        }
        for name, token in refused.items():
            status, body = _me(client, token)
            assert status == 401, name
            assert body["status"] == 401 and "invalid token" in body["detail"], name



def test_one_configured_public_key_verifies_tokens(
    jwks: Jwks, sqlite_url: str, tmp_path: Path
) -> None:
    key = _new_key()
    with _client(sqlite_url, tmp_path, jwt_public_key=_pem(key).decode()) as client:
        assert _me(client, _token(key, "any"))[0] == 200
        assert _me(client, _token(_new_key(), "any"))[0] == 401


def test_an_unreachable_identity_provider_is_503_not_401(
    sqlite_url: str, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/certs"
    with _client(sqlite_url, tmp_path, jwks_url=url) as client:
        status, body = _me(client, _token(_new_key(), "k1"))
    assert status == 503 and body["type"] == "/problems/unavailable"
    assert "identity provider" in body["detail"]


def test_a_key_the_provider_withdrew_stops_verifying_once_the_cached_keys_expire(
    jwks: Jwks, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A provider withdraws a key that leaked; tokens it signed must stop working when the
    # key set cached for 10 minutes is fetched again, not be trusted for as long as eakte runs.
    jwks.keys["retired"] = retired = _new_key()
    try:
        with _client(sqlite_url, tmp_path, jwks_url=jwks.url) as client:
            assert _me(client, _token(retired, "retired"))[0] == 200
            del jwks.keys["retired"]
            later = time.monotonic() + 601
            monkeypatch.setattr(jwt.jwk_set_cache, "time", SimpleNamespace(monotonic=lambda: later))
            fetches = jwks.fetches
            status, body = _me(client, _token(retired, "retired"))
            assert status == 401, body
            assert jwks.fetches > fetches
            assert _me(client, _token(jwks.keys["k1"], "k1"))[0] == 200
    finally:
        jwks.keys.pop("retired", None)


def test_a_token_naming_a_non_rsa_key_of_the_provider_is_refused(
    jwks: Jwks, sqlite_url: str, tmp_path: Path
) -> None:
    # Providers publish EC keys beside their RSA keys (Keycloak's ES256 key provider); a token
    # claiming RS256 with such a key's kid failed inside PyJWT with a 500.
    jwks.keys["ec1"] = ec.generate_private_key(ec.SECP256R1())
    try:
        with _client(sqlite_url, tmp_path, jwks_url=jwks.url) as client:
            header = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"ec1"}').rstrip(b"=")
            body = _token(jwks.keys["k1"], "k1").split(".")[1]
            status, problem = _me(client, f"{header.decode()}.{body}.AAAA")
            assert status == 401, problem
            assert problem["type"] == "/problems/unauthenticated"
            assert _me(client, _token(jwks.keys["k1"], "k1"))[0] == 200
    finally:
        jwks.keys.pop("ec1", None)

"""Token claims of an unexpected shape are refused with 401, never trusted, never a 500."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.conftest import TEST_SECRET, Api


def _signed(**claims: Any) -> str:
    """A token signed with the tests' HS256 secret, with exactly the claims given."""
    now = int(time.time())
    return jwt.encode({"sub": "m.muster", "exp": now + 300, **claims}, TEST_SECRET, "HS256")


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": [["admin"]]},
        {"roles": [{"role": "admin"}]},
        {"roles": "admin"},
        {"roles": ["clerk"], "units": [{"code": "10"}]},
        {"roles": ["clerk"], "units": [None]},
        {"roles": ["clerk"], "units": "10"},
        {"roles": ["clerk"], "sub": ""},
    ],
    ids=["role-list", "role-object", "role-string", "unit-object", "unit-null",
         "unit-string", "empty-subject"],
)  # fmt: skip
def test_malformed_claims_are_refused_as_unauthenticated(api: Api, claims: dict[str, Any]) -> None:
    token = _signed(**claims)
    r = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/unauthenticated"

    r = api.client.post("/signin", data={"token": token}, follow_redirects=False)
    assert r.status_code == 401
    assert "set-cookie" not in r.headers


def test_unknown_and_miscased_roles_grant_nothing(api: Api) -> None:
    token = _signed(roles=["Admin", "ADMIN", "admin ", "superuser"], units=["10"])
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["roles"] == []
    r = api.client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


def test_a_malformed_api_key_is_unauthenticated_on_every_database(api: Api) -> None:
    # A NUL character reached the key lookup, which PostgreSQL refused (a 422, not a 401).
    for key in ("ek_\x00_secret", "ek_0123456789abcde\x00_secret", "ek_", "ek_nothex"):
        r = api.client.post("/signin", data={"token": key}, follow_redirects=False)
        assert r.status_code == 401, key
        assert "set-cookie" not in r.headers

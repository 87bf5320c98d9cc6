"""Who is signed in: a bearer token, or the page session cookie holding one."""

from __future__ import annotations

from fastapi import Request

from eakte.auth.principal import Principal
from eakte.deps import principal_from_credential
from eakte.errors import Unauthenticated

COOKIE = "eakte_session"


def bearer_of(request: Request) -> str | None:
    """The bearer credential of the request, if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def signed_in_principal(request: Request) -> Principal:
    """The principal of the bearer header or, for browsers, of the session cookie."""
    presented = bearer_of(request) or request.cookies.get(COOKIE)
    if not presented:
        raise Unauthenticated("sign in first (bearer token or session cookie)")
    principal = principal_from_credential(request, presented)
    request.state.principal = principal
    return principal

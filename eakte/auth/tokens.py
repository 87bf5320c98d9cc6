"""Bearer tokens: JWT verification (HS256 or RS256/JWKS) and development token issue."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from eakte.auth.principal import CLEARANCE_LEVELS, Principal, Role
from eakte.errors import Unauthenticated, Unavailable
from eakte.settings import Settings


class TokenVerifier:
    """Verifies JWTs with the key source the settings name, allowing only the matching algorithm.

    Each key source pins its algorithm, so a token signed with HS256 using the
    public RSA key as the secret (algorithm confusion) is refused.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwks_url:
            # The key set is cached for 10 minutes, then fetched again. No per-key cache on top
            # (cache_keys): it keeps every key it has served without expiry, so a key the
            # provider withdrew would go on verifying tokens until eakte restarts.
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=False, lifespan=600)

    @property
    def may_block(self) -> bool:
        """True if verifying may wait for the network (keys fetched from a JWKS URL)."""
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        """Return the principal of a valid token; raise Unauthenticated otherwise."""
        s = self._settings
        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                if not isinstance(key, RSAPublicKey):
                    # The provider may publish EC or EdDSA keys too; PyJWT fails on them with
                    # a TypeError when the token claims RS256, so refuse them here.
                    raise jwt.InvalidKeyError("the key the token names is not an RSA key")
                algorithms = ["RS256"]
            elif s.jwt_public_key:
                key, algorithms = s.jwt_public_key, ["RS256"]
            else:
                key, algorithms = s.hs256_secret, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            # The identity provider is down, not the token bad: a retry may succeed, and a
            # client told 401 would send its user to sign in again for nothing.
            raise Unavailable(f"the identity provider's keys cannot be fetched: {exc}") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        return principal_from_claims(claims, s)


def _claim(claims: dict[str, Any], path: str) -> Any:
    """Read a possibly nested claim such as `realm_access.roles` (Keycloak)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def principal_from_claims(claims: dict[str, Any], settings: Settings) -> Principal:
    """Map token claims to a principal; unknown roles are ignored, not trusted."""
    raw_roles = _claim(claims, settings.jwt_roles_claim) or []
    raw_units = _claim(claims, settings.jwt_units_claim) or []
    # Lists of strings only: an object in the list would otherwise fail the role lookup (a 500)
    # or turn into a unit code such as "None" or "{'code': '10'}".
    if not _strings(raw_roles) or not _strings(raw_units):
        raise Unauthenticated("invalid token: roles and units must be lists of strings")
    if not str(claims["sub"]).strip():
        raise Unauthenticated("invalid token: the subject is empty")
    known = {r.value for r in Role}
    roles = frozenset(Role(r) for r in raw_roles if r in known)
    # Without the claim a principal reads only normal files; an unknown level is refused
    # rather than guessed, so a typo at the identity provider cannot widen access.
    clearance = _claim(claims, settings.jwt_clearance_claim) or CLEARANCE_LEVELS[0]
    if clearance not in CLEARANCE_LEVELS:
        raise Unauthenticated(
            f"invalid token: clearance must be one of {', '.join(CLEARANCE_LEVELS)}"
        )
    return Principal(
        subject=str(claims["sub"]),
        roles=roles,
        units=frozenset(str(u) for u in raw_units),
        clearance=str(clearance),
    )


def issue_token(
    settings: Settings,
    subject: str,
    roles: Iterable[str],
    units: Iterable[str],
    ttl_seconds: int | None = None,
    clearance: str | None = None,
) -> str:
    """Issue an HS256 token for development and tests (needs the local secret)."""
    secret = settings.hs256_secret
    if secret is None:
        raise RuntimeError(
            "tokens are issued by the identity provider here (RS256/JWKS configured); "
            "eakte can only issue development tokens with an HS256 secret"
        )
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        settings.jwt_roles_claim: [Role(r).value for r in roles],
        settings.jwt_units_claim: list(units),
        "iat": now,
        "exp": now + (ttl_seconds or settings.token_ttl_seconds),
    }
    if clearance is not None:
        if clearance not in CLEARANCE_LEVELS:
            raise ValueError(f"clearance must be one of {', '.join(CLEARANCE_LEVELS)}")
        claims[settings.jwt_clearance_claim] = clearance
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, secret, algorithm="HS256")

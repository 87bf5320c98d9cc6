"""Domain exceptions and their mapping to RFC 9457 problem details."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of the errors a service raises on purpose; each maps to one HTTP status."""

    status = 500
    title = "Internal error"
    type_slug = "internal"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


class InvalidInput(DomainError):
    """The request is well-formed but its content is not acceptable."""

    status = 422
    title = "Invalid input"
    type_slug = "invalid-input"


class BadRequest(DomainError):
    """The request itself is malformed."""

    status = 400
    title = "Bad request"
    type_slug = "bad-request"


class Unauthenticated(DomainError):
    """No or no valid credentials."""

    status = 401
    title = "Authentication required"
    type_slug = "unauthenticated"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers = {"WWW-Authenticate": 'Bearer realm="eakte"'}


class Forbidden(DomainError):
    """Authenticated, but the role or org unit does not allow this."""

    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFound(DomainError):
    """The object does not exist or is not visible to the principal."""

    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(DomainError):
    """The change conflicts with the current state (duplicates, wrong status)."""

    status = 409
    title = "Conflict"
    type_slug = "conflict"


class PayloadTooLarge(DomainError):
    """The upload exceeds the configured size limit."""

    status = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


class RangeNotSatisfiable(DomainError):
    """The requested byte range lies outside the content."""

    status = 416
    title = "Range not satisfiable"
    type_slug = "range-not-satisfiable"

    def __init__(self, detail: str, size: int) -> None:
        super().__init__(detail, size=size)
        self.headers = {"Content-Range": f"bytes */{size}"}


class Unavailable(DomainError):
    """A backing service (database, object storage) is unavailable; retry later."""

    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers = {"Retry-After": "30"}


# Relative type URIs (RFC 9457 section 3.1.1): documented under /problems/ in the README.
PROBLEM_TYPE_BASE = "/problems/"


def problem_body(
    status: int, title: str, detail: str, instance: str, type_slug: str, **extra: Any
) -> dict[str, Any]:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + type_slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extra)
    return body

"""Request limits enforced before any route runs: header size and non-upload body size."""

from __future__ import annotations

import json
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eakte.errors import problem_body

log = logging.getLogger(__name__)

#: The routes that read their body through eakte.multipart (`receive_upload`,
#: `MultipartStream`), which streams the file part to the blob store under its own limit,
#: max_upload_bytes. Every other body gets the small cap, whatever its Content-Type: FastAPI
#: reads a body whole before it checks who is calling, and `request.form()` spools file parts
#: to disk without limit, so exempting "multipart" by its Content-Type would let anyone send
#: any route an unbounded body. Listed by method and path because the middleware runs before
#: routing, where no mark on the route could be seen. A new upload route must be added here
#: (tests/security/test_uploads.py tries each one).
_UPLOAD_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"/api/v1/files/[^/]+/documents")),
    ("POST", re.compile(r"/api/v1/documents/[^/]+/versions")),
    ("POST", re.compile(r"/api/v1/documents/[^/]+/scan")),
    ("POST", re.compile(r"/api/v1/inbox")),
)


def _is_upload(scope: Scope) -> bool:
    """Whether the request goes to one of the streaming upload routes."""
    method, path = scope["method"], scope["path"]
    return any(method == m and pattern.fullmatch(path) for m, pattern in _UPLOAD_ROUTES)


class RequestLimits:
    """ASGI middleware: 431 for oversized request headers, 413 for oversized small bodies.

    The HTTP server (uvicorn with httptools) accepts headers of any size, and FastAPI reads a
    JSON body completely before validating it; both would let one request pin memory.
    """

    def __init__(self, app: ASGIApp, *, max_header_bytes: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if sum(len(k) + len(v) + 4 for k, v in headers) > self.max_header_bytes:
            await _refuse(scope, send, 431, "Request header fields too large",
                          f"the request headers exceed {self.max_header_bytes} bytes",
                          "headers-too-large")
            return
        if _is_upload(scope):
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = next((v for k, v in headers if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(scope, send, 413, "Payload too large",
                          f"this request's body may have at most {limit} bytes",
                          "payload-too-large")
            return
        received = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not started:
                    # Answer now and tell the app the client went away, so it stops reading;
                    # whatever the app would send afterwards is dropped.
                    refused = True
                    await _refuse(scope, send, 413, "Payload too large",
                                  f"this request's body may have at most {limit} bytes",
                                  "payload-too-large")
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:
            if not refused:
                raise
            log.info("dropped a request whose body exceeded %d bytes", limit)


async def _refuse(scope: Scope, send: Send, status: int, title: str, detail: str,
                  slug: str) -> None:
    body = json.dumps(problem_body(status, title, detail, scope.get("path", ""), slug)).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})

"""HTTP routes of the CTI bridge: PBX webhooks, SSE for browsers, extensions, desktops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from cti_bridge import keys, service, webhook
from cti_bridge.bridge import Bridge
from cti_bridge.events import CallEvent
from cti_bridge.models import Extension
from cti_bridge.schemas import (
    EXTENSION_PATTERN,
    DesktopEnroll,
    DesktopEnrolled,
    DesktopOut,
    ExtensionIn,
    ExtensionOut,
    WebhookResult,
)
from eakte.auth.principal import Principal, Role
from eakte.db import on_commit, unit_of_work
from eakte.deps import PrincipalDep, SessionDep, SettingsDep, principal_from_credential
from eakte.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    Unavailable,
)
from eakte.pages.auth import bearer_of, signed_in_principal

router = APIRouter(tags=["cti"])

ExtensionPath = Annotated[str, Path(pattern=EXTENSION_PATTERN)]
DesktopPath = Annotated[str, Path(pattern=f"^{keys.DESKTOP_ID}$")]
SSE_KEEPALIVE_SECONDS = 15.0


def _bridge(request: Request) -> Bridge:
    bridge: Bridge | None = getattr(request.app.state, "cti_bridge", None)
    if bridge is None or not bridge.running:
        raise Unavailable("the CTI bridge does not run in this process (see `eakte cti`)")
    return bridge


async def _authenticate_pbx(request: Request, body: bytes) -> str:
    """Who sent the webhook: the HMAC of the shared secret, or a service principal's token."""
    secret = request.app.state.settings.cti_webhook_secret
    signature = request.headers.get(webhook.SIGNATURE_HEADER)
    if signature is not None:
        if secret is None:
            raise Unauthenticated("webhook signatures are not configured on this bridge")
        if not webhook.signature_valid(body, signature, secret.get_secret_value()):
            raise Unauthenticated("the webhook signature does not match the body")
        return "hmac"
    presented = bearer_of(request) or request.headers.get("x-api-key")
    if not presented:
        raise Unauthenticated(
            f"sign the body ({webhook.SIGNATURE_HEADER}) or send a service bearer token"
        )
    principal: Principal = await run_in_threadpool(principal_from_credential, request, presented)
    if Role.SERVICE not in principal.roles:
        raise Forbidden("only service accounts (role service) may post call events")
    return principal.subject


@router.post(
    "/cti/webhook",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/WebhookCall"}},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["event", "callId", "to"],
                        "properties": {
                            k: {"type": "string"}
                            for k in ("event", "callId", "from", "to", "direction")
                        },
                    }
                },
            },
        }
    },
)
async def post_call_event(request: Request) -> Response:
    """A PBX reports a call: JSON (generic) or form-encoded (sipgate style).

    Authenticated by `X-Eakte-Signature: sha256=<HMAC-SHA256 of the body>` with the
    shared secret, or by a service account's bearer token. The pop-up is published once
    the lookup has committed.
    """
    bridge = _bridge(request)
    body = await _read_body(request)
    await _authenticate_pbx(request, body)
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    event: CallEvent | None
    if content_type == "application/json":
        event = webhook.parse_json(body)
    elif content_type == "application/x-www-form-urlencoded":
        event = webhook.parse_form(body)
        if event is None:
            return _accepted(WebhookResult(call_id="", published=False, extension=""))
    else:
        raise BadRequest("send application/json or application/x-www-form-urlencoded")
    # The lookup blocks on the database: it runs in a worker thread, not on the event loop.
    return _accepted(await run_in_threadpool(bridge.handle, event))


async def _read_body(request: Request) -> bytes:
    """The body of a call event; PayloadTooLarge as soon as it passes MAX_BODY.

    A chunked body declares no length: it is read piece by piece and refused at the
    first piece beyond the limit, so a sender cannot make the bridge hold more.
    """
    too_large = PayloadTooLarge(f"a call event is at most {webhook.MAX_BODY} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > webhook.MAX_BODY:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > webhook.MAX_BODY:
            raise too_large
    return bytes(body)


def _accepted(result: WebhookResult) -> Response:
    # Encoded here once: the result is already valid, so the route's response_model (kept
    # for the OpenAPI document) need not validate and serialise it a second time.
    return Response(
        result.__pydantic_serializer__.to_json(result),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


def _my_extensions(request: Request, principal: Principal) -> list[str]:
    with unit_of_work(request.app.state.session_factory) as session:
        return service.extensions_of(session, principal)


def _still_entitled(request: Request) -> bool:
    """True while the stream's credential is valid and its clerk still answers an extension.

    Blocking (the credential may be an API key in the database, the mapping is). A
    credential that cannot be checked right now (the identity provider is down) counts
    as invalid: the browser reconnects, and is let in again once it can be checked.
    """
    try:
        principal = signed_in_principal(request)
    except (Unauthenticated, Forbidden, Unavailable):
        return False
    return bool(_my_extensions(request, principal))


@router.get("/cti/events", response_class=StreamingResponse)
async def call_events(request: Request) -> StreamingResponse:
    """Server-Sent Events with the pop-ups of the signed-in clerk's extensions.

    The pop-ups are those the lookup addressed to this clerk, so an extension moved to
    someone else stops arriving at once. At every keep-alive the credential and the
    mapping are checked again: once the token has expired (or the API key was revoked)
    or the clerk answers no extension any more, the stream ends, and the browser's
    reconnection is refused until the clerk signs in again.
    """
    bridge = _bridge(request)
    principal = await run_in_threadpool(signed_in_principal, request)
    extensions = await run_in_threadpool(_my_extensions, request, principal)
    if not extensions:
        raise NotFound("no phone extension is mapped to you")
    queue = bridge.sse.subscribe(principal.subject)
    loop = asyncio.get_running_loop()

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            check_at = loop.time() + SSE_KEEPALIVE_SECONDS
            while True:
                try:
                    payload = await asyncio.wait_for(queue.get(), max(0.0, check_at - loop.time()))
                except TimeoutError:
                    payload = None
                if payload is not None:
                    yield f"event: call\ndata: {payload}\n\n"
                # Checked on time even while events keep coming, not only when idle.
                if loop.time() < check_at:
                    continue
                if not await run_in_threadpool(_still_entitled, request):
                    return
                if payload is None:
                    yield ": keep-alive\n\n"
                check_at = loop.time() + SSE_KEEPALIVE_SECONDS
        finally:
            bridge.sse.unsubscribe(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/api/v1/cti/extensions", response_model=list[ExtensionOut])
def list_extensions(session: SessionDep, principal: PrincipalDep) -> Sequence[Extension]:
    """Every mapped extension (admin)."""
    return service.list_extensions(session, principal)


@router.put("/api/v1/cti/extensions/{number}", response_model=ExtensionOut)
def map_extension(
    number: ExtensionPath, data: ExtensionIn, session: SessionDep, principal: PrincipalDep
) -> Extension:
    """Say which clerk answers an extension and in which org units (admin)."""
    return service.map_extension(session, principal, number, data)


@router.delete("/api/v1/cti/extensions/{number}", response_model=ExtensionOut)
def unmap_extension(
    number: ExtensionPath, session: SessionDep, principal: PrincipalDep
) -> Extension:
    """Remove an extension's mapping (admin)."""
    return service.unmap_extension(session, principal, number)


def _reload_keys_after_commit(request: Request, session: Session) -> None:
    """Have this process's publisher re-read the enrolled keys right after the commit."""
    bridge: Bridge | None = getattr(request.app.state, "cti_bridge", None)
    if bridge is not None and bridge.running:
        # Runs after the key file is written or removed (callbacks keep their order), so
        # the change takes effect at once instead of after the next directory poll.
        def reload() -> None:
            bridge.publisher.reload_keys(force=True)

        on_commit(session, reload)


@router.post(
    "/api/v1/cti/desktops", status_code=status.HTTP_201_CREATED, response_model=DesktopEnrolled
)
def enroll_desktop(
    request: Request,
    data: DesktopEnroll,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> DesktopEnrolled:
    """Enroll a desktop agent's CURVE public key (clerk); returns the bridge's key."""
    enrolled = service.enroll_desktop(session, principal, settings, data.public_key, data.name)
    _reload_keys_after_commit(request, session)
    return enrolled


@router.get("/api/v1/cti/desktops", response_model=list[DesktopOut])
def list_desktops(principal: PrincipalDep, settings: SettingsDep) -> list[keys.Desktop]:
    """The enrolled desktop agents: a clerk's own, every one for an admin."""
    return service.list_desktops(principal, settings)


@router.delete("/api/v1/cti/desktops/{desktop_id}", response_model=DesktopOut)
def withdraw_desktop(
    request: Request,
    desktop_id: DesktopPath,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> keys.Desktop:
    """Withdraw an enrolled desktop (the clerk who enrolled it, or an admin).

    Takes effect for a desktop that is connected right now, too: the bridge stops
    addressing its key and drops every connection; the others reconnect within a moment.
    """
    withdrawn = service.withdraw_desktop(session, principal, settings, desktop_id)
    _reload_keys_after_commit(request, session)
    return withdrawn

"""The running bridge: lookup, audit (group commit), then publish to ZeroMQ and SSE.

One Bridge lives in exactly one process: `eakte serve` (embedded, the default) or
`eakte cti` (standalone). Both run the same FastAPI app, so webhooks, SSE and the
publisher are always in the process that owns the PUB socket, and a webhook publishes
directly, without a hop between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cti_bridge import repository, service
from cti_bridge.ami import AmiAdapter
from cti_bridge.auditor import PopAuditor
from cti_bridge.broker import SseBroker
from cti_bridge.events import CallEvent, CallState
from cti_bridge.publisher import Publisher
from cti_bridge.schemas import WebhookResult
from eakte.db import make_engine, unit_of_work
from eakte.errors import Unavailable
from eakte.settings import Settings

log = logging.getLogger(__name__)

KEY_RELOAD_SECONDS = 1.0
AUDIT_TIMEOUT_SECONDS = 30.0


class Bridge:
    """Lookup, publisher, SSE fan-out and the AMI client of one process."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.publisher = Publisher(settings.cti_pub_endpoint, settings.cti_key_dir)
        self.sse = SseBroker()
        self.auditor = PopAuditor(session_factory)
        self._fast_lookup: repository.PostgresCallerLookup | None = None
        self.ami: AmiAdapter | None = None
        self.running = False
        self._reload_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind the PUB socket, watch the enrolled keys, connect to Asterisk if configured."""
        self.sse.bind_loop(asyncio.get_running_loop())
        self.publisher.start()
        self._fast_lookup = _fast_lookup(self.session_factory)
        self.auditor.start()
        self.running = True
        self._reload_task = asyncio.create_task(self._reload_keys_forever())
        s = self.settings
        if s.cti_ami_host:
            self.ami = AmiAdapter(
                s.cti_ami_host,
                s.cti_ami_port,
                s.cti_ami_username or "",
                s.cti_ami_secret.get_secret_value() if s.cti_ami_secret else "",
                self._on_ami_call,
                max_backoff=s.cti_ami_max_backoff_seconds,
            )
            self.ami.start()

    async def stop(self) -> None:
        """Stop the AMI client and the publisher."""
        self.running = False
        if self.ami is not None:
            self.ami.stop()
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
        await asyncio.to_thread(self.auditor.stop)
        self.publisher.stop()
        if self._fast_lookup is not None:
            engine = self._fast_lookup.engine
            self._fast_lookup = None
            engine.dispose()

    async def _reload_keys_forever(self) -> None:
        # Desktops may be enrolled by another process sharing the key directory. Whatever
        # goes wrong in one round (a damaged file, a full disk) must not end the task: it
        # would leave enrollments and withdrawals unnoticed until the bridge restarts.
        while True:
            await asyncio.sleep(KEY_RELOAD_SECONDS)
            try:
                self.publisher.reload_keys()
            except Exception:
                log.exception("could not re-read the enrolled desktop keys; retrying")

    def handle(self, event: CallEvent) -> WebhookResult:
        """Look the call up and publish the pop-up once the transaction has committed.

        Blocking (database): run it in a worker thread, never on the event loop.
        """
        if event.state is not CallState.RINGING:
            return WebhookResult(
                call_id=event.call_id, published=False, extension=event.called_extension
            )
        pop = self._lookup(event)
        if pop.audit is None:
            self.publish(pop.extension, pop.clerk, pop.payload)  # names no one: no audit
        else:
            # Published by the auditor right after the audit events have committed; waiting
            # here lets a failed audit answer the PBX with an error, as before.
            audited = self.auditor.submit(
                pop.audit, lambda: self.publish(pop.extension, pop.clerk, pop.payload)
            )
            try:
                audited.result(timeout=AUDIT_TIMEOUT_SECONDS)
            except Exception as exc:
                # Logged by the auditor; the PBX gets an answer it may retry.
                raise Unavailable(
                    "the pop-up was not shown: its audit event could not be written"
                ) from exc
        return WebhookResult(
            call_id=event.call_id,
            published=True,
            extension=event.called_extension,
            contact_found=pop.audit is not None,
            files=pop.files,
        )

    def _lookup(self, event: CallEvent) -> service.Pop:
        if self._fast_lookup is not None:
            return service.lookup(self._fast_lookup, self.settings, event)
        with unit_of_work(self.session_factory) as session:

            def find(
                e164: str | None, extension: str, limit: int
            ) -> Sequence[repository.LookupRow]:
                return repository.caller_lookup(session, e164, extension, limit)

            return service.lookup(find, self.settings, event)

    def publish(self, extension: str, clerk: str | None, payload: bytes) -> None:
        """Send a committed pop-up (JSON) to the clerk's desktops (ZeroMQ) and browsers (SSE).

        `clerk` is who answers the extension according to the lookup; None (unmapped)
        reaches no one.
        """
        self.publisher.publish(extension, clerk, payload)
        self.sse.publish(clerk, payload)

    def _on_ami_call(self, event: CallEvent) -> None:
        # Called on the event loop: the lookup blocks, so it goes to a worker thread.
        task = asyncio.get_running_loop().run_in_executor(None, self.handle, event)
        task.add_done_callback(_log_failure)


def _fast_lookup(factory: sessionmaker[Session]) -> repository.PostgresCallerLookup | None:
    """On PostgreSQL, the lookup on an own pool of autocommit connections; None elsewhere.

    The lookup only reads, so it runs in autocommit (no BEGIN and COMMIT round trips)
    and without the app pool's ping before every checkout: one round trip per call
    instead of five. SQLite has no round trips to save and keeps the app's sessions.
    """
    engine: Engine = factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        return None
    lookup_engine = make_engine(
        engine.url.render_as_string(hide_password=False),
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
    )
    return repository.PostgresCallerLookup(lookup_engine)


def _log_failure(future: asyncio.Future[WebhookResult]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("AMI call event was not handled", exc_info=future.exception())

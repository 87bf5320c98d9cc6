"""Fixtures of the CTI tests: an app with a running bridge, enrolled desktops, call data."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cti_bridge import keys
from cti_bridge.bridge import Bridge
from cti_bridge.desk import DeskAgent, DeskConfig
from cti_bridge.runtime import attach_bridge
from cti_bridge.webhook import SIGNATURE_HEADER, sign
from eakte.app import create_app
from eakte.settings import Settings
from storage import BlobStore
from tests import factories
from tests.conftest import TEST_SECRET, Api, make_settings
from tests.support.server import clean_env, free_port, serve

WEBHOOK_SECRET = "pbx-shared-secret-0123456789"
LOCAL_AREA_CODE = "4101"


def random_local_number() -> str:
    """A valid subscriber number in the local area (6 digits), unique enough per session."""
    return str(random.randint(200_000, 999_999))


def cti_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a bridge on free loopback ports with keys under tmp_path."""
    values: dict[str, object] = {
        "cti_pub_endpoint": f"tcp://127.0.0.1:{free_port()}",
        "cti_key_dir": tmp_path / "cti",
        "cti_webhook_secret": WEBHOOK_SECRET,
        "local_area_code": LOCAL_AREA_CODE,
        "public_url": "http://eakte.test",
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@dataclass
class Call:
    """A clerk with an extension, a contact with a local number and their open file."""

    extension: str
    unit: factories.Unit
    clerk_sub: str
    contact_id: str
    local_number: str
    file: dict[str, Any]

    @property
    def e164(self) -> str:
        """The contact's number in E.164."""
        return f"+49{LOCAL_AREA_CODE}{self.local_number}"


@dataclass
class CtiApp(Api):
    """The test app with a running bridge."""

    bridge: Bridge = field(default=None)  # type: ignore[assignment]
    agents: list[DeskAgent] = field(default_factory=list)

    def call_data(self, extension: str | None = None) -> Call:
        """Org unit, clerk mapped to a fresh extension, a contact with a phone and a file."""
        unit = factories.org_unit(self)
        plan = factories.plan_item(self)
        number = random_local_number()
        r = self.client.post(
            "/api/v1/contacts",
            json={
                "name": "Erika Mustermann",
                "phones": [{"number": f"0{LOCAL_AREA_CODE} {number}"}],
            },
            headers=unit.clerk,
        )
        assert r.status_code == 201, r.text
        contact_id = r.json()["id"]
        file = factories.file(self, unit, plan["code"], contact_ids=[contact_id])
        extension = extension or str(random.randint(100_000, 999_999))
        clerk_sub = f"clerk-{extension}"
        self.map_extension(extension, clerk_sub, [unit.code])
        return Call(extension, unit, clerk_sub, contact_id, number, file)

    def map_extension(self, extension: str, subject: str, units: list[str]) -> None:
        """Map an extension through the admin API."""
        r = self.client.put(
            f"/api/v1/cti/extensions/{extension}",
            json={"subject": subject, "units": units},
            headers=self.auth(["admin"], []),
        )
        assert r.status_code == 200, r.text

    def enroll(self, subject: str, units: list[str]) -> DeskConfig:
        """Enroll a desktop for a clerk through the API, as `eakte desk enroll` does.

        Only a clerk who answers an extension may enroll: map one first.
        """
        public, secret = zmq.curve_keypair()
        r = self.client.post(
            "/api/v1/cti/desktops",
            json={"public_key": public.decode(), "name": "test-pc"},
            headers=self.auth(["clerk"], units, sub=subject),
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return DeskConfig(
            body["endpoint"],
            body["server_public_key"],
            public.decode(),
            secret.decode(),
            body["id"],
        )

    def agent(self, config: DeskConfig, extension: str, ready: bool = True) -> DeskAgent:
        """A desktop agent subscribed to `extension`, connected once `ready`."""
        agent = DeskAgent(config, extension)
        self.agents.append(agent)
        if ready:
            wait_until_subscribed(self.bridge, agent)
        return agent

    def webhook(self, body: dict[str, Any], secret: str = WEBHOOK_SECRET) -> Any:
        """POST a signed JSON call event."""
        raw = json.dumps(body).encode()
        return self.client.post(
            "/cti/webhook",
            content=raw,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, secret)},
        )


def probe(extension: str) -> bytes:
    """A pop-up-shaped message that tests recognise as their own probe."""
    return json.dumps({"probe": uuid.uuid4().hex, "extension": extension}).encode()


def wait_until_subscribed(bridge: Bridge, agent: DeskAgent, timeout: float = 10.0) -> None:
    """Publish probes until the agent gets one: PUB drops messages before SUB has joined."""
    desktop = keys.desktop(bridge.settings.cti_key_dir, agent.config.desktop_id)
    assert desktop is not None and desktop.enrolled_by is not None, "the agent is not enrolled"
    deadline = time.monotonic() + timeout
    message = probe(agent.extension)
    while time.monotonic() < deadline:
        bridge.publisher.publish(agent.extension, desktop.enrolled_by, message)
        event = agent.receive(0.1)
        if event is not None and "probe" in event:
            # Drain further probes so the test sees only its own events.
            while agent.receive(0.2) is not None:
                pass
            return
    raise AssertionError("the desktop agent did not receive the probe")


def _cti_app(
    database_url: str, engine: Engine, store: BlobStore, tmp_path: Path
) -> Iterator[CtiApp]:
    settings = cti_settings(database_url, tmp_path)
    app = create_app(settings, engine=engine, store=store)
    bridge = attach_bridge(app, settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        cti = CtiApp(client, settings, engine, store, bridge)
        try:
            yield cti
        finally:
            for agent in cti.agents:
                agent.close()


@pytest.fixture
def cti(engine: Engine, database_url: str, fs_store: BlobStore, tmp_path: Path) -> Iterator[CtiApp]:
    """The app with a running bridge, on PostgreSQL and on SQLite."""
    yield from _cti_app(database_url, engine, fs_store, tmp_path)


@contextmanager
def cti_process(cti: CtiApp, workdir: Path, http_port: int, pub_port: int) -> Iterator[str]:
    """`eakte cti` as a real process on the test database; yields its base URL."""
    env = clean_env(
        EAKTE_DATABASE_URL=cti.settings.database_url,
        EAKTE_STORAGE_URL=f"file://{workdir}/blobs",
        EAKTE_JWT_SECRET=TEST_SECRET,
        EAKTE_CTI_WEBHOOK_SECRET=WEBHOOK_SECRET,
        EAKTE_CTI_PUB_ENDPOINT=f"tcp://127.0.0.1:{pub_port}",
        EAKTE_CTI_KEY_DIR=str(workdir / "cti-keys"),
        EAKTE_LOCAL_AREA_CODE=LOCAL_AREA_CODE,
        EAKTE_PUBLIC_URL="http://eakte.test",
        EAKTE_LOG_LEVEL="WARNING",
    )
    with serve(workdir, env, command="cti", port=http_port) as (base, _):
        yield base

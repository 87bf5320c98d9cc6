"""Property-based requests against every operation of /openapi.json never produce a 5xx.

Schemathesis generates requests from the OpenAPI document (valid and edge-case inputs) and
sends them in-process to the app on PostgreSQL with a filesystem store, with the token of a
principal holding every role in one org unit and the highest clearance, so requests get past
authentication and reach the routes' logic. EAKTE_TEST_FUZZ_EXAMPLES sets examples per
operation (default 10).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from eakte.app import create_app
from eakte.auth.principal import Role
from eakte.auth.tokens import issue_token
from eakte.db import make_engine
from storage import FilesystemStore
from tests import factories
from tests.conftest import Api, make_settings
from tests.support.server import free_port

# Server-Sent Events never end, so a generated request would wait forever; the stream's
# authentication is tested in tests/cti_bridge.
ENDLESS = {("GET", "/cti/events")}

EXAMPLES = int(os.environ.get("EAKTE_TEST_FUZZ_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def fuzz_target(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app with an org unit, a plan item, a file and a document to find."""
    from fastapi.testclient import TestClient

    from cti_bridge.runtime import attach_bridge

    workdir = tmp_path_factory.mktemp("fuzz")
    app_settings = make_settings(
        pg_url,
        cti_pub_endpoint=f"tcp://127.0.0.1:{free_port()}",
        cti_key_dir=workdir / "cti",
        cti_webhook_secret="fuzz-webhook-secret-0123456789",
    )
    engine = make_engine(pg_url)
    store = FilesystemStore(workdir / "blobs")
    app = create_app(app_settings, engine=engine, store=store)
    attach_bridge(app, app_settings)
    # No `with`: the app's lifespan (the CTI bridge's sockets) is started once, by schemathesis.
    client = TestClient(app, raise_server_exceptions=False)
    api = Api(client, app_settings, engine, store)
    unit = factories.org_unit(api, "FZ" + factories.unique("")[:6])
    file = factories.file(api, unit, factories.plan_item(api)["code"])
    factories.upload(api, unit.clerk, str(file["id"]), b"fuzz me")
    app.state.fuzz_unit = unit.code
    app.state.fuzz_schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield api
    engine.dispose()


def _fuzz_operation(operation: Any, api: Api, headers: dict[str, str], mode: Any) -> None:
    """Run generated cases of one operation; raises AssertionError with the shrunk failure."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers={**(case.headers or {}), **headers})
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: "
            f"{response.text[:500]}\nreproduce: {case.as_curl_command()}"
        )

    run()


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_operation_answers_with_a_server_error(fuzz_target: Api, mode: str) -> None:
    # The schemathesis pytest plugin's fixture loader relies on pytest internals that pytest 9
    # removed, so the operations are driven here with hypothesis directly.
    unit = fuzz_target.client.app.state.fuzz_unit  # type: ignore[attr-defined]
    token = issue_token(fuzz_target.settings, "fuzzer", [r.value for r in Role], [unit],
                        clearance="secret")
    headers = {"Authorization": f"Bearer {token}"}
    schema = fuzz_target.client.app.state.fuzz_schema  # type: ignore[attr-defined]
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in ENDLESS:
            continue
        operations += 1
        try:
            _fuzz_operation(operation, fuzz_target, headers, GenerationMode(mode))
        except Unsatisfiable:
            continue  # nothing to make invalid (no parameters, no body): positive covers it
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0][:300] + "\n" + str(exc)[-600:])
    assert operations > 40
    assert not failures, "\n\n".join(failures)


def test_fuzz_target_is_reachable(fuzz_target: Api, tmp_path: Path) -> None:
    r = fuzz_target.client.get("/openapi.json")
    assert r.status_code == 200
    assert len(r.json()["paths"]) > 40

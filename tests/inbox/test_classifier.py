"""The learned classifier: trained on filed documents, signed, proposing with a confidence."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from eakte.db import make_session_factory
from eakte.errors import InvalidInput
from inbox import classifier
from inbox.classifier import ModelRefused, Sample
from tests import factories
from tests.inbox import corpus
from tests.inbox.conftest import Office
from tests.inbox.corpus.letters import generate
from tests.inbox.test_mail import submit_eml
from tests.support.server import clean_env

KEY = b"k" * 32


def _samples() -> list[Sample]:
    letters = generate(60, seed=3)
    return [Sample(x.text, x.subject, classifier.sender_domain(x.sender), f"f-{x.plan_code}",
                   f"{x.plan_code}-2026/0001", x.plan_code, x.kind) for x in letters]


def test_a_signed_model_loads_and_proposes_three_with_confidence() -> None:
    model = classifier.train(_samples(), version=3)
    loaded = classifier.load(classifier.dump(model, KEY), KEY)
    proposals = loaded.propose("Unser Hund ist leider verstorben, bitte melden Sie ihn ab.",
                               "Hundesteuer", "web.de")
    assert len(proposals) == 3
    assert proposals[0].plan_code == "22.30"
    assert proposals[0].confidence > proposals[1].confidence >= proposals[2].confidence
    assert sum(p.confidence for p in proposals) <= 1.0 + 1e-9
    assert proposals[0].why.startswith("model v3")


class _Exploit:
    """A pickle that would create a file when unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_a_tampered_or_foreign_model_is_refused_before_unpickling(tmp_path: Path) -> None:
    signed = classifier.dump(classifier.train(_samples()), KEY)
    tampered = bytearray(signed)
    tampered[-10] ^= 0x01
    with pytest.raises(ModelRefused, match="signature"):
        classifier.load(bytes(tampered), KEY)
    with pytest.raises(ModelRefused, match="signature"):
        classifier.load(signed, b"another key")

    marker = tmp_path / "pwned"
    mac_line_and_header = signed[len(classifier.MODEL_MAGIC):].split(b"\n", 2)
    evil = (classifier.MODEL_MAGIC + mac_line_and_header[0] + b"\n" + mac_line_and_header[1]
            + b"\n" + pickle.dumps(_Exploit(marker)))
    with pytest.raises(ModelRefused):
        classifier.load(evil, KEY)
    assert not marker.exists()
    with pytest.raises(ModelRefused, match="not a classifier"):
        classifier.load(b"\x80\x04garbage", KEY)


def test_training_needs_two_files_with_three_documents() -> None:
    with pytest.raises(InvalidInput, match="not enough"):
        classifier.train(_samples()[:4])


def _file_mails(office: Office, file: dict[str, Any], plan_code: str, count: int) -> None:
    letters = [x for x in generate(200, seed=9) if x.plan_code == plan_code][:count]
    for letter in letters:
        submit_eml(office, corpus.simple(f"{file['reference']} {letter.subject}", letter.text,
                                         sender=letter.sender))


def test_model_files_unreferenced_mail_or_sends_it_to_triage_with_proposals(
    office: Office,
) -> None:
    api = office.api
    dogs = office.file
    kita = factories.file(api, office.unit, dogs["plan_code"], title="Kita-Gebühren")
    _file_mails(office, dogs, "22.30", 4)
    _file_mails(office, kita, "51.20", 4)
    worker = office.worker()
    worker.run_until_idle()

    model = classifier.train_and_save(make_session_factory(api.engine), api.store, api.settings)
    assert {dogs["id"], kita["id"]} <= set(model.files)
    assert classifier.versions(api.store) == [1]

    text = "Unser Hund ist leider verstorben, bitte melden Sie ihn zur Hundesteuer ab."
    sure = submit_eml(office, corpus.simple("Abmeldung", text))
    office.worker(classifier_threshold=0.3).run_until_idle()
    shown = office.item(sure["id"])
    assert shown["state"] == "filed", shown["classification"]
    assert shown["classification"]["method"] == "model"
    assert shown["classification"]["file_id"] == dogs["id"]

    unsure = submit_eml(office, corpus.simple("Abmeldung", text))
    office.worker(classifier_threshold=1.0).run_until_idle()
    shown = office.item(unsure["id"])
    assert shown["state"] == "triage"
    proposals = shown["classification"]["proposals"]
    assert 2 <= len(proposals) <= 3
    assert proposals[0]["file_id"] == dogs["id"] and proposals[0]["why"].startswith("model")
    assert "below" in shown["classification"]["why"]

    # The triage assignment becomes training data for the next version.
    r = api.client.post(f"/api/v1/inbox/{unsure['id']}/assign", headers=office.mailroom,
                        json={"file_id": kita["id"]})
    assert r.status_code == 200, r.text
    retrained = classifier.train_and_save(make_session_factory(api.engine), api.store,
                                          api.settings)
    assert retrained.version == 2
    assert retrained.counts[kita["id"]] == model.counts[kita["id"]] + 1


def test_cli_trains_a_signed_model_version(tmp_path: Path) -> None:
    env = clean_env(EAKTE_DATABASE_URL=f"sqlite:///{tmp_path / 'e.db'}",
                    EAKTE_STORAGE_URL=f"file://{tmp_path / 'blobs'}",
                    EAKTE_CLASSIFIER_KEY="test-key")
    cwd = Path(__file__).parents[2]
    upgrade = subprocess.run([sys.executable, "-m", "eakte", "db", "upgrade"], env=env,
                             cwd=cwd, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    result = subprocess.run([sys.executable, "-m", "eakte", "classifier", "train"], env=env,
                            cwd=cwd, capture_output=True, text=True, timeout=120)
    # An empty database has nothing to learn from: a clear message and the bad-input code.
    assert result.returncode == 2, result.stderr
    assert "not enough filed documents" in result.stderr
    assert not (tmp_path / "blobs" / "classifier").exists() or not os.listdir(
        tmp_path / "blobs" / "classifier")


def test_an_idle_worker_trains_a_model_when_none_is_fresh(office: Office) -> None:
    dogs = office.file
    kita = factories.file(office.api, office.unit, dogs["plan_code"], title="Kita")
    _file_mails(office, dogs, "22.30", 3)
    _file_mails(office, kita, "51.20", 3)
    worker = office.worker(classifier_retrain_seconds=3600)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not classifier.versions(office.api.store):
            assert time.monotonic() < deadline, "the worker trained no model"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=30)
    model = classifier.load_latest(office.api.store, classifier.signing_key(office.api.settings))
    assert model is not None and {dogs["id"], kita["id"]} <= set(model.files)


def _model_file_of_another_release(key: bytes) -> bytes:
    """A correctly signed model file whose pickle names a class this code does not have.

    What a model trained under another scikit-learn version can look like after an upgrade:
    the signature verifies, and unpickling it fails.
    """
    payload = b"cremoved_sklearn_module\nEstimator\n)\x81."
    header = json.dumps({"version": 1, "trained_at": "2026-11-02T09:00:00+00:00",
                         "samples": 6, "sha256": hashlib.sha256(payload).hexdigest()}).encode()
    mac = hmac.new(key, classifier.MODEL_MAGIC + header + b"\n" + payload, hashlib.sha256)
    return (classifier.MODEL_MAGIC + mac.hexdigest().encode() + b"\n" + header + b"\n"
            + payload)


def test_a_model_of_another_release_is_refused_and_the_worker_goes_on(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    key = classifier.signing_key(office.api.settings)
    office.api.store.put(classifier.model_key(1),
                         io.BytesIO(_model_file_of_another_release(key)))
    with caplog.at_level(logging.ERROR, logger="inbox.classifier"):
        assert classifier.load_latest(office.api.store, key) is None
    assert any("cannot be read by this release" in r.getMessage() for r in caplog.records)

    worker = office.worker(classifier_retrain_seconds=3600)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        item = submit_eml(office, corpus.simple("Ohne Zeichen", "Bitte zuordnen."))
        while office.item(item["id"])["state"] not in ("triage", "filed"):
            assert thread.is_alive(), "the worker ended"
            assert time.monotonic() < deadline, office.item(item["id"])
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=30)

"""Classification of inbound post beyond file references: who sent it, and what it is like.

A sender is matched by e-mail address, then by a phone number in the text, then by name, to a
contact; the item goes to the contact's file only when exactly one open file is linked to the
matched contacts. Two open files are a question for a person, not a guess.

Failing that, a scikit-learn model trained on filed documents (their text, the subject and the
sender's domain) proposes target file, plan item and document kind with a calibrated
confidence. Every filed document is training data, including those assigned in triage. Models
are versioned blobs (`classifier/model-<n>`) signed with HMAC-SHA256; a file whose signature
does not verify is refused before anything in it is unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import pickle
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

from eakte.db import unit_of_work, utcnow
from eakte.errors import InvalidInput, Unavailable
from eakte.settings import Settings
from inbox import repository
from storage import BlobNotFound, BlobStore

log = logging.getLogger(__name__)

MAX_PHONE_SCAN_CHARS = 20_000


@dataclass(frozen=True)
class SenderMatch:
    """The result of matching a sender: the file (if exactly one), and why."""

    file_id: uuid.UUID | None
    reference: str | None
    contact_id: uuid.UUID | None
    method: str | None  # sender-email | sender-phone | sender-name
    why: str
    # When the sender's contacts have several open files: each, as a proposal for triage.
    candidates: tuple[Proposal, ...] = ()


def phone_numbers(text: str, region: str) -> list[str]:
    """E.164 numbers found in a text (signatures, letterheads), in order, without duplicates."""
    found: list[str] = []
    for match in phonenumbers.PhoneNumberMatcher(text[:MAX_PHONE_SCAN_CHARS], region):
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if number not in found:
            found.append(number)
    return found


def match_sender(
    session: Session, *, address: str | None, name: str | None, text: str, region: str
) -> SenderMatch:
    """The one open file of the contact who sent the item, if the sender identifies it."""
    attempts: list[tuple[str, str, list[uuid.UUID]]] = []
    if address:
        attempts.append(("sender-email", f"e-mail address {address}",
                         list(repository.contacts_by_email(session, address))))
    numbers = phone_numbers(text, region)
    if numbers:
        attempts.append(("sender-phone", f"phone number {', '.join(numbers[:3])}",
                         list(repository.contacts_by_phone(session, numbers))))
    if name and len(name.strip()) >= 3:
        attempts.append(("sender-name", f"name {name.strip()}",
                         list(repository.contacts_by_name(session, name))))
    notes: list[str] = []
    candidates: list[Proposal] = []
    for method, what, contacts in attempts:
        if not contacts:
            continue
        files = repository.open_files_of_contacts(session, contacts)
        if len(files) == 1:
            contact = contacts[0] if len(contacts) == 1 else None
            return SenderMatch(files[0].id, files[0].reference, contact, method,
                               f"sender's {what} belongs to a contact with one open file "
                               f"{files[0].reference}")
        notes.append(f"sender's {what} matches a contact with {len(files)} open files")
        if files and not candidates:
            candidates = [Proposal(str(f.id), f.reference, f.plan_code, "incoming",
                                   1.0 / len(files), f"matched sender: {what} belongs to a "
                                   f"contact of {f.reference}") for f in files[:TOP]]
    why = "; ".join(notes) if notes else "the sender matches no contact"
    return SenderMatch(None, None, None, None, why, tuple(candidates))


# -- the learned model ------------------------------------------------------------------------

MODEL_PREFIX = "classifier/model-"
MODEL_MAGIC = b"EAKTE-CLASSIFIER-1\n"
MIN_SAMPLES_PER_CLASS = 3  # calibration splits each class three ways
MAX_TEXT_CHARS = 20_000
TOP = 3


class ModelRefused(Exception):
    """A model file that is not ours: bad format or a signature that does not verify."""


@dataclass(frozen=True)
class Sample:
    """One filed document as training data."""

    text: str
    subject: str | None
    sender_domain: str | None
    file_id: str
    reference: str
    plan_code: str
    kind: str


@dataclass(frozen=True)
class Proposal:
    """A proposed home for an item: file, plan item, kind, how sure, and why."""

    file_id: str
    reference: str
    plan_code: str
    kind: str
    confidence: float
    why: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready for the item's classification."""
        return {"file_id": self.file_id, "reference": self.reference,
                "plan_code": self.plan_code, "kind": self.kind,
                "confidence": round(self.confidence, 4), "why": self.why}


def sender_domain(address: str | None) -> str | None:
    """The domain of an e-mail address, lower-cased."""
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip().lower() or None


def features(text: str, subject: str | None, domain: str | None) -> str:
    """The one text the model reads: subject (weighted twice), body, and a domain token."""
    token = f" senderdomain_{re.sub(r'[^a-z0-9]', '_', domain)}" if domain else ""
    return f"{subject or ''}\n{subject or ''}\n{text[:MAX_TEXT_CHARS]}{token}"


@dataclass
class TrainedModel:
    """Target-file and kind classifiers with what they were trained on."""

    version: int
    trained_at: str
    samples: int
    files: dict[str, tuple[str, str]]  # file id -> (reference, plan code)
    file_model: Any  # sklearn Pipeline: tf-idf + calibrated linear SVM
    kind_model: Any | None  # None: every training document had the same kind
    default_kind: str
    counts: dict[str, int] = field(default_factory=dict)

    def propose(self, text: str, subject: str | None, domain: str | None,
                top: int = TOP) -> list[Proposal]:
        """The `top` most likely files for a document, each with a calibrated confidence."""
        doc = [features(text, subject, domain)]
        probabilities = self.file_model.predict_proba(doc)[0]
        classes = self.file_model.classes_
        kind = (str(self.kind_model.predict(doc)[0]) if self.kind_model is not None
                else self.default_kind)
        ranked = sorted(zip(classes, probabilities, strict=True), key=lambda c: -c[1])[:top]
        proposals = []
        for file_id, probability in ranked:
            reference, plan_code = self.files[str(file_id)]
            proposals.append(Proposal(
                str(file_id), reference, plan_code, kind, float(probability),
                f"model v{self.version}: like {self.counts.get(str(file_id), 0)} documents "
                f"filed in {reference}"))
        return proposals


def train(samples: Sequence[Sample], version: int = 1) -> TrainedModel:
    """Fit the model; files with fewer than three documents cannot be proposed yet."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    counts = Counter(s.file_id for s in samples)
    usable = [s for s in samples if counts[s.file_id] >= MIN_SAMPLES_PER_CLASS]
    if len({s.file_id for s in usable}) < 2:
        raise InvalidInput("not enough filed documents to train: at least two files with "
                           f"{MIN_SAMPLES_PER_CLASS} documents each are needed")
    docs = [features(s.text, s.subject, s.sender_domain) for s in usable]

    def pipeline() -> Any:
        return make_pipeline(
            TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=200_000,
                            strip_accents=None, lowercase=True),
            CalibratedClassifierCV(LinearSVC(C=0.5), method="sigmoid", cv=3),
        )

    file_model = pipeline().fit(docs, [s.file_id for s in usable])
    kinds = Counter(s.kind for s in usable)
    kind_model = None
    if sum(1 for n in kinds.values() if n >= MIN_SAMPLES_PER_CLASS) >= 2:
        kept = [(d, s.kind) for d, s in zip(docs, usable, strict=True)
                if kinds[s.kind] >= MIN_SAMPLES_PER_CLASS]
        kind_model = pipeline().fit([d for d, _ in kept], [k for _, k in kept])
    return TrainedModel(
        version=version, trained_at=utcnow().isoformat(), samples=len(usable),
        files={s.file_id: (s.reference, s.plan_code) for s in usable},
        file_model=file_model, kind_model=kind_model, default_kind=kinds.most_common(1)[0][0],
        counts={k: v for k, v in counts.items() if v >= MIN_SAMPLES_PER_CLASS},
    )


# -- signed model files ---------------------------------------------------------------------

def signing_key(settings: Settings) -> bytes:
    """The HMAC key for model files: configured, or derived from the token secret."""
    if settings.classifier_key is not None:
        return settings.classifier_key.get_secret_value().encode()
    secret = settings.hs256_secret
    if secret is None:
        raise Unavailable("set EAKTE_CLASSIFIER_KEY: no key to sign classifier models with")
    # Domain separation: the model key is not the token key, though derived from it.
    return hmac.new(secret.encode(), b"eakte classifier model key", hashlib.sha256).digest()


def dump(model: TrainedModel, key: bytes) -> bytes:
    """Serialise and sign a model."""
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    header = json.dumps({"version": model.version, "trained_at": model.trained_at,
                         "samples": model.samples,
                         "sha256": hashlib.sha256(payload).hexdigest()}).encode()
    mac = hmac.new(key, MODEL_MAGIC + header + b"\n" + payload, hashlib.sha256).hexdigest()
    return MODEL_MAGIC + mac.encode() + b"\n" + header + b"\n" + payload


def load(data: bytes, key: bytes) -> TrainedModel:
    """Verify a model file's signature, and only then unpickle it."""
    if not data.startswith(MODEL_MAGIC):
        raise ModelRefused("not a classifier model file")
    mac, _, rest = data[len(MODEL_MAGIC):].partition(b"\n")
    header, _, payload = rest.partition(b"\n")
    expected = hmac.new(key, MODEL_MAGIC + header + b"\n" + payload, hashlib.sha256)
    if not hmac.compare_digest(mac, expected.hexdigest().encode()):
        raise ModelRefused("the model's signature does not verify; it was changed or is "
                           "signed with another key")
    try:
        model = pickle.loads(payload)  # noqa: S301  # verified with our own key just above
    except Exception as exc:  # noqa: BLE001 - what unpickling raises depends on the payload
        # Ours, but from another release (a scikit-learn upgrade renames its classes): not
        # readable here. The next training writes a model this release reads.
        raise ModelRefused(f"the model cannot be read by this release: {exc!r}") from None
    if not isinstance(model, TrainedModel):
        raise ModelRefused("the signed file holds no classifier model")
    return model


def model_key(version: int) -> str:
    """Blob key of a model version."""
    return f"{MODEL_PREFIX}{version:06d}"


def versions(store: BlobStore) -> list[int]:
    """Stored model versions, oldest first."""
    found = []
    for blob in store.list(MODEL_PREFIX):
        suffix = blob.key[len(MODEL_PREFIX):]
        if suffix.isdigit():
            found.append(int(suffix))
    return sorted(found)


def save(store: BlobStore, model: TrainedModel, key: bytes, keep: int = 5) -> str:
    """Store a model as a new version; older versions beyond `keep` are removed."""
    blob = model_key(model.version)
    store.put(blob, io.BytesIO(dump(model, key)))
    for old in versions(store)[:-keep]:
        store.delete(model_key(old))
    return blob


def load_latest(store: BlobStore, key: bytes) -> TrainedModel | None:
    """The newest model that verifies; a refused file is logged and skipped."""
    for version in reversed(versions(store)):
        try:
            with store.open(model_key(version)) as reader:
                data = b"".join(reader)
            return load(data, key)
        except ModelRefused as exc:
            log.error("classifier model v%s refused: %s", version, exc)
        except BlobNotFound:
            continue
    return None


def training_samples(session: Session, limit: int = 20_000) -> list[Sample]:
    """Filed documents of open files with text (the newest `limit`), as training data."""
    return [Sample(text=row.text or "", subject=row.subject or row.title,
                   sender_domain=sender_domain(row.sender_address), file_id=str(row.file_id),
                   reference=row.reference, plan_code=row.plan_code, kind=row.kind)
            for row in repository.training_rows(session, limit)]


def train_and_save(factory: Callable[[], Session], store: BlobStore,
                   settings: Settings) -> TrainedModel:
    """Train on what is filed now and store the result as the next model version."""
    key = signing_key(settings)
    with unit_of_work(factory) as session:
        samples = training_samples(session)
    model = train(samples, version=(versions(store) or [0])[-1] + 1)
    save(store, model, key)
    log.info("classifier v%s trained on %s documents of %s files", model.version,
             model.samples, len(model.files))
    return model


class ModelCache:
    """The newest model, re-read when a newer version appears (checked once a minute)."""

    def __init__(self, store: BlobStore, settings: Settings, check_seconds: float = 60.0):
        self._store = store
        self._settings = settings
        self._check_seconds = check_seconds
        self._model: TrainedModel | None = None
        self._checked = -1e18
        self._lock = threading.Lock()

    def current(self) -> TrainedModel | None:
        """The model to classify with, or None if none is trained (or none verifies)."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self._check_seconds:
                self._checked = now
                try:
                    newest = (versions(self._store) or [0])[-1]
                    if newest and (self._model is None or self._model.version != newest):
                        self._model = load_latest(self._store, signing_key(self._settings))
                except Unavailable as exc:
                    log.warning("classifier not used: %s", exc.detail)
            return self._model

    def forget(self) -> None:
        """Check the store again on the next call."""
        with self._lock:
            self._checked = -1e18

    def due_for_training(self) -> bool:
        """Whether the newest model is older than the retraining interval (or missing)."""
        interval = self._settings.classifier_retrain_seconds
        if interval <= 0:
            return False
        newest = versions(self._store)
        if not newest:
            return True
        model = self.current()
        if model is None:
            return True
        trained = datetime.fromisoformat(model.trained_at)
        return utcnow() - trained > timedelta(seconds=interval)

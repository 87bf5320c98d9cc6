"""Starts the pipeline's threads: OCR workers and the configured sources."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from eakte.settings import Settings
from inbox.imap import ImapSource
from inbox.pipeline import Worker
from inbox.sources import HotFolder, Source
from storage import BlobStore


def sources(factory: sessionmaker[Session], store: BlobStore, settings: Settings) -> list[Source]:
    """The sources the settings turn on."""
    found: list[Source] = []
    if settings.hot_folder is not None:
        found.append(HotFolder(settings.hot_folder, factory, store, settings,
                               settle_seconds=settings.hot_folder_settle_seconds))
    found += [ImapSource(mailbox, factory, store, settings, name=f"imap-{i}")
              for i, mailbox in enumerate(settings.imap_mailboxes)]
    return found


def start(
    factory: sessionmaker[Session], store: BlobStore, settings: Settings, stop: threading.Event,
    workers: int | None = None,
) -> list[threading.Thread]:
    """Start worker and source threads; they end when `stop` is set."""
    threads = [
        threading.Thread(target=Worker(factory, store, settings).run, args=(stop,),
                         name=f"inbox-worker-{i}", daemon=True)
        for i in range(workers or settings.ocr_workers)
    ]
    threads += [threading.Thread(target=src.run, args=(stop,), name=f"source-{src.name}",
                                 daemon=True)
                for src in sources(factory, store, settings)]
    for thread in threads:
        thread.start()
    return threads

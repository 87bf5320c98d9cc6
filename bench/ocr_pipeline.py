"""Benchmark: OCR throughput of raw ocrmypdf vs. the inbound pipeline (upload to filed).

    .venv/bin/python bench/ocr_pipeline.py [--documents 6] [--pages 3]

Both sides OCR the same generated multi-page scans on the same cores: raw ocrmypdf one document
at a time with its pages across all cores; the pipeline with `--workers` workers sharing the
cores out (one worker takes every core, as raw does). The pipeline side runs the whole path: API
upload, typing, OCR in a child process, classification by the reference, filing into the file
(SQLite and the filesystem store in a temporary directory). Prints pages per minute and the
ratio pipeline / raw; the target is at least 0.9.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import ocrmypdf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

from eakte.app import create_app  # noqa: E402
from eakte.auth.tokens import issue_token  # noqa: E402
from eakte.db import make_engine, make_session_factory  # noqa: E402
from eakte.migrate import upgrade  # noqa: E402
from eakte.settings import Settings  # noqa: E402
from inbox.pipeline import Worker  # noqa: E402
from storage import FilesystemStore  # noqa: E402
from tests.ocr import scans  # noqa: E402


def make_documents(folder: Path, documents: int, pages: int, reference: str) -> list[Path]:
    """Image-only PDFs of `pages` A5 pages each, the first page naming the file reference."""
    paths = []
    for d in range(documents):
        rendered = []
        for p in range(pages):
            lines = list(scans.PAGE_1_LINES if p == 0 else scans.PAGE_2_LINES)
            if p == 0:
                lines[7] = f"Aktenzeichen: {reference}"
            rendered.append(scans.render_page(lines, skew_deg=1.5 if p % 2 else -1.0,
                                              seed=d * 100 + p))
        paths.append(scans.write_image_pdf(folder / f"doc{d}.pdf", rendered))
    return paths


def raw(paths: list[Path], out: Path, jobs: int) -> float:
    """Seconds ocrmypdf needs for all documents, one after another, with the pipeline's options."""
    start = time.perf_counter()
    for path in paths:
        ocrmypdf.ocr(path, out / path.name, language=["deu", "eng"], rotate_pages=True,
                     deskew=True, skip_text=True, output_type="auto", pdfa_backend="internal",
                     jobs=jobs, progress_bar=False)
    return time.perf_counter() - start


def pipeline(paths: list[Path], work: Path, workers: int) -> float:
    """Seconds from the first upload until every document is filed."""
    url = f"sqlite:///{work / 'eakte.db'}"
    upgrade(url)
    settings = Settings(database_url=url, jwt_secret="bench-secret-" * 4,  # type: ignore[arg-type]
                        ocr_workers=workers)
    engine = make_engine(url)
    store = FilesystemStore(work / "blobs")
    app = create_app(settings, engine=engine, store=store)
    admin = {"Authorization": "Bearer " + issue_token(settings, "admin", ["admin"], [])}
    with TestClient(app) as client:
        client.post("/api/v1/org-units", json={"code": "63", "name": "Bauamt"}, headers=admin)
        client.post("/api/v1/plan-items", json={"code": "63.01.01", "title": "Bauanträge"},
                    headers=admin)
        clerk = {"Authorization": "Bearer " + issue_token(settings, "c", ["clerk"], ["63"])}
        file = client.post("/api/v1/files", json={"title": "Bench", "plan_code": "63.01.01",
                                                  "reference": "63.01.01-2026/0001"},
                           headers=clerk).json()
        mailroom = {"Authorization": "Bearer " + issue_token(settings, "m", ["mailroom"],
                                                             ["63"])}
        stop = threading.Event()
        factory = make_session_factory(engine)
        threads = [threading.Thread(target=Worker(factory, store, settings).run,
                                    args=(stop, 0.05)) for _ in range(workers)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for path in paths:
            with path.open("rb") as fh:
                r = client.post("/api/v1/inbox", files={"file": (path.name, fh)},
                                headers=mailroom)
                assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60 * len(paths)
        while True:
            docs = client.get(f"/api/v1/files/{file['id']}/documents", headers=clerk).json()
            if len(docs) == len(paths):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(docs)} of {len(paths)} documents were filed")
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        stop.set()
        for thread in threads:
            thread.join()
    engine.dispose()
    return elapsed


def main() -> None:
    """Run both sides and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=6)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2,
                        help="pipeline workers; the cores are shared out between them")
    args = parser.parse_args()
    jobs = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="eakte-bench-") as tmp:
        work = Path(tmp)
        (work / "raw").mkdir()
        paths = make_documents(work, args.documents, args.pages, "63.01.01-2026/0001")
        total_pages = args.documents * args.pages
        raw_s = raw(paths, work / "raw", jobs)
        pipe_s = pipeline(paths, work, args.workers)
    raw_ppm = total_pages / raw_s * 60
    pipe_ppm = total_pages / pipe_s * 60
    print(f"documents: {args.documents} x {args.pages} pages, {jobs} cores, "
          f"{args.workers} pipeline workers")
    print(f"raw ocrmypdf:     {raw_s:7.1f} s  {raw_ppm:6.1f} pages/min")
    print(f"pipeline (filed): {pipe_s:7.1f} s  {pipe_ppm:6.1f} pages/min")
    print(f"ratio pipeline/raw: {pipe_ppm / raw_ppm:.2f} (target >= 0.90)")


if __name__ == "__main__":
    main()

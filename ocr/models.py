"""The options and the result of one OCR run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_LANGUAGE = re.compile(r"[a-z][a-z0-9_]*")  # tesseract's names: deu, eng, chi_sim, deu_latf

# The default memory cap of each OCR process (see OcrOptions.memory_limit). Measured here: a page
# of 256 MP in colour took 2.3 GB in the OCR job and 2.7 GB in tesseract (about 9 and 11 bytes
# per pixel); an A5 letter 0.5 GB of address space in the job. So 24 bytes per pixel of
# max_pixels leaves room for two such pages in the job at once, and the base for Python, pdfium
# and tesseract's models; each page in parallel adds a thread's stack and malloc arena.
_MEMORY_BASE = 1 << 30
_MEMORY_PER_JOB = 128 << 20
_MEMORY_PER_PIXEL = 24


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How to OCR a document, and the limits that protect the worker from hostile input."""

    languages: tuple[str, ...] = ("deu", "eng")
    timeout_s: float = 600.0
    jobs: int | None = None  # pages OCRed in parallel; None: every core this process may use
    max_pixels: int = 150_000_000  # an A0 plan scanned at 300 DPI is 139 MP
    max_pages: int = 500
    # Address-space cap (RLIMIT_AS) of each OCR process, in bytes; None: derived from max_pixels.
    max_memory_bytes: int | None = None
    deskew: bool = True
    rotate: bool = True
    # OCRmyPDF's default threshold (14) left half-filled upside-down A5 pages unturned in our
    # tests (tesseract's confidence 11-13), while its guess was right down to 3-line pages (4).
    rotate_threshold: float = 5.0

    def __post_init__(self) -> None:
        if not self.languages or not all(_LANGUAGE.fullmatch(lang) for lang in self.languages):
            raise ValueError(f"languages must be tesseract language names, got {self.languages}")
        if self.timeout_s <= 0 or self.max_pixels <= 0 or self.max_pages <= 0:
            raise ValueError("timeout_s, max_pixels and max_pages must be positive")
        if self.jobs is not None and self.jobs <= 0:
            raise ValueError("jobs must be positive or None")
        if self.max_memory_bytes is not None and self.max_memory_bytes <= 0:
            raise ValueError("max_memory_bytes must be positive or None")

    def memory_limit(self, jobs: int) -> int:
        """The memory cap of each OCR process when `jobs` pages are OCRed in parallel.

        A second line of defence behind the pixel checks: a page that renders larger than they
        predicted makes an allocation fail (a permanent `MemoryLimitExceeded`) rather than take
        the machine's memory. The cap applies to each process on its own (the OCR job, which
        renders the pages in threads, and every tesseract it starts), not to all of them
        together. The default fits pages up to max_pixels: about 4.6 GiB at 150 MP and 2 jobs.
        """
        if self.max_memory_bytes is not None:
            return self.max_memory_bytes
        return _MEMORY_BASE + jobs * _MEMORY_PER_JOB + _MEMORY_PER_PIXEL * self.max_pixels


@dataclass(frozen=True, slots=True)
class OcrResult:
    """A searchable PDF and the text of each of its pages."""

    output_pdf: Path
    page_texts: list[str]
    # 1-based pages that were not OCRed: they carried text already, or had no image to read.
    skipped_pages: list[int] = field(default_factory=list)
    # PDF/A conformance of output_pdf as declared and validated, e.g. "2B"; None: a regular PDF.
    pdfa: str | None = None

    @property
    def page_count(self) -> int:
        """Number of pages of the output PDF."""
        return len(self.page_texts)

    @property
    def text(self) -> str:
        """The whole text, pages separated by a form feed as in pdftotext's output."""
        return "\f".join(self.page_texts)

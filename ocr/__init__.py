"""OCR for incoming documents: a PDF, TIFF, JPEG or PNG in; a searchable PDF and its text out.

    from ocr import OcrOptions, run_ocr
    result = run_ocr(Path("scan.tif"), Path("scan.pdf"), OcrOptions(languages=("deu", "eng")))
    result.page_texts, result.page_count, result.skipped_pages, result.pdfa

A thin layer over OCRmyPDF's public API (`ocrmypdf.ocr`): images are wrapped in a PDF first
(img2pdf, lossless; 300 DPI assumed where an image states no plausible resolution), pages are
turned upright and deskewed, and pages that already carry text are kept as they are. Bad input
is refused before OCR with a typed error from `ocr.errors`, among it any PDF page that OCRmyPDF
would render with more than `max_pixels` (it renders at the resolution of the page's sharpest
image, so a few KB can ask for gigapixels). Each document is OCRed in a child process of its
own, its memory capped (`OcrOptions.memory_limit`) and killed with everything it started when
the timeout expires, so a crash or a memory blow-up never takes the calling worker down.

PDF/A conformance delivered: PDF/A-2b whenever pikepdf's PDF/A validator approves the output,
otherwise a regular PDF; `OcrResult.pdfa` says which ("2B" or None). Scans and images (tested:
grey, colour, RGBA and bi-level PNG, JPEG, G4 TIFF, image-only PDF) come out as PDF/A-2b. A PDF
that already carries text in fonts it does not embed (typical of office exports using the
standard 14 fonts), or anything else the validator cannot confirm, comes out as a regular PDF
with its pages and text left as they were.

Why: OCRmyPDF makes PDF/A either with Ghostscript or with its internal pikepdf backend. Debian
12 ships Ghostscript 10.0.0, which corrupts PDFs that already contain text, so OCRmyPDF refuses
to make PDF/A with it in `mode="skip"` (`--skip-text`), which we need so that born-digital
pages are not OCRed again. But with `output_type="auto"` and the default backend, OCRmyPDF
17.13 does hand such a PDF to that Ghostscript, without the guard (seen here). We therefore run
`output_type="auto", pdfa_backend="internal"`: Ghostscript is never used (pypdfium2
rasterises), and a file the internal backend cannot make PDF/A is still delivered, as a regular
PDF, where `output_type="pdfa-2"` would fail it. Converting those files too needs Ghostscript
10.02.1 or later and `pdfa_backend="auto"`, a one-line change in `ocr/job.py`. (`deskew=True`
works with `mode="skip"`; OCRmyPDF 17 refuses it only with `mode="redo"`.)
"""

from ocr.checks import detect_type
from ocr.errors import (
    EncryptedPdf,
    ImageTooLarge,
    InvalidInput,
    MemoryLimitExceeded,
    OcrError,
    OcrMisconfigured,
    OcrTimeout,
    SignedPdf,
    TooManyPages,
)
from ocr.models import OcrOptions, OcrResult
from ocr.runner import run_ocr

__all__ = [
    "EncryptedPdf",
    "ImageTooLarge",
    "InvalidInput",
    "MemoryLimitExceeded",
    "OcrError",
    "OcrMisconfigured",
    "OcrOptions",
    "OcrResult",
    "OcrTimeout",
    "SignedPdf",
    "TooManyPages",
    "detect_type",
    "run_ocr",
]

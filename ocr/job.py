"""One OCR job, run in its own process: `python -m ocr.job REQUEST.json RESULT.json`.

Everything that parses the untrusted document happens here, so a crash, a hang or a memory
blow-up takes down this process only; `ocr.runner` starts it, enforces the timeout and turns
RESULT.json back into an `OcrResult` or a typed error. The process caps its own address space
(RLIMIT_AS, `OcrOptions.memory_limit`) before it reads the document, and the tesseract
processes it starts inherit the cap, so a page that renders larger than the checks predicted
fails an allocation here instead of taking the machine's memory.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import subprocess
import sys
import traceback
from pathlib import Path

import img2pdf  # type: ignore[import-untyped]
import ocrmypdf
import pikepdf
import pypdfium2  # type: ignore[import-untyped]
from ocrmypdf.exceptions import (
    DigitalSignatureError,
    EncryptedPdfError,
    ExitCode,
    InputFileError,
    MissingDependencyError,
    SubprocessOutputError,
    UnsupportedImageFormatError,
)
from PIL import Image

from ocr.checks import PDF, check_image, check_pdf
from ocr.errors import (
    EncryptedPdf,
    ImageTooLarge,
    InvalidInput,
    MemoryLimitExceeded,
    OcrError,
    OcrMisconfigured,
    SignedPdf,
)
from ocr.models import OcrOptions

log = logging.getLogger(__name__)

# How OCRmyPDF's sidecar stands in for pages it did not OCR (one marker per run of pages).
_SKIPPED = re.compile(r"\[OCR skipped on page\(s\) (\d+)(?:-(\d+))?\]")

# What tesseract and its libraries print when an allocation fails (lower case): C++'s
# bad_alloc, libpng, Leptonica's pixCreate and the dynamic loader. Tesseract has no exit code
# for it, and OCRmyPDF passes on only its output.
_OUT_OF_MEMORY = (
    b"bad_alloc",
    b"out of memory",
    b"malloc fail",
    b"cannot allocate memory",
    b"failed to map segment",
)


def run_job(
    src: Path, mime: str, output_pdf: Path, options: OcrOptions, work: Path
) -> dict[str, object]:
    """Check, convert and OCR one document; return the result as JSON-ready data."""
    # Pillow refuses images of more than twice this as decompression bombs (OCRmyPDF sets the
    # same while it runs); set from the start, img2pdf's Pillow agrees with our checks too.
    Image.MAX_IMAGE_PIXELS = options.max_pixels
    if mime == PDF:
        check_pdf(src, max_pages=options.max_pages, max_pixels=options.max_pixels)
        pdf_in = src
    else:
        dpi = check_image(src, max_pages=options.max_pages, max_pixels=options.max_pixels)
        pdf_in = work / "image.pdf"
        _image_to_pdf(src, pdf_in, dpi)

    sidecar = work / "sidecar.txt"
    _ocrmypdf(pdf_in, output_pdf, sidecar, options)

    with pikepdf.open(output_pdf) as pdf:
        page_count = len(pdf.pages)
        pdfa = pdf.open_metadata().pdfa_status or None
    texts, skipped = _page_texts(sidecar.read_text(encoding="utf-8"), output_pdf, page_count)
    return {"page_texts": texts, "skipped_pages": skipped, "pdfa": pdfa}


def _image_to_pdf(src: Path, dst: Path, dpi: tuple[float, float]) -> None:
    """Wrap the image's frames in a PDF without re-encoding them (img2pdf is lossless)."""
    try:
        with dst.open("wb") as out:
            img2pdf.convert(
                str(src), layout_fun=img2pdf.get_fixed_dpi_layout_fun(dpi), outputstream=out
            )
    except Image.DecompressionBombError:
        raise  # too large, not unusable: main() makes it ImageTooLarge
    except Exception as e:  # img2pdf raises plain Exception subclasses for unusable images
        raise InvalidInput(
            f"The image cannot be converted to PDF ({e}); ask the sender for a PDF or another scan."
        ) from e


def _ocrmypdf(pdf_in: Path, output_pdf: Path, sidecar: Path, options: OcrOptions) -> None:
    """Run OCRmyPDF with our settings, mapping its exceptions to ours."""
    try:
        exit_code = ocrmypdf.ocr(
            pdf_in,
            output_pdf,
            language=list(options.languages),
            # Pages that already carry text keep it, untouched and fast.
            mode="skip",
            rotate_pages=options.rotate,
            rotate_pages_threshold=options.rotate_threshold,
            deskew=options.deskew,
            jobs=_jobs(options),
            # PDF/A-2b validated by pikepdf, else a regular PDF; never Ghostscript, whose
            # Debian 12 version (10.0.0) corrupts existing text. See ocr/__init__.py.
            output_type="auto",
            pdfa_backend="internal",
            sidecar=sidecar,
            # Only our per-document timeout applies: tesseract's own per-page timeout would
            # leave a page without text and report success.
            tesseract_timeout=options.timeout_s,
            max_image_mpixels=options.max_pixels / 1e6,
            progress_bar=False,
        )
    except EncryptedPdfError as e:
        raise EncryptedPdf() from e
    except DigitalSignatureError as e:
        raise SignedPdf() from e
    except (InputFileError, UnsupportedImageFormatError) as e:
        raise InvalidInput(f"OCR cannot read this file: {e}") from e
    except MissingDependencyError as e:
        raise OcrMisconfigured(f"OCR is not set up correctly: {e}") from e
    except SubprocessOutputError as e:
        if _tesseract_ran_out_of_memory(e):
            raise _memory_limit_exceeded() from e
        raise
    if exit_code != ExitCode.ok:
        raise OcrError(f"OCR finished with status {ExitCode(exit_code).name}.")


def _jobs(options: OcrOptions) -> int:
    """Pages OCRed in parallel: as asked, else one per core this process may use."""
    return options.jobs or len(os.sched_getaffinity(0))


def _tesseract_ran_out_of_memory(error: BaseException) -> bool:
    """Whether tesseract, behind OCRmyPDF's `error`, failed because an allocation failed."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, subprocess.CalledProcessError):
            output = b"".join(
                part for part in (cause.output, cause.stderr) if isinstance(part, bytes)
            )
            return any(marker in output.lower() for marker in _OUT_OF_MEMORY)
        cause = cause.__cause__ or cause.__context__
    return False


def _limit_memory(limit: int) -> None:
    """Cap this process's address space, and so that of every process it starts."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    # The hard limit too: nothing the document makes this process do may lift the cap again.
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _memory_limit_exceeded() -> MemoryLimitExceeded:
    """The error for an allocation that failed under the cap this process set."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    return MemoryLimitExceeded(
        f"OCR needed more memory than its limit of {limit / 2**30:.1f} GiB per process, "
        "most likely for a page that renders far larger than its file (a decompression bomb); "
        "file the document without OCR, or raise max_memory_bytes."
    )


def _page_texts(sidecar: str, pdf: Path, page_count: int) -> tuple[list[str], list[int]]:
    """Split OCRmyPDF's sidecar into pages; read skipped pages' own text from the PDF."""
    texts: list[str | None] = []  # None: a skipped page, its text still to be read
    for chunk in sidecar.split("\f"):
        marker = _SKIPPED.fullmatch(chunk.strip())
        if marker:
            first, last = int(marker[1]), int(marker[2] or marker[1])
            texts.extend([None] * (last - first + 1))
        else:
            texts.append(chunk)
    if len(texts) != page_count:
        log.warning(
            "OCR sidecar has %d pages, the PDF %d; reading all text from the PDF instead",
            len(texts),
            page_count,
        )
        texts = [None] * page_count
    skipped = [number for number, text in enumerate(texts, start=1) if text is None]
    from_pdf = _pdf_page_texts(pdf, skipped)
    return [from_pdf[n] if t is None else t for n, t in enumerate(texts, start=1)], skipped


def _pdf_page_texts(pdf: Path, numbers: list[int]) -> dict[int, str]:
    """The text layer of the given 1-based pages, as pdfium extracts it."""
    if not numbers:
        return {}
    with pypdfium2.PdfDocument(pdf) as document:
        texts = {n: str(document[n - 1].get_textpage().get_text_range()) for n in numbers}
    return {n: t.replace("\r\n", "\n").replace("\r", "\n") for n, t in texts.items()}


def main(argv: list[str]) -> int:
    """Run the job described in argv[0] and write its result, or its error, to argv[1]."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    request_path, result_path = Path(argv[0]), Path(argv[1])
    request = json.loads(request_path.read_text(encoding="utf-8"))
    raw_options = dict(request["options"])
    raw_options["languages"] = tuple(raw_options["languages"])
    options = OcrOptions(**raw_options)
    _limit_memory(options.memory_limit(_jobs(options)))
    result: dict[str, object]
    try:
        try:
            result = run_job(
                Path(request["src"]),
                request["mime"],
                Path(request["output_pdf"]),
                options,
                request_path.parent,
            )
        except Image.DecompressionBombError as e:
            # Pillow met an image or rendered page beyond the checks' prediction.
            raise ImageTooLarge(
                f"A page or image is too large to decode ({e}); "
                "scan at a lower resolution or raise max_pixels."
            ) from e
        except MemoryError as e:
            # Under our cap, not the machine's: the same document would fail again.
            traceback.print_exc()
            raise _memory_limit_exceeded() from e
    except OcrError as e:
        result = {"error": type(e).__name__, "message": e.message, "permanent": e.permanent}
    except Exception as e:
        traceback.print_exc()  # the runner logs this process's stderr
        result = {
            "error": "OcrError",
            "message": f"OCR failed unexpectedly: {type(e).__name__}: {e}",
            "permanent": False,
        }
    # Renamed into place, so the runner never reads half a result from a process killed mid-write.
    partial = result_path.with_suffix(".part")
    partial.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    partial.replace(result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

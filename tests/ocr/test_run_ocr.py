"""OCR of generated scans with the real tesseract: each input format; text pages kept as is."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pikepdf
import pypdfium2  # type: ignore[import-untyped]
import pytest
from pikepdf.pdfa import validate_written
from PIL import Image

import ocr
from tests.ocr import scans


def normalise(text: str) -> str:
    return " ".join(text.split())


def pdf_text_layer(path: Path) -> list[str]:
    """The text a PDF viewer or indexer finds in each page, independently of OCR's sidecar."""
    with pypdfium2.PdfDocument(path) as document:
        return [normalise(page.get_textpage().get_text_range()) for page in document]


@pytest.fixture(scope="module")
def pages() -> list[Image.Image]:
    return scans.letter_pages()


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scans")


WRITERS: dict[str, tuple[Callable[[Path, list[Image.Image]], Path], int]] = {
    "letter.png": (lambda path, pages: scans.write_png(path, pages[0]), 1),
    "letter.jpg": (lambda path, pages: scans.write_jpeg(path, pages[0]), 1),
    "letter.tif": (scans.write_tiff, 2),
    "letter.pdf": (scans.write_image_pdf, 2),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_scanned_letter_becomes_searchable_pdf_with_text_per_page(
    name: str, pages: list[Image.Image], scan_dir: Path, tmp_path: Path
) -> None:
    write, page_count = WRITERS[name]
    src = write(scan_dir / name, pages)
    dst = tmp_path / "out.pdf"

    result = ocr.run_ocr(src, dst, ocr.OcrOptions(timeout_s=120))

    assert result.output_pdf == dst
    assert result.page_count == page_count
    assert result.skipped_pages == []
    page_1 = normalise(result.page_texts[0])
    assert f"Aktenzeichen: {scans.REFERENCE}" in page_1
    for word in scans.PAGE_1_WORDS:
        assert word in page_1
    if page_count == 2:  # the second sheet was fed upside down and must have been turned
        page_2 = normalise(result.page_texts[1])
        for word in scans.PAGE_2_WORDS:
            assert word in page_2
        assert "Aktenzeichen: 32" not in page_2
    assert result.text.count("\f") == page_count - 1

    assert result.pdfa == "2B"
    assert validate_written(dst, "2b").verdict == "pass"
    with pikepdf.open(dst) as pdf:
        assert len(pdf.pages) == page_count
    layer = pdf_text_layer(dst)
    assert scans.REFERENCE in layer[0]
    assert not list(tmp_path.glob(".*.part"))


def test_image_without_resolution_is_taken_as_300_dpi(
    pages: list[Image.Image], tmp_path: Path
) -> None:
    src = scans.write_png(tmp_path / "phone.png", pages[0], dpi=None)

    result = ocr.run_ocr(src, tmp_path / "out.pdf", ocr.OcrOptions(timeout_s=120))

    with pikepdf.open(result.output_pdf) as pdf:
        box = [float(v) for v in pdf.pages[0].mediabox]
    assert box[2] - box[0] == pytest.approx(scans.A5_PX[0] / 300 * 72, abs=1)
    assert box[3] - box[1] == pytest.approx(scans.A5_PX[1] / 300 * 72, abs=1)
    assert scans.REFERENCE in result.text


def test_pdf_that_has_text_is_not_ocred_again(tmp_path: Path) -> None:
    src = scans.write_text_pdf(tmp_path / "born-digital.pdf", scans.PAGE_1_LINES)
    started = time.monotonic()

    result = ocr.run_ocr(src, tmp_path / "out.pdf")

    assert time.monotonic() - started < 15  # no tesseract run; OCR of one page takes longer
    assert result.skipped_pages == [1]
    assert result.page_texts[0].splitlines() == [line for line in scans.PAGE_1_LINES if line]
    with pikepdf.open(result.output_pdf) as pdf:  # no OCR text layer (and font) was added
        assert set(pdf.pages[0].Resources.Font.keys()) == {"/F1"}


def test_mixed_pdf_keeps_its_text_page_and_ocrs_its_scanned_page(
    pages: list[Image.Image], tmp_path: Path
) -> None:
    src = scans.write_text_pdf(tmp_path / "mixed.pdf", scans.PAGE_1_LINES, scan_after=pages[1])

    result = ocr.run_ocr(src, tmp_path / "out.pdf", ocr.OcrOptions(timeout_s=120))

    assert result.page_count == 2
    assert result.skipped_pages == [1]
    assert f"Aktenzeichen: {scans.REFERENCE}" in normalise(result.page_texts[0])
    for word in scans.PAGE_2_WORDS:
        assert word in normalise(result.page_texts[1])
    # Helvetica is not embedded, so pikepdf cannot make PDF/A without Ghostscript: a plain PDF.
    assert result.pdfa is None
    assert [scans.REFERENCE in text for text in pdf_text_layer(result.output_pdf)] == [True, False]


def test_missing_language_pack_is_a_setup_error_not_the_documents_fault(
    pages: list[Image.Image], tmp_path: Path
) -> None:
    src = scans.write_png(tmp_path / "letter.png", pages[0])

    with pytest.raises(ocr.OcrMisconfigured, match="lav") as caught:
        ocr.run_ocr(src, tmp_path / "out.pdf", ocr.OcrOptions(languages=("lav",)))

    assert caught.value.permanent is False
    assert not (tmp_path / "out.pdf").exists()


def test_detect_type_reads_the_content_not_the_name(
    pages: list[Image.Image], tmp_path: Path
) -> None:
    src = scans.write_png(tmp_path / "looks-like.pdf", pages[0])

    assert ocr.detect_type(src) == "image/png"


@pytest.mark.parametrize(
    "bad",
    [{"languages": ()}, {"languages": ("deu; rm -rf",)}, {"timeout_s": 0}, {"jobs": 0}],
)
def test_options_refuse_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ocr.OcrOptions(**bad)  # type: ignore[arg-type]

"""Checks that refuse bad input before OCR: type, size, pages, encryption and damage.

Every check reads headers and structure only, so a decompression bomb or a 2000-page PDF is
refused in milliseconds and without allocating what it asks for.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING

import magic

if TYPE_CHECKING:
    import pikepdf

from ocr.errors import EncryptedPdf, ImageTooLarge, InvalidInput, TooManyPages

PDF = "application/pdf"
IMAGE_TYPES = frozenset({"image/tiff", "image/jpeg", "image/png"})
SUPPORTED_TYPES = IMAGE_TYPES | {PDF}

DEFAULT_DPI = 300.0
_SANE_DPI = (50.0, 2400.0)
# OCRmyPDF rasterises a page at the resolution of its images; 300 DPI is the least a scan has.
_RASTER_DPI = 300.0


def detect_type(path: Path) -> str:
    """The MIME type of a file from its content (libmagic), never from its name."""
    return str(magic.from_file(str(path), mime=True))


def check_supported(path: Path) -> str:
    """Return the file's MIME type, or refuse an empty file or one OCR cannot read."""
    if path.stat().st_size == 0:
        raise InvalidInput("The file is empty (0 bytes); ask the sender to send it again.")
    mime = detect_type(path)
    if mime not in SUPPORTED_TYPES:
        raise InvalidInput(
            f"Unsupported file type {mime}; OCR accepts PDF, TIFF, JPEG and PNG files."
        )
    return mime


def check_pdf(path: Path, *, max_pages: int, max_pixels: int) -> int:
    """Refuse a truncated, damaged, encrypted, too long or too large PDF; return its pages."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 1024))
        # Readers look for the end marker in the last 1 KB; without it the upload was cut off,
        # and OCRing what qpdf could recover would silently file half a document.
        if b"%%EOF" not in f.read():
            raise InvalidInput(
                "The PDF is truncated (its end marker is missing); ask the sender to send it again."
            )
    # Imported here, like Pillow below: a server that runs no OCR worker never loads them.
    import pikepdf

    try:
        with pikepdf.open(path) as pdf:
            if pdf.is_encrypted:
                raise EncryptedPdf()
            pages = len(pdf.pages)
            if pages == 0:
                raise InvalidInput("The PDF has no pages; ask the sender for a new copy.")
            if pages > max_pages:
                raise _too_many_pages(pages, max_pages)
            for number, page in enumerate(pdf.pages, start=1):
                _check_pdf_page(page, number, max_pixels)
    except pikepdf.PasswordError as e:
        raise EncryptedPdf() from e
    except (pikepdf.PdfError, TypeError, ValueError) as e:
        # TypeError, ValueError: a page whose sizes are not numbers, e.g. /Width /Foo.
        raise InvalidInput(
            f"The PDF is damaged and cannot be read ({e}); ask the sender for a new copy."
        ) from e
    return pages


def _check_pdf_page(page: pikepdf.Page, number: int, max_pixels: int) -> None:
    images = page.get_images()
    for image in images.values():
        width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
        if width * height > max_pixels:
            raise _too_large(
                f"Page {number} holds an image of {width} x {height} pixels", max_pixels
            )
    if not images:
        return  # OCRmyPDF does not rasterise a page without images
    box = [float(v) for v in page.mediabox]
    scale = float(page.obj.get("/UserUnit", 1)) / 72  # PDF units to inches
    width_in, height_in = abs(box[2] - box[0]) * scale, abs(box[3] - box[1]) * scale
    raster = width_in * height_in * _RASTER_DPI**2
    if raster > max_pixels:
        raise _too_large(
            f"Page {number} measures {width_in:.0f} x {height_in:.0f} inches, about "
            f"{raster / 1e6:.0f} MP at {_RASTER_DPI:.0f} DPI",
            max_pixels,
        )


def check_image(path: Path, *, max_pages: int, max_pixels: int) -> tuple[float, float]:
    """Refuse an image with too many pixels or frames, or one that does not decode; return DPI.

    The size is checked from the header before any pixel is decoded; then every frame is
    decoded once, so a truncated scan fails here rather than as half a page of text.
    """
    from PIL import Image

    # Pillow's own bomb check warns at one limit and fails at twice it; ours is explicit below.
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            if frames > max_pages:
                raise _too_many_pages(frames, max_pages)
            dpi = _sane_dpi(image.info.get("dpi"), image.size)
            for index in range(frames):
                image.seek(index)
                width, height = image.size
                if width * height > max_pixels:
                    page = f"Page {index + 1} is" if frames > 1 else "The image is"
                    raise _too_large(f"{page} {width} x {height} pixels", max_pixels)
                image.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        # Pillow reports damaged files with all of these, depending on the format.
        raise InvalidInput(
            f"The image cannot be decoded ({e}); ask the sender for a new copy."
        ) from e
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    return dpi


def _sane_dpi(dpi: object, size: tuple[int, int]) -> tuple[float, float]:
    """The image's resolution if plausible, else 300 DPI (the usual scan resolution)."""
    low, high = _SANE_DPI
    if isinstance(dpi, tuple) and len(dpi) == 2:
        x, y = float(dpi[0]), float(dpi[1])
        # PDF pages may be at most 200 inches long.
        fits = size[0] / max(x, 1) <= 200 and size[1] / max(y, 1) <= 200
        if low <= x <= high and low <= y <= high and fits:
            return x, y
    return DEFAULT_DPI, DEFAULT_DPI


def _too_many_pages(pages: int, max_pages: int) -> TooManyPages:
    return TooManyPages(
        f"The document has {pages} pages, more than the limit of {max_pages}; "
        "split it or raise max_pages."
    )


def _too_large(what: str, max_pixels: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"{what}, more than the limit of {max_pixels / 1e6:.0f} MP; "
        "scan at a lower resolution or raise max_pixels."
    )

"""Checks that refuse bad input before OCR: type, size, pages, encryption and damage.

Every check reads headers and structure only, so a decompression bomb or a 2000-page PDF is
refused in milliseconds and without allocating what it asks for.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import magic

if TYPE_CHECKING:
    import pikepdf
    from ocrmypdf.pdfinfo import PageInfo

from ocr.errors import EncryptedPdf, ImageTooLarge, InvalidInput, TooManyPages

PDF = "application/pdf"
IMAGE_TYPES = frozenset({"image/tiff", "image/jpeg", "image/png"})
SUPPORTED_TYPES = IMAGE_TYPES | {PDF}

DEFAULT_DPI = 300.0
_SANE_DPI = (50.0, 2400.0)


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
    """Refuse a truncated, damaged, encrypted, too long or too large PDF; return its pages.

    Too large: an image with more than max_pixels, or a page that OCRmyPDF would render with
    more than max_pixels. It renders a page at the resolution of its sharpest image, so a tiny
    file whose 1-bit image is drawn 100 times as 1-inch tiles renders at thousands of DPI.
    """
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
    from ocrmypdf.pdfinfo import PdfInfo

    try:
        with pikepdf.open(path) as pdf:
            if pdf.is_encrypted:
                raise EncryptedPdf()
            pages = len(pdf.pages)
            if pages == 0:
                raise InvalidInput("The PDF has no pages; ask the sender for a new copy.")
            if pages > max_pages:
                raise _too_many_pages(pages, max_pages)
            draws: dict[tuple[int, int], int] = {}
            for number, page in enumerate(pdf.pages, start=1):
                _check_xobjects(page.obj, _Page(number, max_pixels), draws, frozenset())
        # OCRmyPDF's own analysis, the one it picks each page's resolution from, so the check
        # sees what OCRmyPDF will render, inline images and Form XObjects included. Run only
        # after _check_xobjects has bounded the nesting it expands.
        infos = PdfInfo(path).pages
    except pikepdf.PasswordError as e:
        raise EncryptedPdf() from e
    except (pikepdf.PdfError, TypeError, ValueError, RuntimeError) as e:
        # TypeError, ValueError: a page whose sizes are not numbers, e.g. /Width /Foo.
        # RuntimeError: PdfInfo gives up on a content stream, e.g. its graphics stack overflows.
        raise InvalidInput(
            f"The PDF is damaged and cannot be read ({e}); ask the sender for a new copy."
        ) from e
    for number, info in enumerate(infos, start=1):
        if info is not None:
            _check_rendering(info, _Page(number, max_pixels))
    return pages


# How often a page may draw an XObject, nested Form XObjects expanded: far beyond what a real
# plan needs (PdfInfo takes about 8 s for 100,000), far below what ten forms that each draw the
# next ten times ask (10 ** 10).
_MAX_DRAWS = 100_000
# Form XObjects within Form XObjects; PdfInfo recurses for each level.
_MAX_FORM_DEPTH = 32
# OCRmyPDF renders a page with vector graphics at 400 DPI at least, as it does one whose images
# all have no usable resolution (its VECTOR_PAGE_DPI).
_VECTOR_DPI = 400.0


@dataclass(frozen=True, slots=True)
class _Page:
    """The page being checked and the limit, for the messages."""

    number: int
    max_pixels: int


def _check_xobjects(
    container: pikepdf.Object,
    page: _Page,
    draws: dict[tuple[int, int], int],
    within: frozenset[tuple[int, int]],
) -> int:
    """Refuse too large images in a page or Form XObject, and runaway nesting; count its draws.

    `draws` remembers the count of each Form XObject already seen, so a form drawn many times
    is read once; `within` holds the forms being read, to tell nesting from a form that draws
    itself.
    """
    import pikepdf

    resources = container.get("/Resources")
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    if not isinstance(xobjects, pikepdf.Dictionary):
        xobjects = pikepdf.Dictionary()
    for xobject in xobjects.values():
        if isinstance(xobject, pikepdf.Stream) and xobject.get("/Subtype") == "/Image":
            _check_image_size(xobject, page)
    count = 0
    for instruction in pikepdf.parse_content_stream(container, "Do"):
        count += 1
        operands = instruction.operands
        name = operands[0] if operands else None
        target = xobjects.get(name) if isinstance(name, pikepdf.Name) else None
        if isinstance(target, pikepdf.Stream) and target.get("/Subtype") == "/Form":
            key = target.objgen
            if key in within:
                raise InvalidInput(
                    f"Page {page.number} holds a Form XObject that draws itself; "
                    "ask the sender for a new copy."
                )
            if key not in draws:
                if len(within) >= _MAX_FORM_DEPTH:
                    raise InvalidInput(
                        f"Page {page.number} nests Form XObjects more than {_MAX_FORM_DEPTH} "
                        "deep; ask the sender for a new copy."
                    )
                draws[key] = _check_xobjects(target, page, draws, within | {key})
            count += draws[key]
        if count > _MAX_DRAWS:
            raise InvalidInput(
                f"Page {page.number} draws images or forms more than {_MAX_DRAWS} times once "
                "its nested Form XObjects are expanded; ask the sender for a new copy."
            )
    return count


def _check_image_size(image: pikepdf.Stream, page: _Page) -> None:
    """Refuse an image XObject, or its soft mask, with more than max_pixels."""
    import pikepdf

    for part in (image, image.get("/SMask")):
        if isinstance(part, pikepdf.Stream):
            width, height = int(part.get("/Width", 0)), int(part.get("/Height", 0))
            if width * height > page.max_pixels:
                raise _too_large(
                    f"Page {page.number} holds an image of {width} x {height} pixels",
                    page.max_pixels,
                )


def _check_rendering(info: PageInfo, page: _Page) -> None:
    """Refuse a page whose images, inline ones too, or whose rendering exceed max_pixels."""
    for image in info.images:
        if image.width * image.height > page.max_pixels:
            raise _too_large(
                f"Page {page.number} holds an image of {image.width} x {image.height} pixels",
                page.max_pixels,
            )
    if info.has_text or not info.images:
        return  # OCRmyPDF renders neither (mode="skip" keeps pages with text as they are)
    # OCRmyPDF's choice (get_canvas_square_dpi), except that it sometimes renders at a lower,
    # area-weighted resolution when a small patch is much sharper than the rest: the largest
    # image resolution is an upper bound that needs no copy of that rule.
    dpi = max(
        info.dpi.x or _VECTOR_DPI,
        info.dpi.y or _VECTOR_DPI,
        _VECTOR_DPI if info.has_vector else 0.0,
    )
    # PdfInfo measures the page with its UserUnit applied; pdfium renders the page in points
    # and may ignore UserUnit, so one below 1 must not shrink the estimate.
    shrink = min(1.0, float(info.userunit) or 1.0)
    width_in = abs(float(info.width_inches) / shrink)
    height_in = abs(float(info.height_inches) / shrink)
    pixels = width_in * dpi * height_in * dpi
    if pixels > page.max_pixels:
        raise _too_large(
            f"Page {page.number} measures {width_in:.0f} x {height_in:.0f} inches and would be "
            f"rendered at {dpi:.0f} DPI for OCR, about {pixels / 1e6:.0f} MP",
            page.max_pixels,
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

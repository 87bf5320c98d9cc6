"""Synthetic scans for OCR tests: a German business letter as PNG, JPEG, TIFF and PDF.

The pages imitate a 300 DPI office scan (A5 to keep tesseract fast): slightly skewed, speckled,
and the second page upside down, as happens when a sheet goes into the feeder the wrong way.
Also bad inputs (decompression bombs, PDFs of a few KB whose pages render to gigapixels,
endlessly nested forms, truncated and encrypted PDFs, thousands of blank pages) built cheaply,
so tests never allocate what the code under test must refuse.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import pikepdf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

DPI = 300
A5_PX = (1748, 2480)  # 148 x 210 mm at 300 DPI
FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core

REFERENCE = "32.10.05-2026/0042"

PAGE_1_LINES = [
    "Stadt Musterhausen - Bauordnungsamt",
    "Marktplatz 1, 21337 Musterhausen",
    "",
    "Frau Jördis Müller-Weiß",
    "Grüner Weg 7",
    "21337 Musterhausen",
    "",
    f"Aktenzeichen: {REFERENCE}",
    "Datum: 14.03.2026",
    "",
    "Betreff: Bauantrag für eine Garage",
    "",
    "Sehr geehrte Frau Müller-Weiß,",
    "wir bestätigen den Eingang Ihrer Unterlagen.",
    "Bitte reichen Sie die fehlenden Nachweise",
    "über die Abstandsflächen bis zum 30.04.2026",
    "nach. Für Rückfragen erreichen Sie uns",
    "montags bis freitags von 8 bis 12 Uhr.",
    "",
    "Mit freundlichen Grüßen",
    "Im Auftrag",
    "Hans Schäfer",
]

PAGE_2_LINES = [
    "Anlage: Übersicht der Gebühren",
    "",
    "Gebührenbescheid Nr. 2026-117",
    "",
    "Prüfgebühr Bauantrag         85,00 EUR",
    "Straßenreinigung anteilig    12,50 EUR",
    "Vermessung Grundstück       140,00 EUR",
    "Gesamtbetrag                237,50 EUR",
    "",
    "Zahlbar innerhalb von vier Wochen auf das",
    "Konto der Stadtkasse Musterhausen. Bitte",
    "geben Sie bei der Zahlung das Aktenzeichen",
    "an, damit wir Ihre Zahlung zuordnen können.",
    "",
    "Rechtsbehelfsbelehrung: Gegen diesen",
    "Bescheid kann innerhalb eines Monats nach",
    "Bekanntgabe Widerspruch erhoben werden.",
    "Der Widerspruch ist schriftlich oder zur",
    "Niederschrift bei der Stadt Musterhausen,",
    "Marktplatz 1, 21337 Musterhausen, zu erheben.",
]

# Words the OCR must find on each page (chosen to be robust, not the whole text).
PAGE_1_WORDS = ["Aktenzeichen", "Müller-Weiß", "Grüner", "Abstandsflächen", "Grüßen"]
PAGE_2_WORDS = ["Gebührenbescheid", "Straßenreinigung", "Gesamtbetrag", "Stadtkasse"]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if FONT_PATH.exists():
        return ImageFont.truetype(str(FONT_PATH), size)
    # Without DejaVu, Pillow's built-in font (scalable since Pillow 10.1) still renders umlauts.
    return ImageFont.load_default(size=size)


def render_page(
    lines: Sequence[str], *, skew_deg: float = 0.0, turn_deg: int = 0, seed: int = 1
) -> Image.Image:
    """Render text lines as a grey-scale A5 scan: speckles, slight blur, skew and a turn."""
    page = Image.new("L", A5_PX, 255)
    draw = ImageDraw.Draw(page)
    font = _font(46)
    y = 180
    for line in lines:
        draw.text((160, y), line, font=font, fill=20)
        y += 72
    rng = random.Random(seed)
    for _ in range(1500):  # scanner dust
        x, y = rng.randrange(A5_PX[0]), rng.randrange(A5_PX[1])
        draw.point((x, y), fill=rng.randrange(0, 160))
    page = page.filter(ImageFilter.GaussianBlur(0.7))
    if skew_deg:
        page = page.rotate(skew_deg, resample=Image.Resampling.BICUBIC, fillcolor=255)
    if turn_deg:
        page = page.rotate(turn_deg, expand=True)
    return page


def letter_pages() -> list[Image.Image]:
    """The two pages of the letter: page 1 skewed by 2.5 degrees, page 2 upside down."""
    return [
        render_page(PAGE_1_LINES, skew_deg=2.5, seed=1),
        render_page(PAGE_2_LINES, skew_deg=-1.5, turn_deg=180, seed=2),
    ]


def write_png(path: Path, page: Image.Image, *, dpi: int | None = DPI) -> Path:
    """Save one page as PNG; dpi=None leaves out the resolution, as some phone apps do."""
    if dpi is None:
        page.save(path, "PNG")
    else:
        page.save(path, "PNG", dpi=(dpi, dpi))
    return path


def write_jpeg(path: Path, page: Image.Image) -> Path:
    """Save one page as JPEG at 300 DPI."""
    page.save(path, "JPEG", quality=85, dpi=(DPI, DPI))
    return path


def write_tiff(path: Path, pages: Sequence[Image.Image]) -> Path:
    """Save the pages as one bi-level multi-page TIFF (CCITT G4), as office scanners do."""
    bilevel = [p.point(lambda v: 255 if v > 140 else 0, mode="1") for p in pages]
    bilevel[0].save(
        path,
        "TIFF",
        save_all=True,
        append_images=bilevel[1:],
        compression="group4",
        dpi=(DPI, DPI),
    )
    return path


def write_image_pdf(path: Path, pages: Sequence[Image.Image]) -> Path:
    """Save the pages as an image-only PDF (no text layer), as a simple scanner does."""
    # Copies: Pillow keeps append_images on the saved images and reuses them on their next save.
    frames = [page.copy() for page in pages]
    frames[0].save(path, "PDF", save_all=True, append_images=frames[1:], resolution=DPI)
    return path


def _text_page(pdf: pikepdf.Pdf, lines: Sequence[str]) -> pikepdf.Page:
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type1,
            BaseFont=pikepdf.Name.Helvetica,
            Encoding=pikepdf.Name.WinAnsiEncoding,
        )
    )
    ops = [b"BT /F1 12 Tf 14 TL 60 540 Td"]
    for line in lines:
        ops.append(pikepdf.String(line.encode("cp1252")).unparse() + b" Tj T*")
    ops.append(b"ET")
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, 420, 595],
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
        Contents=pdf.make_stream(b"\n".join(ops)),
    )
    return pikepdf.Page(page)


def write_text_pdf(
    path: Path, lines: Sequence[str], *, scan_after: Image.Image | None = None
) -> Path:
    """A born-digital PDF page with real text; optionally followed by a scanned page."""
    with pikepdf.new() as pdf:
        pdf.pages.append(_text_page(pdf, lines))
        if scan_after is not None:
            scan = path.with_suffix(".scan.pdf")
            write_image_pdf(scan, [scan_after])
            with pikepdf.open(scan) as scanned:
                pdf.pages.extend(scanned.pages)
                pdf.save(path)
            scan.unlink()
        else:
            pdf.save(path)
    return path


def write_blank_pdf(path: Path, pages: int) -> Path:
    """A PDF of blank A4 pages, made in milliseconds even for thousands of pages."""
    with pikepdf.new() as pdf:
        for _ in range(pages):
            pdf.add_blank_page(page_size=(595, 842))
        pdf.save(path)
    return path


def write_encrypted_pdf(path: Path, source_pdf: Path) -> Path:
    """Encrypt a PDF with a user password, as a citizen's tax office export might be."""
    with pikepdf.open(source_pdf) as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(user="geheim", owner="geheim", R=6))
    return path


def write_truncated(path: Path, source: Path, keep: float = 0.5) -> Path:
    """Copy the first part of a file, as an interrupted upload leaves it."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_png_bomb(path: Path, width: int = 30_000, height: int = 30_000) -> Path:
    """A valid-looking 1-bit PNG header of huge dimensions with a tiny IDAT (a few KB on disk).

    Decoding it would need width x height pixels of memory; the code under test must refuse
    from the header alone.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    rows = zlib.compress(b"\0" * (1 + width // 8) * 16)  # only a few rows: never decoded
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
    return path


def _bilevel_image(pdf: pikepdf.Pdf, side: int) -> pikepdf.Stream:
    """A white 1-bit image of side x side pixels, Flate-compressed to a few KB."""
    compressor = zlib.compressobj(9)
    row = b"\xff" * ((side + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return pdf.make_stream(
        data,
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=side,
        Height=side,
        ColorSpace=pikepdf.Name.DeviceGray,
        BitsPerComponent=1,
        Filter=pikepdf.Name.FlateDecode,
    )


def _tiles(name: str, count: int, size: float) -> bytes:
    """Content that draws XObject `name` count x count times as tiles of size points."""
    return b"\n".join(
        f"q {size} 0 0 {size} {x * size} {y * size} cm /{name} Do Q".encode()
        for x in range(count)
        for y in range(count)
    )


def write_tiled_pdf(
    path: Path, side: int, *, tiles: int = 10, tile_inches: float = 1, in_form: bool = False
) -> Path:
    """One 1-bit image of side x side pixels drawn tiles x tiles times across a page.

    The file stays a few KB however large `side` is, but OCRmyPDF would render the page at
    side / tile_inches DPI, the resolution of its tiles. With in_form=True a Form XObject,
    drawn once, holds the image and draws the tiles, so the page's own resources show no image.
    """
    size = 72 * tile_inches
    with pikepdf.new() as pdf:
        image = _bilevel_image(pdf, side)
        page = pdf.add_blank_page(page_size=(size * tiles, size * tiles))
        if in_form:
            form = pdf.make_stream(
                _tiles("Im0", tiles, size),
                Type=pikepdf.Name.XObject,
                Subtype=pikepdf.Name.Form,
                BBox=[0, 0, size * tiles, size * tiles],
                Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
            )
            page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Fm0=form))
            page.Contents = pdf.make_stream(b"/Fm0 Do")
        else:
            page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
            page.Contents = pdf.make_stream(_tiles("Im0", tiles, size))
        pdf.save(path)
    return path


def write_inline_image_pdf(path: Path, side: int, *, drawn_inches: float = 10) -> Path:
    """A 10-inch page with one inline 1-bit image of side x side pixels, a few KB on disk.

    Inline images live in the content stream, where pikepdf's Page.get_images() does not look.
    The image data compresses twice (inside the image and again with the content stream), so
    even 40000 x 40000 pixels take about 1 KB.
    """
    compressor = zlib.compressobj(9)
    row = b"\xff" * ((side + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    size = 72 * drawn_inches
    with pikepdf.new() as pdf:
        page = pdf.add_blank_page(page_size=(720, 720))
        page.Contents = pdf.make_stream(
            f"q {size} 0 0 {size} 0 0 cm BI /W {side} /H {side} /CS /G /BPC 1 /F /Fl ID ".encode()
            + data
            + b"\nEI Q"
        )
        pdf.save(path)
    return path


def write_nested_forms_pdf(path: Path, *, levels: int, fan_out: int) -> Path:
    """Form XObjects that each draw the next `fan_out` times, `levels` deep, around one image.

    A few hundred bytes that expand to fan_out ** levels image draws.
    """
    with pikepdf.new() as pdf:
        drawn: pikepdf.Stream = _bilevel_image(pdf, 8)
        for _ in range(levels):
            drawn = pdf.make_stream(
                b" ".join([b"/X Do"] * fan_out),
                Type=pikepdf.Name.XObject,
                Subtype=pikepdf.Name.Form,
                BBox=[0, 0, 72, 72],
                Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(X=drawn)),
            )
        page = pdf.add_blank_page(page_size=(72, 72))
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(X=drawn))
        page.Contents = pdf.make_stream(b"q 72 0 0 72 0 0 cm /X Do Q")
        pdf.save(path)
    return path


def write_self_drawing_form_pdf(path: Path) -> Path:
    """A page that draws a Form XObject which draws itself: a renderer's endless loop."""
    with pikepdf.new() as pdf:
        form = pdf.make_stream(
            b"/Fm0 Do", Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form, BBox=[0, 0, 72, 72]
        )
        form.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Fm0=form))
        page = pdf.add_blank_page(page_size=(72, 72))
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Fm0=form))
        page.Contents = pdf.make_stream(b"/Fm0 Do")
        pdf.save(path)
    return path

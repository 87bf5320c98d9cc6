"""Bad input is refused with a typed error and a one-line message, quickly and before OCR."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

import ocr
from ocr.checks import check_pdf
from tests.ocr import scans


@pytest.fixture(scope="module")
def letter_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scans.write_image_pdf(
        tmp_path_factory.mktemp("bad") / "letter.pdf", scans.letter_pages()
    )


@pytest.fixture
def private_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the runner's work directory (and so the OCR process's command line) findable."""
    work_root = tmp_path / "work"
    work_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work_root))
    return work_root


def tesseract_shim(shim_dir: Path, monkeypatch: pytest.MonkeyPatch, page_work: str) -> Path:
    """Put a tesseract first on PATH that runs the Python `page_work` before each page's work.

    Version checks go straight to the real tesseract; `page_work` may end by running the real
    one with `run_real()`. Returns the shim's directory: the command line of each process
    started from it names it.
    """
    real = shutil.which("tesseract")
    assert real is not None
    shim_dir.mkdir()
    shim = shim_dir / "tesseract"
    shim.write_text(
        f"#!{sys.executable}\n"
        "import os, resource, sys, time\n"
        f"def run_real():\n    os.execv({real!r}, [{real!r}] + sys.argv[1:])\n"
        "if {'--version', '--list-langs'} & set(sys.argv):\n"
        "    run_real()\n"
        f"{page_work}\n"
    )
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim_dir}{os.pathsep}{os.environ['PATH']}")
    return shim_dir


@pytest.fixture
def hanging_tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put a tesseract first on PATH that answers version checks but hangs on every page."""
    shim_dir = tesseract_shim(tmp_path / "hanging-bin", monkeypatch, "time.sleep(600)")
    yield shim_dir
    for pid in processes_under(shim_dir):  # only if the code under test left them behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def tesseract_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a tesseract first on PATH that logs each call, then runs the real one.

    Returns the log file, which exists once OCRmyPDF has started to OCR (it checks tesseract's
    version first).
    """
    log = tmp_path / "tesseract-calls.log"
    shim_dir = tmp_path / "logging-bin"
    shim_dir.mkdir()
    real = shutil.which("tesseract")
    assert real is not None
    shim = shim_dir / "tesseract"
    shim.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"with open({str(log)!r}, 'a') as log:\n"
        "    log.write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}] + sys.argv[1:])\n"
    )
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def processes_under(marker: Path) -> list[int]:
    """Live processes whose command line mentions `marker`: the OCR job and what it started."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # not a process, or it has just gone
        if str(marker).encode() in cmdline and state != b"Z":
            pids.append(int(entry.name))
    return pids


def all_gone(marker: Path) -> bool:
    """Whether every process under `marker` is gone within a second (killed ones go at once)."""
    deadline = time.monotonic() + 1
    while processes_under(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return processes_under(marker) == []


def hanging_pages(shim_dir: Path) -> list[int]:
    """The shim's processes that hang on a page (not its passing version checks)."""
    return [
        pid
        for pid in processes_under(shim_dir)
        if not {b"--version", b"--list-langs"} & set(_cmdline(pid).split(b"\0"))
    ]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def refuse(src: Path, tmp_path: Path, error: type[ocr.OcrError], **options: object) -> str:
    """Run OCR on bad input; check the error's type, permanence, speed and that nothing is left."""
    dst = tmp_path / "out.pdf"
    started = time.monotonic()
    with pytest.raises(error) as caught:
        ocr.run_ocr(src, dst, ocr.OcrOptions(**options))  # type: ignore[arg-type]
    assert time.monotonic() - started < 15
    assert caught.value.permanent is True
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".")
    assert not dst.exists()
    assert not list(tmp_path.glob(".*.part"))
    return message


def test_empty_file_is_invalid(tmp_path: Path) -> None:
    src = tmp_path / "empty.pdf"
    src.write_bytes(b"")

    assert "empty" in refuse(src, tmp_path, ocr.InvalidInput)


def test_random_bytes_named_pdf_are_an_unsupported_type(tmp_path: Path) -> None:
    src = tmp_path / "invoice.pdf"
    src.write_bytes(random.Random(7).randbytes(4096))

    assert "Unsupported file type" in refuse(src, tmp_path, ocr.InvalidInput)


def test_truncated_pdf_is_invalid(letter_pdf: Path, tmp_path: Path) -> None:
    src = scans.write_truncated(tmp_path / "cut.pdf", letter_pdf)

    assert "truncated" in refuse(src, tmp_path, ocr.InvalidInput)


def test_damaged_pdf_is_invalid(tmp_path: Path) -> None:
    src = tmp_path / "damaged.pdf"
    src.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")

    assert "damaged" in refuse(src, tmp_path, ocr.InvalidInput)


def test_truncated_image_is_invalid(tmp_path: Path) -> None:
    png = scans.write_png(tmp_path / "full.png", scans.render_page(["Aktenzeichen"]))
    src = scans.write_truncated(tmp_path / "cut.png", png, keep=0.6)

    assert "cannot be decoded" in refuse(src, tmp_path, ocr.InvalidInput)


def test_encrypted_pdf_is_refused(letter_pdf: Path, tmp_path: Path) -> None:
    src = scans.write_encrypted_pdf(tmp_path / "secret.pdf", letter_pdf)

    assert "password" in refuse(src, tmp_path, ocr.EncryptedPdf)


def test_signed_pdf_is_not_changed(letter_pdf: Path, tmp_path: Path) -> None:
    src = tmp_path / "signed.pdf"
    with pikepdf.open(letter_pdf) as pdf:
        # SigFlags bit 1: the document contains at least one signature field.
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(), SigFlags=3)
        pdf.save(src)

    assert "signature" in refuse(src, tmp_path, ocr.SignedPdf)


def test_png_of_30000_by_30000_pixels_is_refused_from_its_header(tmp_path: Path) -> None:
    src = scans.write_png_bomb(tmp_path / "bomb.png")
    assert src.stat().st_size < 10_000

    assert "30000 x 30000" in refuse(src, tmp_path, ocr.ImageTooLarge)


def test_pdf_poster_with_vector_graphics_is_refused_at_ocrmypdfs_400_dpi(tmp_path: Path) -> None:
    src = tmp_path / "poster.pdf"
    with pikepdf.new() as pdf:
        image = pdf.make_stream(
            b"\xff" * 100,
            Type=pikepdf.Name.XObject,
            Subtype=pikepdf.Name.Image,
            Width=10,
            Height=10,
            ColorSpace=pikepdf.Name.DeviceGray,
            BitsPerComponent=8,
        )
        page = pdf.add_blank_page(page_size=(14_400, 14_400))  # 200 x 200 inches
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        # Alone, the 10 x 10 image would set the page's resolution to 0.05 DPI; the one line
        # makes OCRmyPDF render the page at 400 DPI, so as not to lose the drawing's detail.
        page.Contents = pdf.make_stream(b"q 14400 0 0 14400 0 0 cm /Im0 Do Q 0 0 m 72 72 l S")
        pdf.save(src)

    message = refuse(src, tmp_path, ocr.ImageTooLarge)

    assert "200 x 200 inches" in message
    assert "400 DPI" in message


# Small as the files are, OCRmyPDF would render these pages at thousands of DPI: the check must
# refuse them from their structure. A 1 GiB memory cap keeps a check that missed one from
# taking the test machine down; that would fail as MemoryLimitExceeded, not ImageTooLarge.
BOMB_CAP = {"max_memory_bytes": 1 << 30}


@pytest.mark.parametrize(("side", "gigapixels"), [(4_000, "1600 MP"), (10_000, "10000 MP")])
def test_small_image_drawn_as_tiles_renders_too_large_and_is_refused_before_ocr(
    side: int, gigapixels: str, tmp_path: Path, tesseract_calls: Path
) -> None:
    src = scans.write_tiled_pdf(tmp_path / "tiles.pdf", side)
    assert src.stat().st_size < 20_000

    message = refuse(src, tmp_path, ocr.ImageTooLarge, **BOMB_CAP)

    assert f"10 x 10 inches and would be rendered at {side} DPI" in message
    assert gigapixels in message
    assert not tesseract_calls.exists()  # OCRmyPDF never started


def test_tiles_drawn_by_a_form_xobject_are_refused_before_ocr(
    tmp_path: Path, tesseract_calls: Path
) -> None:
    src = scans.write_tiled_pdf(tmp_path / "form.pdf", 4_000, in_form=True)

    message = refuse(src, tmp_path, ocr.ImageTooLarge, **BOMB_CAP)

    assert "4000 DPI" in message
    assert not tesseract_calls.exists()


def test_inline_image_of_40000_by_40000_pixels_is_refused_before_ocr(
    tmp_path: Path, tesseract_calls: Path
) -> None:
    src = scans.write_inline_image_pdf(tmp_path / "inline.pdf", 40_000)
    assert src.stat().st_size < 2_000

    assert "40000 x 40000 pixels" in refuse(src, tmp_path, ocr.ImageTooLarge, **BOMB_CAP)
    assert not tesseract_calls.exists()


def test_inline_image_drawn_one_inch_wide_on_a_large_page_is_refused_before_ocr(
    tmp_path: Path, tesseract_calls: Path
) -> None:
    # 16 MP is a plausible scan; drawn 1 inch wide it sets the 10-inch page to 4000 DPI.
    src = scans.write_inline_image_pdf(tmp_path / "inline.pdf", 4_000, drawn_inches=1)

    assert "4000 DPI" in refuse(src, tmp_path, ocr.ImageTooLarge, **BOMB_CAP)
    assert not tesseract_calls.exists()


def test_render_check_measures_the_page_at_the_resolution_of_its_images(
    tmp_path: Path,
) -> None:
    # 0.1-inch tiles of 100 x 100 pixels: 1000 DPI, so the 2-inch page renders at 2000 x 2000.
    src = scans.write_tiled_pdf(tmp_path / "tiles.pdf", 100, tiles=20, tile_inches=0.1)

    assert check_pdf(src, max_pages=1, max_pixels=4_000_000) == 1
    with pytest.raises(ocr.ImageTooLarge, match="2 x 2 inches .* 1000 DPI"):
        check_pdf(src, max_pages=1, max_pixels=3_999_999)


def test_form_xobjects_nested_ten_deep_are_refused_in_a_moment(tmp_path: Path) -> None:
    # Ten forms that each draw the next ten times: 10 ** 10 images, a 3 KB file.
    src = scans.write_nested_forms_pdf(tmp_path / "nested.pdf", levels=10, fan_out=10)

    assert "more than 100000 times" in refuse(src, tmp_path, ocr.InvalidInput, **BOMB_CAP)


def test_form_xobject_that_draws_itself_is_refused(tmp_path: Path) -> None:
    src = scans.write_self_drawing_form_pdf(tmp_path / "loop.pdf")

    assert "draws itself" in refuse(src, tmp_path, ocr.InvalidInput, **BOMB_CAP)


def test_bomb_that_slips_past_the_checks_hits_the_memory_cap_and_is_permanent(
    tmp_path: Path,
) -> None:
    # A pixel limit of 1 TP lets the 1600 MP page through, as a check that guessed wrong would.
    src = scans.write_tiled_pdf(tmp_path / "tiles.pdf", 4_000)

    message = refuse(
        src, tmp_path, ocr.MemoryLimitExceeded, max_pixels=10**12, max_memory_bytes=1 << 30
    )

    assert "limit of 1.0 GiB per process" in message


def test_tesseract_out_of_memory_under_the_cap_is_permanent(
    letter_pdf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tesseract gets less memory than a page needs, so its allocations really fail.
    tesseract_shim(
        tmp_path / "starved-bin",
        monkeypatch,
        "resource.setrlimit(resource.RLIMIT_AS, (100 << 20, 100 << 20))\nrun_real()",
    )

    message = refuse(letter_pdf, tmp_path, ocr.MemoryLimitExceeded)

    assert "GiB per process" in message


@pytest.fixture
def rasteriser_meeting_a_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install an OCRmyPDF plugin whose page rasteriser hands Pillow a 30000 x 30000 image.

    So Pillow refuses a rendered page as a decompression bomb, as it would one that renders
    larger than the checks predicted. The OCR process finds the plugin through its entry point
    on PYTHONPATH, the way OCRmyPDF loads installed plugins.
    """
    site = tmp_path / "plugins"
    info = site / "eakte_test_bomb-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eakte-test-bomb\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ocrmypdf]\nbomb = eakte_test_bomb\n")
    bomb = scans.write_png_bomb(tmp_path / "rendered.png")
    (site / "eakte_test_bomb.py").write_text(
        '"""Rasterise every page into an image Pillow refuses as a decompression bomb."""\n'
        "import shutil\n"
        "from ocrmypdf import hookimpl\n"
        "from PIL import Image\n"
        "@hookimpl\n"
        "def rasterize_pdf_page(output_file):\n"
        f"    shutil.copyfile({str(bomb)!r}, output_file)\n"
        "    with Image.open(output_file):\n"
        "        return output_file\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))


@pytest.mark.usefixtures("rasteriser_meeting_a_bomb")
def test_decompression_bomb_met_during_ocr_is_image_too_large(
    letter_pdf: Path, tmp_path: Path
) -> None:
    message = refuse(letter_pdf, tmp_path, ocr.ImageTooLarge)

    assert "too large to decode" in message
    assert "900000000 pixels" in message


def test_pdf_with_2000_blank_pages_is_refused_before_ocr(tmp_path: Path) -> None:
    src = scans.write_blank_pdf(tmp_path / "blank.pdf", 2000)

    assert "2000 pages" in refuse(src, tmp_path, ocr.TooManyPages)


def test_tiff_frames_count_as_pages(tmp_path: Path) -> None:
    pages = [Image.new("L", (200, 200), 255) for _ in range(3)]
    src = scans.write_tiff(tmp_path / "three.tif", pages)

    assert "3 pages" in refuse(src, tmp_path, ocr.TooManyPages, max_pages=2)


def test_tiny_timeout_on_a_real_document_is_a_transient_error(
    letter_pdf: Path, tmp_path: Path, private_tmpdir: Path
) -> None:
    dst = tmp_path / "out.pdf"
    started = time.monotonic()

    with pytest.raises(ocr.OcrTimeout, match="within 0.5 s") as caught:
        ocr.run_ocr(letter_pdf, dst, ocr.OcrOptions(timeout_s=0.5))

    assert time.monotonic() - started < 5
    assert caught.value.permanent is False
    assert all_gone(private_tmpdir)
    assert list(private_tmpdir.iterdir()) == []  # OCRmyPDF's scratch files went with it
    assert not dst.exists()


def test_timeout_kills_the_ocr_process_and_the_tesseract_it_started(
    letter_pdf: Path, tmp_path: Path, hanging_tesseract: Path
) -> None:
    seen_hanging = threading.Event()

    def watch() -> None:
        for _ in range(200):
            if hanging_pages(hanging_tesseract):
                seen_hanging.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with pytest.raises(ocr.OcrTimeout):
        ocr.run_ocr(letter_pdf, tmp_path / "out.pdf", ocr.OcrOptions(timeout_s=5))
    watcher.join()

    assert seen_hanging.is_set()
    assert all_gone(hanging_tesseract)


def test_ocr_process_killed_from_outside_is_a_transient_error(
    letter_pdf: Path, tmp_path: Path, hanging_tesseract: Path, private_tmpdir: Path
) -> None:
    def kill_ocr_job_once_tesseract_runs() -> None:
        # The OOM killer picks the biggest process, the job, and leaves tesseract behind.
        for _ in range(400):
            if hanging_pages(hanging_tesseract):
                for pid in processes_under(private_tmpdir):
                    if b"ocr.job" in _cmdline(pid):
                        os.kill(pid, signal.SIGKILL)
                        return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_ocr_job_once_tesseract_runs)
    killer.start()
    try:
        with pytest.raises(ocr.OcrError, match="SIGKILL") as caught:
            ocr.run_ocr(letter_pdf, tmp_path / "out.pdf", ocr.OcrOptions(timeout_s=30))
    finally:
        killer.join()

    assert type(caught.value) is ocr.OcrError
    assert caught.value.permanent is False
    assert all_gone(hanging_tesseract)  # killed with the job's process group

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


@pytest.fixture
def hanging_tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put a tesseract first on PATH that answers version checks but hangs on every page.

    Yields its directory: the command line of each hanging process names it.
    """
    real = shutil.which("tesseract")
    assert real is not None
    shim_dir = tmp_path / "hanging-bin"
    shim_dir.mkdir()
    shim = shim_dir / "tesseract"
    shim.write_text(
        f"#!{sys.executable}\n"
        "import os, sys, time\n"
        "if {'--version', '--list-langs'} & set(sys.argv):\n"
        f"    os.execv({real!r}, [{real!r}] + sys.argv[1:])\n"
        "time.sleep(600)\n"
    )
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim_dir}{os.pathsep}{os.environ['PATH']}")
    yield shim_dir
    for pid in processes_under(shim_dir):  # only if the code under test left them behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


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


def test_pdf_page_that_would_rasterise_too_big_is_refused(tmp_path: Path) -> None:
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
        page.Contents = pdf.make_stream(b"q 14400 0 0 14400 0 0 cm /Im0 Do Q")
        pdf.save(src)

    assert "200 x 200 inches" in refuse(src, tmp_path, ocr.ImageTooLarge)


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

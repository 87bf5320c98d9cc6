"""Run one OCR job in a child process, with a timeout, and return its result or typed error."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ocr.checks import check_supported
from ocr.errors import ERRORS_BY_NAME, OcrError, OcrTimeout
from ocr.models import OcrOptions, OcrResult

log = logging.getLogger(__name__)

# The directory that holds the `ocr` package, so the child imports this very code.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def run_ocr(src: Path, dst_pdf: Path, options: OcrOptions | None = None) -> OcrResult:
    """OCR `src` (PDF, TIFF, JPEG or PNG) into the searchable PDF `dst_pdf`; raise OcrError.

    `dst_pdf` appears complete or not at all, so a retried job simply overwrites it.
    """
    options = options or OcrOptions()
    mime = check_supported(src)
    # Written next to dst_pdf, so the final rename stays on one file system and is atomic.
    partial = dst_pdf.with_name(f".{dst_pdf.name}.{uuid.uuid4().hex}.part")
    try:
        with tempfile.TemporaryDirectory(prefix="eakte-ocr-") as tmp:
            work = Path(tmp)
            request = {
                "src": str(src.resolve()),
                "mime": mime,
                "output_pdf": str(partial.resolve()),
                "options": dataclasses.asdict(options),
            }
            (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
            data = _run_child(work, options.timeout_s)
        result = _parse_result(data, dst_pdf)
        os.replace(partial, dst_pdf)
    finally:
        partial.unlink(missing_ok=True)
    return result


def _parse_result(data: dict[str, object], output_pdf: Path) -> OcrResult:
    """The OcrResult the OCR process reported, or the typed error it reported, raised."""
    if "error" in data:
        error = ERRORS_BY_NAME.get(str(data["error"]), OcrError)
        raise error(str(data["message"]), permanent=bool(data["permanent"]))
    pdfa = data["pdfa"]
    return OcrResult(
        output_pdf=output_pdf,
        page_texts=[str(text) for text in _as_list(data["page_texts"])],
        skipped_pages=[int(str(number)) for number in _as_list(data["skipped_pages"])],
        pdfa=None if pdfa is None else str(pdfa),
    )


def _run_child(work: Path, timeout_s: float) -> dict[str, object]:
    """Run `python -m ocr.job` in its own process group; kill the group when done or late."""
    result_path = work / "result.json"
    stderr_path = work / "stderr.log"
    command = [sys.executable, "-m", "ocr.job", str(work / "request.json"), str(result_path)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env["TMPDIR"] = str(work)  # OCRmyPDF's scratch files go where we clean up, even if killed
    with stderr_path.open("wb") as stderr:
        child = subprocess.Popen(  # noqa: S603 (our own interpreter and module, no shell)
            command,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            cwd=work,
            env=env,
            start_new_session=True,  # its own process group: tesseract & co. die with it
        )
        try:
            finished = _wait_without_reaping(child, timeout_s)
        finally:
            # Also after a normal exit: a child killed by the OOM killer leaves tesseract behind.
            _kill_group_and_reap(child)
    if not finished:
        raise OcrTimeout(
            f"OCR did not finish within {timeout_s:g} s; "
            "retry when the system is less busy, or raise timeout_s."
        )
    returncode = child.returncode
    errors = stderr_path.read_text(encoding="utf-8", errors="replace").strip()
    if result_path.exists():
        data = json.loads(result_path.read_text(encoding="utf-8"))
        if errors and data.get("error") == "OcrError":  # unexpected: keep the traceback
            log.warning("OCR job failed: %s\n%s", data["message"], errors)
        elif errors:  # OCRmyPDF's warnings, e.g. on poor image quality
            log.debug("OCR job said:\n%s", errors)
        return dict(data)
    log.warning("OCR process exited with %s without a result:\n%s", returncode, errors)
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (most likely out of memory)" if -returncode == signal.SIGKILL else ""
        raise OcrError(f"The OCR process was killed by {name}{hint}; retry later.")
    last_line = errors.splitlines()[-1] if errors else "no error output"
    raise OcrError(f"The OCR process failed with exit code {returncode}: {last_line}")


def _wait_without_reaping(child: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait for the child to exit, leaving it a zombie: its process group id stays reserved."""
    deadline = time.monotonic() + timeout_s
    while os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_group_and_reap(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # nothing left in the group
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _as_list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise OcrError(f"The OCR process returned a malformed result: {value!r:.100}")
    return value

"""Typed OCR failures, one class per kind, each with a one-line message a person can act on."""

from __future__ import annotations


class OcrError(Exception):
    """OCR of a document failed.

    `permanent` tells the pipeline whether trying the same input again can help: permanent
    errors belong to the document (quarantine it), the others to the machine (retry later).
    """

    permanent: bool = False
    default_message: str = "OCR failed."

    def __init__(self, message: str = "", *, permanent: bool | None = None) -> None:
        # One line, however the underlying library laid out its message.
        self.message = " ".join((message or self.default_message).split())
        super().__init__(self.message)
        if permanent is not None:
            self.permanent = permanent


class InvalidInput(OcrError):
    """The file is empty, of an unsupported type, truncated or damaged."""

    permanent = True


class EncryptedPdf(OcrError):
    """The PDF is encrypted, so its pages cannot be read or changed."""

    permanent = True
    default_message = (
        "The PDF is encrypted (password-protected); ask the sender for an unprotected copy."
    )


class SignedPdf(OcrError):
    """The PDF carries a digital signature that adding a text layer would invalidate."""

    permanent = True
    default_message = (
        "The PDF carries a digital signature that OCR would invalidate; file it without OCR."
    )


class ImageTooLarge(OcrError):
    """An image or page has more pixels than allowed (a decompression bomb, or a huge plan)."""

    permanent = True


class MemoryLimitExceeded(OcrError):
    """OCR needed more memory than the cap of its process (`OcrOptions.memory_limit`).

    Permanent: the cap is per process, not the machine's free memory, so the same document
    fails the same way on a quiet machine. It is what a page that renders far larger than the
    pixel checks predicted (a decompression bomb they missed) ends as.
    """

    permanent = True


class TooManyPages(OcrError):
    """The document has more pages than allowed."""

    permanent = True


class OcrTimeout(OcrError):
    """OCR did not finish in time; it may on a less busy machine, so not permanent."""

    permanent = False


class OcrMisconfigured(OcrError):
    """The OCR installation or options are wrong (e.g. a language pack is missing)."""

    permanent = False


ERRORS_BY_NAME: dict[str, type[OcrError]] = {
    cls.__name__: cls
    for cls in (
        OcrError,
        InvalidInput,
        EncryptedPdf,
        SignedPdf,
        ImageTooLarge,
        MemoryLimitExceeded,
        TooManyPages,
        OcrTimeout,
        OcrMisconfigured,
    )
}

"""Finding file references (Aktenzeichen) in OCR text, tolerant of what OCR does to them."""

from __future__ import annotations

import re

# Plan code, year and sequence, e.g. `32.10.05-2026/0042`. OCR often puts spaces around the
# separators or reads a dash as an en dash; the pattern allows both, then we normalise.
_REFERENCE = re.compile(
    r"(?<![\w.])(\d{1,4}(?:\s?\.\s?\d{1,4}){0,6})\s?[-\u2010-\u2015]\s?((?:19|20)\d{2})"
    r"\s?/\s?(\d{1,6})(?!\d)"
)


def find_references(text: str) -> list[str]:
    """Candidate references in order of appearance, normalised, without duplicates."""
    found: list[str] = []
    for match in _REFERENCE.finditer(text):
        code = re.sub(r"\s", "", match.group(1))
        year, number = match.group(2), int(match.group(3))
        reference = f"{code}-{year}/{number:04d}"
        if reference not in found:
            found.append(reference)
    return found

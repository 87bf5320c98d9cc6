"""File references are found in OCR text, including the ways OCR mangles them."""

from __future__ import annotations

from inbox.references import find_references


def test_reference_in_a_letter_is_found() -> None:
    text = "Stadt Musterhausen\nAktenzeichen: 32.10.05-2026/0042\nDatum: 14.03.2026"
    assert find_references(text) == ["32.10.05-2026/0042"]


def test_ocr_spacing_and_dashes_are_normalised() -> None:
    assert find_references("Az. 32. 10.05 – 2026 / 42") == ["32.10.05-2026/0042"]
    assert find_references("Az.: 63.01-2025/0007, bitte angeben") == ["63.01-2025/0007"]


def test_dates_amounts_and_phone_numbers_are_not_references() -> None:
    text = "vom 14.03.2026, Betrag 237,50 EUR, Tel. 040-1234567, Nr. 2026-117"
    assert find_references(text) == []


def test_several_references_keep_their_order_once_each() -> None:
    text = "Bezug: 32.10-2024/0001 und 41.2-2026/0003; erneut 32.10-2024/0001"
    assert find_references(text) == ["32.10-2024/0001", "41.2-2026/0003"]

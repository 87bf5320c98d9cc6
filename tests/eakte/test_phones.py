"""Phone numbers are normalised to E.164 whatever the notation."""

from __future__ import annotations

import pytest

from eakte.contacts.phones import InternalNumber, InvalidPhoneNumber, normalise

NOTATIONS = [
    "040 1234567",
    "+49 40 1234567",
    "0049401234567",
    "(040) 123 45 67",
    "+49 (0)40 1234567",
    "040/1234567",
    "040-1234567",
    "tel:+49-40-1234567",
    "TEL:+49401234567;phone-context=+49",
]


@pytest.mark.parametrize("raw", NOTATIONS)
def test_every_notation_gives_the_same_e164(raw: str) -> None:
    assert normalise(raw) == "+49401234567"


@pytest.mark.parametrize("raw", NOTATIONS)
def test_a_local_area_code_changes_no_full_number(raw: str) -> None:
    assert normalise(raw, local_area_code="4101") == "+49401234567"


def test_local_number_takes_the_configured_area_code() -> None:
    assert normalise("123456", local_area_code="4101") == "+494101123456"
    assert normalise("04101 123456", local_area_code="4101") == "+494101123456"
    assert normalise("12345", local_area_code="4101") == "+49410112345"  # shortest allowed


def test_foreign_number_keeps_its_country() -> None:
    assert normalise("+43 1 5131234") == "+4315131234"


@pytest.mark.parametrize("raw", ["201", "2042", "**21", "*21#", "#31#0401234567", "123*4567"])
@pytest.mark.parametrize("area", [None, "4101"])
def test_extensions_and_service_codes_are_internal(raw: str, area: str | None) -> None:
    # With an area code, 201 would otherwise become +494101201: a stranger's number.
    with pytest.raises(InternalNumber):
        normalise(raw, local_area_code=area)


@pytest.mark.parametrize("raw", ["", "abc", "12", "+49 40", "0000000000000000000", "tel:"])
def test_malformed_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise(raw)

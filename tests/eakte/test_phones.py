"""Phone numbers are normalised to E.164 whatever the notation."""

from __future__ import annotations

import pytest

from eakte.contacts.phones import InvalidPhoneNumber, normalise


@pytest.mark.parametrize(
    "raw",
    [
        "040 1234567",
        "+49 40 1234567",
        "0049401234567",
        "(040) 123 45 67",
        "+49 (0)40 1234567",
        "040/1234567",
        "040-1234567",
    ],
)
def test_every_notation_gives_the_same_e164(raw: str) -> None:
    assert normalise(raw) == "+49401234567"


def test_local_number_takes_the_configured_area_code() -> None:
    assert normalise("123456", local_area_code="4101") == "+494101123456"
    assert normalise("04101 123456", local_area_code="4101") == "+494101123456"


def test_foreign_number_keeps_its_country() -> None:
    assert normalise("+43 1 5131234") == "+4315131234"


@pytest.mark.parametrize("raw", ["", "abc", "12", "+49 40", "0000000000000000000"])
def test_malformed_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise(raw)

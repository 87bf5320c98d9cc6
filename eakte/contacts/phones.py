"""Phone number normalisation to E.164 with the phonenumbers library."""

from __future__ import annotations

import phonenumbers

from eakte.errors import InvalidInput


class InvalidPhoneNumber(InvalidInput):
    """A phone number that cannot be a real number."""


def normalise(raw: str, region: str = "DE", local_area_code: str | None = None) -> str:
    """Return `raw` in E.164 (`+49401234567`) or raise InvalidPhoneNumber.

    Accepts national (`040 1234567`), international (`+49 40 1234567`,
    `0049401234567`) and, with `local_area_code`, local notation (`1234567`:
    a number dialled in town without its area code).
    """
    text = raw.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        raise InvalidPhoneNumber(f"{raw!r} is not a phone number")
    if local_area_code and not text.startswith(("+", "0")):
        text = "0" + local_area_code.lstrip("0") + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{raw!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

"""Phone number normalisation to E.164 with the phonenumbers library."""

from __future__ import annotations

import phonenumbers

from eakte.errors import InvalidInput

# German subscriber numbers (without the area code) have at least five digits in all but a
# few tiny villages; anything shorter dialled without a prefix is an internal extension
# (`201`), not a number in town. Treating those few villages' numbers as internal only
# costs a pop-up without a contact; turning every extension into an outside number would
# show a stranger's file.
MIN_SUBSCRIBER_DIGITS = 5


class InvalidPhoneNumber(InvalidInput):
    """A phone number that cannot be a real number."""


class InternalNumber(InvalidPhoneNumber):
    """An internal extension or a service code (`201`, `**21`, `*21#`): no outside number."""


def _strip_tel_uri(text: str) -> str:
    """`tel:+49-40-1234567;ext=1` (RFC 3966) -> `+49-40-1234567`; other text unchanged."""
    if text[:4].lower() != "tel:":
        return text
    return text[4:].split(";", 1)[0].strip()


def normalise(raw: str, region: str = "DE", local_area_code: str | None = None) -> str:
    """Return `raw` in E.164 (`+49401234567`) or raise InvalidPhoneNumber.

    Accepts national (`040 1234567`), international (`+49 40 1234567`,
    `0049401234567`, `tel:+49401234567`) and, with `local_area_code`, local notation
    (`1234567`: a number dialled in town without its area code). Internal numbers (local
    notation too short for a subscriber number, or anything holding `*` or `#`) raise
    InternalNumber: they must never gain the area code and become an outside number.
    """
    text = _strip_tel_uri(raw.strip())
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        raise InvalidPhoneNumber(f"{raw!r} is not a phone number")
    if "*" in text or "#" in text:
        raise InternalNumber(f"{raw!r} is a service code, not a phone number")
    # The first digit or plus decides the notation: "(040) 123" is national as "040 123" is.
    lead = next(ch for ch in text if ch.isdigit() or ch == "+")
    if lead not in "+0":
        # Local notation: without a prefix, a short number is an extension of the PBX.
        if len(digits) < MIN_SUBSCRIBER_DIGITS:
            raise InternalNumber(f"{raw!r} is an internal extension, not a phone number")
        if local_area_code:
            text = "0" + local_area_code.lstrip("0") + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{raw!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

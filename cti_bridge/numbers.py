"""Caller numbers: withheld markers and normalisation to E.164 for the phone index."""

from __future__ import annotations

from eakte.contacts.phones import InvalidPhoneNumber, normalise

# What PBXs and carriers put where the caller withheld the number (CLIR) or it is unknown.
WITHHELD = frozenset(
    {
        "",
        "anonymous",
        "unknown",
        "<unknown>",
        "withheld",
        "restricted",
        "private",
        "unavailable",
        "unavailable number",
        "clir",
        "0",
    }
)


def _user_part(raw: str) -> str:
    """The number in what a PBX reports: `sip:0401234@pbx` and `tel:+49401234;x=y` unwrapped."""
    text = raw.strip().strip('"')
    scheme, colon, rest = text.partition(":")
    if colon and scheme.lower() in {"sip", "sips", "tel"}:
        text = rest.split("@", 1)[0].split(";", 1)[0]
    return text.strip()


def is_withheld(raw: str | None) -> bool:
    """True if the PBX reports no usable caller number (withheld, anonymous, unknown)."""
    if raw is None:
        return True
    text = _user_part(raw).lower()
    return text in WITHHELD or not any(ch.isdigit() for ch in text)


def caller_e164(raw: str | None, region: str, local_area_code: str | None) -> str | None:
    """The caller's number in E.164, or None when withheld, unknown or not a valid number.

    A call is never refused because of its caller number: an unusable one only means the
    pop-up has no contact. An internal caller (`201`, see `InternalNumber`) is looked up
    under no outside number either.
    """
    if raw is None or is_withheld(raw):
        return None
    try:
        return normalise(_user_part(raw), region, local_area_code)
    except InvalidPhoneNumber:
        return None

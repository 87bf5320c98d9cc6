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


def is_withheld(raw: str | None) -> bool:
    """True if the PBX reports no usable caller number (withheld, anonymous, unknown)."""
    if raw is None:
        return True
    text = raw.strip().strip('"').lower()
    if text.startswith("sip:"):
        text = text[4:].split("@", 1)[0]
    return text in WITHHELD or not any(ch.isdigit() for ch in text)


def caller_e164(raw: str | None, region: str, local_area_code: str | None) -> str | None:
    """The caller's number in E.164, or None when withheld, unknown or not a valid number.

    A call is never refused because of its caller number: an unusable one only means the
    pop-up has no contact.
    """
    if raw is None or is_withheld(raw):
        return None
    text = raw.strip().strip('"')
    if text.lower().startswith("sip:"):
        text = text[4:].split("@", 1)[0]
    try:
        return normalise(text, region, local_area_code)
    except InvalidPhoneNumber:
        return None

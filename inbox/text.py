"""Text from outside (mail headers and bodies, PDF text layers, OCR) made fit to store."""

from __future__ import annotations


def storable(text: str) -> str:
    """The text without NUL characters, which PostgreSQL refuses in every text column.

    A NUL carries no meaning in a subject, a name or a letter's text, but a sender can put one
    there, and one such character would make the whole write fail. SQLite would keep it; it is
    dropped on both databases so an item reads the same on each.
    """
    return text.replace("\x00", "")


def storable_or_none(text: str | None) -> str | None:
    """`storable` for an optional text; None stays None."""
    return None if text is None else storable(text)

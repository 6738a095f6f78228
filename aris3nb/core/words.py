"""Counts and lists in messages: "1 problem", "3 problems: a; b; c; and 2 more"."""

from __future__ import annotations

from collections.abc import Sequence

#: How many items a one-line message lists before "and N more".
SHOWN = 3


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 problem``, ``2 problems`` (``plural`` for nouns that do not take an s)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def listed(items: Sequence[str], noun: str = "problem", shown: int = SHOWN) -> str:
    """``2 problems: a; b``, at most ``shown`` of them, then ``; and N more``."""
    head = "; ".join(items[:shown])
    more = len(items) - shown
    return f"{count(len(items), noun)}: {head}" + (f"; and {more} more" if more > 0 else "")


def recorded(value: object) -> str:
    """A value read from a document, as a one-line message shows it: printable text and numbers
    as they are, anything else (a newline, a control character, a list) as its ``repr``."""
    text = str(value)
    plain = isinstance(value, (str, int, float)) and not isinstance(value, bool) and text.isprintable()
    return text if plain else repr(value)

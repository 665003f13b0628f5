"""What a person types (a reply, a note, a reason; a sale's fields): trimmed, never empty, never
longer than its column or its channel allows, never a character no database can store, refused
in words the admin translates."""

from __future__ import annotations

import re
import unicodedata

LINE_BREAKS = "\t\n\r"  # what a note or a reply may hold that a name may not
# Every character of Unicode's categories Cc (controls) and Cs (surrogates): one scan in C
# finds whether a text holds any, instead of a category looked up per character.
_SUSPECT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def unfit_character(text: str, allowed: str = "") -> str | None:
    """Why `text` cannot be stored, or None: a control character other than those `allowed`
    (PostgreSQL refuses a NUL, and no till exports one on purpose) or half of a UTF-16 pair,
    which no database encoding can hold. Line breaks are for notes, never names or ids."""
    if _SUSPECT.search(text) is None:
        return None
    for char in text:
        kind = unicodedata.category(char)
        if kind == "Cc" and char not in allowed:
            return f"contains the control character U+{ord(char):04X}"
        if kind == "Cs":
            return f"contains the invalid character U+{ord(char):04X}"
    return None


def typed_text(
    text: str | None, *, empty: str, what: str, most: int, error: type[ValueError] = ValueError
) -> str:
    """`text` trimmed; `error(empty)` when nothing is left, and when more than `most`
    characters are, or one that cannot be stored (line breaks and tabs can), a refusal that
    names `what`."""
    text = (text or "").strip()
    if not text:
        raise error(empty)
    if len(text) > most:
        raise error(f"{what} can have at most {most} characters ({len(text)} given)")
    unfit = unfit_character(text, allowed=LINE_BREAKS)
    if unfit is not None:
        raise error(f"{what} {unfit}")
    return text


def text_cell(value: object, most: int | None = None) -> str | None:
    """A text field of a sale or a product (a CSV cell, a JSON value, a form field) trimmed;
    None when absent or blank, since a CSV cell is never missing. Raises ValueError saying
    what is wrong: not text, a character no database stores, longer than its column."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = value.strip()
    if not text:
        return None
    unfit = unfit_character(text)
    if unfit:
        raise ValueError(unfit)
    if most is not None and len(text) > most:
        raise ValueError(f"must be at most {most} characters (got {len(text)})")
    return text


WORDS_MOST = 8  # words of a search; more narrow nothing a person would type


def search_words(text: str) -> tuple[str, ...]:
    """The words of a search, each to be found somewhere ("quispe rosa" finds Rosa Quispe);
    none with a character no database stores (PostgreSQL refuses a NUL even to compare)."""
    words = (word for word in text.split() if unfit_character(word) is None)
    return tuple(dict.fromkeys(words))[:WORDS_MOST]

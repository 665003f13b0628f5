"""What a person types into the admin (a reply, a note, a reason): trimmed, never empty, never
longer than its column or its channel allows, refused in words the admin translates."""

from __future__ import annotations


def typed_text(
    text: str | None, *, empty: str, what: str, most: int, error: type[ValueError] = ValueError
) -> str:
    """`text` trimmed; `error(empty)` when nothing is left, and when more than `most`
    characters are, a refusal that names `what` and both counts."""
    text = (text or "").strip()
    if not text:
        raise error(empty)
    if len(text) > most:
        raise error(f"{what} can have at most {most} characters ({len(text)} given)")
    return text

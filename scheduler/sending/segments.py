"""How many SMS segments a text costs: GSM-7 when every character allows it, else UCS-2.

One character outside GSM-7 (an á, an emoji, a non-breaking space) switches the whole message to
UCS-2, which roughly halves what fits in a segment; the admin shows this so owners can avoid it.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The GSM 03.38 default alphabet, and the extension table whose characters take two septets.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
_GSM_ALL = _GSM_BASIC | _GSM_EXTENDED

# (units in a single message, units per part of a concatenated message)
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsSize:
    encoding: str  # GSM7 or UCS2
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    unsupported: str  # the characters that forced UCS-2, in order of appearance, once each


def _wide(distinct: set[str], encoding: str) -> set[str]:
    """Which of the characters `distinct` take two units in `encoding`."""
    if encoding == GSM7:
        return distinct & _GSM_EXTENDED
    return {c for c in distinct if ord(c) > 0xFFFF}  # a surrogate pair in UTF-16


def sms_size(text: str) -> SmsSize:
    """Encoding, length and segment count of `text` as a phone network would split it.

    A character is never split across two parts (an escaped GSM-7 character, a UTF-16 surrogate
    pair), so long texts may need one part more than a plain division says. Counted by distinct
    characters, and character by character only when it takes more than one part: a pass
    sizes thousands of messages, most of them one part.
    """
    distinct = set(text)
    outside = (
        "" if distinct <= _GSM_ALL else "".join(dict.fromkeys(c for c in text if c not in _GSM_ALL))
    )
    encoding = UCS2 if outside else GSM7
    wide = _wide(distinct, encoding)
    single, part = _LIMITS[encoding]
    total = len(text) + sum(map(text.count, wide))
    if total == 0:
        return SmsSize(encoding, 0, 0, outside)
    if total <= single:
        return SmsSize(encoding, total, 1, outside)
    segments, used = 1, 0
    for char in text:
        size = 2 if char in wide else 1
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return SmsSize(encoding, total, segments, outside)

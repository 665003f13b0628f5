"""Consent by SMS: the keywords that opt a customer out, back in, or ask for help.

English and Spanish, in any case, with or without accents or a trailing full stop. A keyword
counts only when it is the whole message ("STOP", "Baja."), as carriers treat it; a stop word
also with emoji, punctuation or repetition ("STOP 🙏", "BAJA!!! 😤", "STOP STOP STOP"). "alto el
precio" or "cancel my order" are not keywords. Consent may also be revoked in free text ("ya no
me manden mensajes", "please stop texting me"), in the language the messages were sent in: those
opt out too, and a person sees them. Pure functions over text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Intent(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


# Twilio's Advanced Opt-Out handles these by itself on long codes (English, single word).
_TWILIO: dict[Intent, tuple[str, ...]] = {
    Intent.OPT_OUT: ("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"),
    Intent.OPT_IN: ("start", "unstop", "yes"),
    Intent.HELP: ("help", "info"),
}
TWILIO_KEYWORDS = frozenset(word for words in _TWILIO.values() for word in words)
# Opt-in keywords that are also plain answers: they lift an opt-out, never give a first yes.
ANSWERS = frozenset({"si", "yes"})

# Each keyword once: what it asks, by the language it tells (None: both languages read it so).
_WORDS: dict[str | None, dict[Intent, tuple[str, ...]]] = {
    "en": {
        Intent.OPT_OUT: (*_TWILIO[Intent.OPT_OUT], "opt out", "stop please"),
        Intent.OPT_IN: _TWILIO[Intent.OPT_IN],
        Intent.HELP: ("help",),
    },
    "es": {
        Intent.OPT_OUT: (
            "parar",
            "baja",
            "alto",
            "detener",
            "no mas",
            "nomas",
            "darme de baja",
            "dar de baja",
            "basta",
            "stop por favor",
        ),
        Intent.OPT_IN: ("alta", "si", "volver", "reanudar"),
        Intent.HELP: ("ayuda", "informacion"),
    },
    None: {Intent.HELP: ("info",)},
}
KEYWORDS: dict[str, Intent] = {
    word: intent
    for by_intent in _WORDS.values()
    for intent, words in by_intent.items()
    for word in words
}
_LANGUAGE = {
    word: language
    for language, by_intent in _WORDS.items()
    for words in by_intent.values()
    for word in words
}

# Free-text revocations, by language: "no me manden mas mensajes", "stop texting me". Each names
# the messages or the contact itself, so "no me envien otro modelo" or "don't send the wrong
# size" stay complaints.
_MESSAGES_ES = r"(?:mensajes|mensajitos|sms|msj|mensaje|nada)"
_FREE_TEXT_STOP = {
    "es": re.compile(
        r"\b(?:(?:ya\s+)?no\s+me\s+(?:escriban|escriba|escribas|contacten|contacte|molesten)\b"
        rf"|no\s+me\s+(?:manden|envien|mande|envie|mandes|envies)\s+(?:mas\s+)?{_MESSAGES_ES}"
        r"|dejen?\s+de\s+(?:mandar|enviar|escribir|molestar)(?:me|nos)\b"
        rf"|dejen?\s+de\s+(?:mandar|enviar)\s+{_MESSAGES_ES}"
        rf"|no\s+quiero\s+(?:recibir\s+)?(?:mas\s+)?{_MESSAGES_ES}"
        r"|no\s+quiero\s+que\s+me\s+(?:escriban|manden|envien)"
        r"|(?:borren|saquen|eliminen|quiten|saca|borra)me\s+de\s+(?:la|su|sus|esta)\s+listas?"
        r"|(?:borren|saquen|eliminen|quiten)\s+mi\s+numero"
        rf"|no\s+mas\s+{_MESSAGES_ES}|basta\s+de\s+{_MESSAGES_ES}"
        rf"|darme\s+de\s+baja|dar\s+de\s+baja\s+(?:mi\s+numero|los\s+{_MESSAGES_ES})"
        r"|^(?:baja|stop)\s+(?:porfa|por\s+favor|pls|please)$)"
    ),
    "en": re.compile(
        r"\b(?:stop\s+(?:texting|messaging|sending\s+me|contacting|writing\s+me)"
        r"|(?:don't|do\s+not)\s+(?:text|message|contact)\s+(?:me|us)\b"
        r"|no\s+more\s+(?:texts|messages|sms)"
        r"|(?:remove|take)\s+(?:me|my\s+number)\s+(?:off|from)\s+(?:your|the|this)\s+list"
        r"|remove\s+my\s+number$|unsubscribe\s+me|leave\s+me\s+alone"
        r"|^(?:stop|unsubscribe)\s+(?:pls|please|now)$|,\s*stop$)"
    ),
}
# Free-text requests to hear from us again: read, but acted on by a person, not automatically.
_FREE_TEXT_START = {
    "es": re.compile(
        r"\b(?:quiero\s+volver\s+a\s+recibir|vuelvan\s+a\s+(?:mandar|enviar|escribir))"
    ),
    "en": re.compile(r"\b(?:start\s+(?:texting|sending|messaging)|text\s+me\s+again)"),
}


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'", "`": "'"})


class _Marks(dict[int, int | None]):
    """For `str.translate`: a combining mark to None (deleted), any other character to itself,
    asked of `unicodedata` as replies bring them. The whole table at once (912 marks among
    1 114 112 code points) cost each new web worker 0.06 s, inside the first reply it read that
    was not plain ASCII; what is asked is kept, up to `KEPT` code points, so that a reply made
    of every code point cannot grow it."""

    KEPT = 20_000

    def __missing__(self, point: int) -> int | None:
        kept = None if unicodedata.combining(chr(point)) else point
        if len(self) < self.KEPT:
            self[point] = kept
        return kept


_WITHOUT_MARKS = _Marks()


def fold(text: str) -> str:
    """Lower case, no accents, single spaces, no punctuation at either end: "¡BAJA!" -> "baja"."""
    plain = unicodedata.normalize("NFKD", text.casefold().translate(_APOSTROPHES))
    if not plain.isascii():  # plain ASCII, as most replies are, has no accents to take off
        plain = plain.translate(_WITHOUT_MARKS)
    return " ".join(plain.split()).strip(" .,;:!¡?¿\"'()[]-_*~")


@dataclass(frozen=True)
class Consent:
    intent: Intent
    keyword: str | None  # the message as folded ("stop", "stop 🙏"), or None for free text
    language: str | None  # "es" / "en" when the words tell, else None

    @property
    def handled_by_twilio(self) -> bool:
        """Whether Twilio's own opt-out handling already answered this message. Twilio acts on
        single-word messages only, so a "STOP 🙏" or "STOP STOP" is ours to confirm."""
        return self.keyword in TWILIO_KEYWORDS


_NOT_WORDS = re.compile(r"[^\w\s]+")  # emoji, symbols, punctuation
_EDGES = re.compile(r"^[^\w]+|[^\w]+$")


def _keyword_in(folded: str) -> str | None:
    """The keyword the message is, or None. Stop words are read generously, emoji, punctuation
    and repetition set aside ("stop 🙏" -> "stop"), since a stop must be honoured; the others
    strictly: "si 👍" is an answer, "ayuda 😭" is for a person."""
    if folded in KEYWORDS:
        return folded
    words = _NOT_WORDS.sub(" ", folded).split()
    if not words or len(words) > 8:  # that long, a sentence
        return None
    for size in range(1, len(words) + 1):
        if len(words) % size == 0 and words == words[:size] * (len(words) // size):
            keyword = " ".join(words[:size])
            return keyword if KEYWORDS.get(keyword) is Intent.OPT_OUT else None
    return None


def read_consent(text: str) -> Consent | None:
    """What the message says about consent, or None when it says nothing about it."""
    folded = fold(text)
    keyword = _keyword_in(folded)
    if keyword is not None:
        return Consent(KEYWORDS[keyword], folded, _LANGUAGE[keyword])
    trimmed = _EDGES.sub("", folded)  # "baja porfa 🙏" reads as "baja porfa"
    for intent, patterns in ((Intent.OPT_OUT, _FREE_TEXT_STOP), (Intent.OPT_IN, _FREE_TEXT_START)):
        for language, pattern in patterns.items():
            if pattern.search(trimmed):
                return Consent(intent, None, language)
    return None

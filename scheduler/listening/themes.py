"""What a complaint is about: delivery, breakage, billing, staff, waiting, the product itself.

Read from the words of the reply, in Spanish and English, folded as replies are; the owner
adds words of their own per theme ("chancada" is breakage here) on the same page as the words
for reading replies. A complaint may touch several themes, or none the words tell.

Each reply's themes are stored with it when it is read, with the fingerprint of the words they
were read with, so that a quarter's complaints are counted without reading them all again; the
owner's new words make the stored ones stale, and `reread` reads them again (the worker's
`themes` job). Pure functions over text, but `vocabulary` and `reread`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from scheduler.db import stale_first
from scheduler.lifecycle import Direction
from scheduler.listening.classify import split_entries, words_of
from scheduler.listening.keywords import fold
from scheduler.models import LexiconWord, Message


class Theme(StrEnum):
    DELIVERY = "delivery"
    BREAKAGE = "breakage"
    BILLING = "billing"
    STAFF = "staff"
    WAITING = "waiting"
    PRODUCT = "product"  # the wrong one, or poor: size, colour, quality


_BUILT_IN: dict[Theme, str] = {
    Theme.DELIVERY: """
        entrega entregaron entregado entregada envio envios enviaron despacho despacharon
        courier repartidor paquete paqueteria llego llegaron llegado llega delivery delivered
        deliver shipping shipment shipped package parcel arrived arrive tracking
        |no llego|nunca llego|direccion equivocada|never arrived|wrong address|not delivered
    """,
    Theme.BREAKAGE: """
        roto rota rotos rotas rompio rompe quebrado quebrada danado danada danados golpeado
        golpeada defectuoso defectuosa falla fallas fallo averiado rayado rayada broken broke
        damaged defective cracked scratched faulty
        |no funciona|no sirve|no prende|no enciende|no carga|dejo de funcionar|not working
        |stopped working|doesn't work|does not work
    """,
    Theme.BILLING: """
        cobro cobros cobraron cobrado cobran cargo cargos factura facturas facturacion boleta
        precio reembolso devolucion tarjeta pago pague pagos billing bill invoice charged charge
        overcharged refund price payment paid
        |doble cobro|cobro doble|double charged|charged twice
    """,
    Theme.STAFF: """
        vendedor vendedora tecnico tecnica instalador atencion trato grosero grosera
        maleducado maleducada descortes empleado empleada cajero cajera staff rude employee
        salesman seller technician attitude unfriendly
        |mal educado|mala atencion|mal trato|customer service
    """,
    Theme.WAITING: """
        espera esperando espere esperar demora demoran demoro demorado tarde tardan tardaron
        tardo retraso retrasado atrasado atraso lento lenta todavia wait waiting waited late
        delay delayed slow
        |nadie responde|nadie contesta|no contestan|no responden|nobody answers|took forever
    """,
    Theme.PRODUCT: """
        calidad talla tamano color modelo equivocado equivocada incorrecto incorrecta distinto
        distinta quality size colour color model wrong different
        |mala calidad|no es el|poor quality|not the one
    """,
}


THEMES = tuple(Theme)
READING = "1"  # how `themes_of` reads: change it when that changes, and every reply is reread
READ = 2_000  # characters of a reply read for its themes: a complaint says it early
REREAD = 1_000  # replies read again per transaction
REREAD_SECONDS = 60  # how often the worker looks for replies read with other words


@dataclass(frozen=True)
class Vocabulary:
    """Each theme's single words and its phrases (several words, matched in order)."""

    words: Mapping[Theme, frozenset[str]]
    phrases: Mapping[Theme, tuple[str, ...]]
    # The themes of each word, and each phrase by its first word: a reply looks up its own
    # words, not every word of every theme.
    themes_of_word: Mapping[str, frozenset[Theme]] = field(init=False, repr=False, compare=False)
    phrases_from: Mapping[str, tuple[tuple[str, Theme], ...]] = field(
        init=False, repr=False, compare=False
    )
    # What a reply's stored themes were read with (`Message.themes_read_with`): the same for
    # the same words, whatever their order.
    fingerprint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_word: dict[str, set[Theme]] = {}
        for theme, listed in self.words.items():
            for word in listed:
                by_word.setdefault(word, set()).add(theme)
        starting: dict[str, list[tuple[str, Theme]]] = {}
        for theme, phrases in self.phrases.items():
            for phrase in phrases:
                starting.setdefault(phrase.split(" ", 1)[0], []).append((f" {phrase} ", theme))
        object.__setattr__(self, "themes_of_word", {w: frozenset(t) for w, t in by_word.items()})
        object.__setattr__(self, "phrases_from", {w: tuple(p) for w, p in starting.items()})
        every = "\n".join(
            f"{theme}:{' '.join(sorted(self.words.get(theme, ())))}"
            f"|{'|'.join(sorted(self.phrases.get(theme, ())))}"
            for theme in THEMES
        )
        digest = hashlib.sha256(f"{READING}\n{every}".encode()).hexdigest()
        object.__setattr__(self, "fingerprint", digest[:16])

    @classmethod
    def of(cls, entries: Mapping[Theme, Iterable[str]]) -> Vocabulary:
        split = {theme: split_entries(listed) for theme, listed in entries.items()}
        return cls(
            {theme: frozenset(single) for theme, (single, _several) in split.items()},
            {theme: tuple(several) for theme, (_single, several) in split.items()},
        )


def _entries(block: str) -> list[str]:
    single, *phrases = block.split("|")
    return [*single.split(), *(phrase.strip() for phrase in phrases)]


BUILT_IN = Vocabulary.of({theme: _entries(block) for theme, block in _BUILT_IN.items()})


def themes_of(text: str, vocabulary: Vocabulary = BUILT_IN) -> list[Theme]:
    """The themes the reply's words touch (in its first READ characters), in the order of
    `Theme`."""
    tokens = words_of(fold(text[:READ]))
    found: set[Theme] = set()
    joined = f" {' '.join(tokens)} "
    for token in set(tokens):
        found.update(vocabulary.themes_of_word.get(token, ()))
        for phrase, theme in vocabulary.phrases_from.get(token, ()):
            if theme not in found and phrase in joined:
                found.add(theme)
    return [theme for theme in THEMES if theme in found]


def stored(themes: Iterable[Theme]) -> str:
    """Themes as a reply keeps them: their names, space-separated ("" for none)."""
    return " ".join(themes)


@cache
def unstored(kept: str) -> tuple[Theme, ...]:
    """A reply's kept themes (`stored`) back as themes: the few combinations seen, once each."""
    return tuple(Theme(name) for name in kept.split())


def reread(session: Session, vocabulary: Vocabulary, *, limit: int = REREAD) -> int:
    """Read again the themes of up to `limit` replies read (classified) with other words than
    these, or never; returns how many. The caller commits, and calls again until none is
    left; two workers skip each other's rows. Those never read, then those read with other
    words: each through its own partial index (migration 0023), so that a minute's look when
    all are read costs two index probes, not a pass over every message."""
    replies = select(Message.id, func.substr(Message.body, 1, READ)).where(
        Message.direction == Direction.INBOUND, Message.label.is_not(None)
    )
    stale = stale_first(
        session, replies, Message.themes_read_with, vocabulary.fingerprint, limit=limit
    )
    if stale:
        session.execute(
            update(Message),
            [
                {
                    "id": message_id,
                    "themes": stored(themes_of(body, vocabulary)),
                    "themes_read_with": vocabulary.fingerprint,
                }
                for message_id, body in stale
            ],
        )
    return len(stale)


def vocabulary(session: Session) -> Vocabulary:
    """The built-in words with the owner's own added (stored as words for the theme)."""
    owned: dict[Theme, list[str]] = {}
    themes = [theme.value for theme in Theme]
    for label, word in session.execute(
        select(LexiconWord.label, LexiconWord.word).where(LexiconWord.label.in_(themes))
    ):
        owned.setdefault(Theme(label), []).append(word)
    if not owned:
        return BUILT_IN
    return Vocabulary.of(
        {theme: [*_entries(_BUILT_IN[theme]), *owned.get(theme, ())] for theme in Theme}
    )

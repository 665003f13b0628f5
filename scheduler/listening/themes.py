"""What a complaint is about: delivery, breakage, billing, staff, waiting, the product itself.

Read from the words of the reply, in Spanish and English, folded as replies are; the owner
adds words of their own per theme ("chancada" is breakage here) on the same page as the words
for reading replies. A complaint may touch several themes, or none the words tell. Pure
functions over text, but `vocabulary`, which reads the owner's words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.listening.classify import split_entries, words_of
from scheduler.listening.keywords import fold
from scheduler.models import LexiconWord


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
    """The themes the reply's words touch, in the order of `Theme`."""
    tokens = words_of(fold(text))
    found: set[Theme] = set()
    joined = f" {' '.join(tokens)} "
    for token in set(tokens):
        found.update(vocabulary.themes_of_word.get(token, ()))
        for phrase, theme in vocabulary.phrases_from.get(token, ()):
            if theme not in found and phrase in joined:
                found.add(theme)
    return [theme for theme in THEMES if theme in found]


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

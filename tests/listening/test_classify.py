"""The reply classifier: rules that matter one by one, then the whole labelled sets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from scheduler.listening.classify import Label, Lexicon, classify, find_score
from scheduler.listening.keywords import fold
from tests.conftest import REPORT, Cli

DATA = Path(__file__).parent.parent / "data"


@pytest.mark.parametrize(
    "text, label, needs_human",
    [
        ("no esta mal", Label.POSITIVE, False),  # negation flips a negative word
        ("not bad at all", Label.POSITIVE, False),
        ("no me gusto", Label.OBJECTION, True),
        ("not happy with it", Label.OBJECTION, True),
        ("no tengo quejas", Label.POSITIVE, False),
        ("MUY MAL SERVICIO", Label.OBJECTION, True),
        ("no funsiona el control", Label.OBJECTION, True),  # a common misspelling
        ("la tele esta chancada", Label.NEUTRAL, True),  # a word it does not know: a person
        ("la lavadora no prende 😡", Label.OBJECTION, True),
        ("👍", Label.POSITIVE, False),
        ("graciasss", Label.POSITIVE, False),  # repeated letters squeezed
        ("excelente atención, la recomiendo", Label.POSITIVE, False),  # accents folded
        ("genial... se rompio al segundo dia", Label.OBJECTION, True),
        ("lindo pero hace mucho ruido", Label.OBJECTION, True),  # contrast
        ("oh yeah just perfect", Label.OBJECTION, True),  # sarcasm
        ("como se limpia el filtro", Label.QUESTION, True),  # a question without "?"
        ("ok", Label.NEUTRAL, False),
        ("regular", Label.NEUTRAL, True),  # lukewarm: a person looks
        ("hola", Label.NEUTRAL, True),  # nothing recognised: a person reads it
        ("STOP", Label.OPT_OUT, False),
        ("Baja.", Label.OPT_OUT, False),
        ("ya no me manden mensajes porfa", Label.OPT_OUT, True),  # free text: shown to staff
        ("ALTA", Label.OPT_IN, False),
        ("AYUDA", Label.HELP, False),
        ("alto el precio para lo que es", Label.OBJECTION, True),  # not the keyword ALTO
    ],
)
def test_rules(text: str, label: Label, needs_human: bool) -> None:
    reading = classify(text)
    assert (reading.label, reading.needs_human) == (label, needs_human), reading


@pytest.mark.parametrize(
    "text, score",
    [
        ("9", 9),
        ("10/10", 10),
        ("un 3", 3),
        ("le doy un 4 porque nadie contesto", 4),
        ("cinco estrellas", 10),
        ("3 stars", 6),
        ("⭐⭐⭐⭐", 8),
        ("8 de 10", 8),
        ("9 pero el tecnico llego tarde", 9),
        ("a solid 9", 9),
        ("0", 0),
        ("3 dias sin lavadora", None),
        ("me cobraron $80 de mas", None),
        ("110 o 220?", None),
        ("una masa el lavarropas", None),
        ("modelo 3000", None),
        ("★★★★★", 10),
        ("★★★★☆", 8),
        ("⭐️⭐️", 4),
        ("5⭐", 10),
        ("5-star", 10),
        ("2 estrellitas", 4),
        ("five stars ⭐ would recommend", 10),
        ("★★★★★★★", None),
        ("⭐⭐⭐⭐⭐ llego en 3 dias", 10),
    ],
)
def test_ratings(text: str, score: int | None) -> None:
    assert find_score(fold(text)) == score


@pytest.mark.parametrize(
    "text",
    [
        "aún no me llega el pedido",
        "todavia no recibo nada",
        "hace 2 semanas q pague y nada",
        "ya deberia haber llegado",
        "sigo esperando",
        "gracias, pero aun no recibo la cocina",
        "muchas gracias! todavía no me entregan la refri",
        "ni siquiera me ha llegado",
        "havent received anything yet",
        "my package never came",
        "still no sign of it",
        "its been 10 days, still nothing",
        "was supposed to arrive monday",
    ],
)
def test_an_order_that_has_not_come_goes_to_a_person(text: str) -> None:
    reading = classify(text)
    assert (reading.label, reading.needs_human) == (Label.OBJECTION, True), reading


@pytest.mark.parametrize(
    "text",
    [
        "ya me llego, gracias",
        "llego sin problemas",
        "no demoraron nada, gracias",
        "sin retrasos, todo bien",
        "arrived a day early, thanks!",
        "not bad, thanks",
        "dijeron 5 dias y llego en 2, genial",
        "ok ya llego",
    ],
)
def test_an_order_that_came_is_left_to_the_machine(text: str) -> None:
    assert not classify(text).needs_human, classify(text)


@pytest.mark.parametrize(
    "text, label, needs_human",
    [
        ("STOP 🙏", Label.OPT_OUT, False),
        ("BAJA 🙏", Label.OPT_OUT, False),
        ("Stop 👍", Label.OPT_OUT, False),
        ("STOP STOP STOP", Label.OPT_OUT, False),
        ("Baja!!! 😤", Label.OPT_OUT, False),
        ("no mas no mas", Label.OPT_OUT, False),
        ("baja porfa 🙏", Label.OPT_OUT, True),  # free text: shown to staff
        ("stop, the tv is broken", Label.OBJECTION, True),  # a sentence, not the keyword
        ("si 👍", Label.POSITIVE, False),  # only a stop is read generously: this is an answer
        ("ayuda 😭", Label.OBJECTION, True),  # and this is for a person
    ],
)
def test_a_stop_word_with_emoji_or_repeated_is_the_keyword(
    text: str, label: Label, needs_human: bool
) -> None:
    reading = classify(text)
    assert (reading.label, reading.needs_human) == (label, needs_human), reading


def test_scores_decide_who_reads_it() -> None:
    assert classify("6").needs_human and classify("6").label is Label.OBJECTION
    assert not classify("9").needs_human
    nine_but = classify("9 pero el tecnico llego tarde")
    assert (nine_but.label, nine_but.score, nine_but.needs_human) == (Label.OBJECTION, 9, True)


def test_owners_add_their_own_words() -> None:
    assert classify("la entrega fue un desastre").needs_human  # unknown word: a person anyway
    assert classify("bacan bacan").label is Label.POSITIVE
    assert classify("la compu esta chancada").label is not Label.OBJECTION
    mine = Lexicon().extended({Label.OBJECTION: ["chancada", "Dejó de andar"]})
    assert classify("la compu esta chancada", mine).label is Label.OBJECTION
    assert classify("la radio dejo de andar", mine).label is Label.OBJECTION


def _measure(path: Path) -> tuple[float, float, int]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    flagged = {i for i, row in enumerate(rows) if classify(row["text"]).needs_human}
    wanted = {i for i, row in enumerate(rows) if row["needs_human"] == "true"}
    recall = len(flagged & wanted) / len(wanted)
    precision = len(flagged & wanted) / len(flagged)
    return recall, precision, len(rows)


@pytest.mark.parametrize("name", ["replies.csv", "replies_holdout.csv"])
def test_needs_human_precision_and_recall(name: str) -> None:
    """Targets: recall >= 0.99 (an objection is never missed), precision >= 0.90.

    `replies.csv` is the set the rules were written against; `replies_holdout.csv` was written
    separately and never used to tune them, so its figures are the honest estimate.
    """
    path = DATA / name
    if not path.exists():
        pytest.fail(f"{path} is missing")
    recall, precision, rows = _measure(path)
    REPORT.append(
        f"classifier on {name} ({rows} replies): needs_human recall {recall:.3f}, "
        f"precision {precision:.3f}"
    )
    assert recall >= 0.99 and precision >= 0.90, (recall, precision)


def test_the_command_line(postventa_plain: Cli) -> None:
    result = postventa_plain("classify", "--json", input="un 3, nadie me contesto\n\nBAJA\n")
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines == [
        {
            "text": "un 3, nadie me contesto",
            "label": "objection",
            "score": 3,
            "confidence": 0.95,
            "needs_human": True,
        },
        {
            "text": "BAJA",
            "label": "opt_out",
            "score": None,
            "confidence": 0.99,
            "needs_human": False,
        },
    ]
    one = postventa_plain("classify", "no esta mal")
    assert one.output.startswith("positive  score  -  0.85  automatic")


@pytest.fixture
def postventa_plain() -> Cli:
    """The command line with no configuration file: classify needs no database."""
    return Cli(None)

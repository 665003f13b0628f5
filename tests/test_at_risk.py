"""Customers at risk, the themes of complaints, the "did we solve it?" checks and a product's
figures, each asserted on the hand-built data set of `tests/risk_data.py`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.figures.at_risk import Sign, Signal, at_risk, described, wordless
from scheduler.figures.complaints import complaint_themes
from scheduler.figures.period import PeriodError
from scheduler.figures.summary import Checks, asked, asked_scope, figures
from scheduler.lifecycle import Direction
from scheduler.listening.owner_words import add_word
from scheduler.listening.themes import BUILT_IN, Theme, Vocabulary, reread, themes_of, vocabulary
from scheduler.models import Customer, Message, Product, Sale
from tests.factories import inbound_sms
from tests.figures_data import NOW, OPENING, PERIOD, at
from tests.risk_data import build_risks


def test_the_silent_customers_each_with_why(session: Session) -> None:
    built = build_risks(session)
    found = described(session, at_risk(session, PERIOD, now=NOW))
    ids = built.customers
    assert [(risk.name, list(risk.signals)) for risk in found] == [
        ("Gone Quiet", [Signal(Sign.GONE_QUIET, at(11, 10), 3)]),
        ("Reopened", [Signal(Sign.REOPENED, at(10, 10), 1)]),
        ("Silent Score", [Signal(Sign.SILENT_SCORE, at(8, 10), 3)]),
        ("Bounced", [Signal(Sign.BOUNCED, at(7, 9), 1)]),
        ("Undelivered", [Signal(Sign.UNDELIVERED, at(5, 10), 1)]),
    ]
    assert [risk.customer_id for risk in found] == [
        ids[who] for who in ("gone quiet", "reopened", "silent score", "bounced", "undelivered")
    ]
    cases = {risk.name: risk.open_case_id for risk in found}
    assert cases["Silent Score"] == built.open_case
    assert cases["Reopened"] is not None and cases["Gone Quiet"] is None


def test_an_unanswered_follow_up_counts_once_it_has_waited(session: Session) -> None:
    built = build_risks(session)
    # A day on, the third follow-up to "too recent" (Sunday 10:00) has waited two days.
    later = described(session, at_risk(session, PERIOD, now=at(17, 10)))
    assert (later[0].name, list(later[0].signals)) == (
        "Too Recent",
        [Signal(Sign.GONE_QUIET, at(15, 10), 3)],
    )
    earlier = at_risk(session, PERIOD, now=at(17, 9))
    assert earlier[0].customer_id == built.customers["gone quiet"]


@pytest.mark.parametrize(
    ("text", "bare"),
    [
        ("3", True),
        ("2/10", True),
        ("un 4 👎", True),
        ("1 star", True),
        ("tres", True),
        ("3, tardaron mucho", False),
        ("2 the box was wet", False),
    ],
)
def test_a_score_without_words(text: str, bare: bool) -> None:
    assert wordless(text) is bare


def read_again(session: Session) -> int:
    """What the worker's `themes` job does: every reply read with other words, read again."""
    total = 0
    while read := reread(session, vocabulary(session), limit=4):  # in batches
        total += read
    return total


@pytest.mark.parametrize("kept", [False, True], ids=["read-here", "kept"])
def test_complaint_themes_per_product_with_examples(session: Session, kept: bool) -> None:
    """The same whether each reply's themes are read here from its words, or were kept when
    it was read (the worker's job after the owner's words change)."""
    build_risks(session)
    if kept:
        assert read_again(session) > 0 and read_again(session) == 0
    found = complaint_themes(session, PERIOD, vocabulary(session))
    assert [(row.product, row.theme, row.count, row.customers) for row in found] == [
        ("Cocina", Theme.BREAKAGE, 2, 2),
        ("Cocina", Theme.DELIVERY, 1, 1),
        ("Cocina", Theme.BILLING, 1, 1),
        ("Cocina", Theme.WAITING, 1, 1),
        ("Lavadora", Theme.STAFF, 2, 1),  # one customer, twice
        ("Lavadora", None, 2, 2),
        (None, Theme.STAFF, 1, 1),
    ]
    breakage = found[0]
    assert [example.text for example in breakage.examples] == [
        "la puerta vino chancada",  # the owner's word, the latest first
        "2, el repartidor tiró la caja y llegó rota",
    ]
    assert [example.text for example in found[4].examples] == [
        "pésima atención en la tienda",  # answering no follow-up: the latest purchase's
        "The technician was rude",
    ]
    assert [example.text for example in found[5].examples] == ["sigue sin funcionar", "3"]


def test_complaints_about_a_long_catalogue_are_named_and_timed_in_chunks(session: Session) -> None:
    """700 products complained of, one customer each, who wrote before any follow-up (the
    product of their latest purchase): the products' names and the examples' times are read
    in chunks of 500 (a catalogue may outgrow a query's parameters), none left out."""
    count, when = 700, at(5, 10)
    products = session.execute(
        insert(Product).returning(Product.id),
        [{"sku": f"P-{n}", "name": f"Producto {n}"} for n in range(count)],
    ).scalars()
    customers = session.execute(
        insert(Customer).returning(Customer.id),
        [{"name": f"C{n}", "created_at": when} for n in range(count)],
    ).scalars()
    pairs = list(zip(customers, products, strict=True))
    session.execute(
        insert(Sale),
        [
            {"external_id": f"V-{c}", "customer_id": c, "product_id": p, "sold_at": when}
            | {"created_at": when}
            for c, p in pairs
        ],
    )
    for n, (customer, _product) in enumerate(pairs):
        session.add(
            inbound_sms(
                "la puerta está rota",
                when + timedelta(minutes=n),
                sender=f"+519{n:08d}",
                customer_id=customer,
                label="objection",
            )
        )
    session.flush()
    found = complaint_themes(session, PERIOD, vocabulary(session))
    assert len(found) == count
    assert {row.product for row in found} == {f"Producto {n}" for n in range(count)}
    assert all(row.theme is Theme.BREAKAGE and row.count == 1 for row in found)
    assert {row.examples[0].at for row in found} == {
        when + timedelta(minutes=n) for n in range(count)
    }


def test_themes_from_the_words() -> None:
    assert themes_of("El repartidor llegó tarde y la caja rota") == [
        Theme.DELIVERY,
        Theme.BREAKAGE,
        Theme.WAITING,
    ]
    assert themes_of("NO FUNCIONA!!") == [Theme.BREAKAGE]  # a phrase, folded
    assert themes_of("I was charged twice") == [Theme.BILLING]
    assert themes_of("la puerta vino chancada", BUILT_IN) == []  # not without the owner's word
    assert themes_of("pésimo") == []


def test_kept_themes_count_until_the_owners_words_change(session: Session) -> None:
    """A reply's kept themes are trusted while they were read with the owner's words as they
    are; once the owner adds a word, the replies are read again from their words, at once on
    the dashboard and by the worker's job for the next time."""
    build_risks(session)
    read_again(session)
    door = session.scalars(select(Message).where(Message.body == "la puerta vino chancada")).one()
    assert door.themes == "breakage"
    door.themes = "billing"  # kept as if the words had said so
    session.flush()

    def kitchen() -> list[tuple[Theme | None, int]]:
        found = complaint_themes(session, PERIOD, vocabulary(session))
        return [(row.theme, row.count) for row in found if row.product == "Cocina"]

    assert kitchen() == [
        (Theme.BILLING, 2),
        (Theme.DELIVERY, 1),
        (Theme.BREAKAGE, 1),
        (Theme.WAITING, 1),
    ]
    before = vocabulary(session).fingerprint
    add_word(session, "staff", "puerta", now=NOW, actor="owner")
    assert vocabulary(session).fingerprint != before
    expected = [
        (Theme.BREAKAGE, 2),
        (Theme.DELIVERY, 1),
        (Theme.BILLING, 1),
        (Theme.STAFF, 1),
        (Theme.WAITING, 1),
    ]
    assert kitchen() == expected  # read from the words: the door is breakage, and staff
    assert read_again(session) == session.scalar(
        select(func.count()).where(Message.direction == Direction.INBOUND)
    )
    assert door.themes == "breakage staff" and kitchen() == expected


def test_the_words_fingerprint_says_which_words_not_their_order() -> None:
    some = {Theme.DELIVERY: ["courier", "no llego"], Theme.STAFF: ["cajero"]}
    same = {Theme.STAFF: ["cajero"], Theme.DELIVERY: ["no llegó", "Courier"]}
    more = {Theme.DELIVERY: ["courier", "no llego"], Theme.STAFF: ["cajero", "puerta"]}
    moved = {Theme.DELIVERY: ["courier", "no llego", "cajero"]}
    fingerprint = Vocabulary.of(some).fingerprint
    assert Vocabulary.of(same).fingerprint == fingerprint
    assert Vocabulary.of(more).fingerprint != fingerprint
    assert Vocabulary.of(moved).fingerprint != fingerprint
    assert len(fingerprint) == 16 and BUILT_IN.fingerprint != fingerprint


def test_the_checks_after_a_case(session: Session) -> None:
    build_risks(session)
    found = figures(session, PERIOD, now=NOW, opening=OPENING)
    assert found.checks == Checks(asked=3, solved=1, not_solved=1)
    assert found.checks.no_answer == 1


def test_one_product_narrows_the_figures(session: Session, config: Config) -> None:
    built = build_risks(session)
    first, last = PERIOD.first.isoformat(), PERIOD.last.isoformat()
    found = asked(session, first, last, None, product=built.kitchen, config=config, now=NOW)
    assert found.follow_ups == {"delivered": {"sms": 3}}
    assert found.replies == 4
    assert found.checks == Checks(asked=1, solved=1, not_solved=0)
    period, scope = asked_scope(session, first, last, None, built.kitchen, config=config, now=NOW)
    themes = complaint_themes(session, period, vocabulary(session), scope=scope)
    assert [(row.product, row.theme, row.count) for row in themes] == [
        ("Cocina", Theme.BREAKAGE, 2),
        ("Cocina", Theme.DELIVERY, 1),
        ("Cocina", Theme.BILLING, 1),
        ("Cocina", Theme.WAITING, 1),
    ]


def test_an_unknown_product_is_named(session: Session, config: Config) -> None:
    with pytest.raises(PeriodError, match="no product has the SKU 'NOPE'") as refused:
        asked(session, None, None, None, product="NOPE", config=config, now=NOW)
    assert refused.value.field == "product"


def test_products_of_one_name_stay_apart_and_a_stranger_is_nobody(session: Session) -> None:
    """Two products may share a name (the SKU tells them apart); a complaint from a number
    that matches no customer counts as a complaint, not as a customer."""
    build_risks(session)
    washer = session.scalars(select(Product).where(Product.sku == "LAV-1")).one()
    washer.name = "Cocina"
    session.add(
        inbound_sms("el técnico fue grosero", at(14, 13), sender="+51900000000", label="objection")
    )
    session.commit()
    found = complaint_themes(session, PERIOD, vocabulary(session))
    assert [(row.sku, row.theme, row.count, row.customers) for row in found][:5] == [
        ("COC-1", Theme.BREAKAGE, 2, 2),
        ("COC-1", Theme.DELIVERY, 1, 1),
        ("COC-1", Theme.BILLING, 1, 1),
        ("COC-1", Theme.WAITING, 1, 1),
        ("LAV-1", Theme.STAFF, 2, 1),
    ]
    assert {row.product for row in found[:6]} == {"Cocina"}
    assert (found[-1].product, found[-1].theme, found[-1].count, found[-1].customers) == (
        None,
        Theme.STAFF,
        2,
        1,  # the walk-in; the stranger is no customer
    )

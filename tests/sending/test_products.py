"""The product catalogue: a change is checked whole, audited, and the sales already recorded
follow it (renewal reminders planned, moved or cancelled; a new cadence taken up without
sending anything twice)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.lifecycle import Anchor, Channel, FollowUpStatus
from scheduler.models import AuditEntry, Cadence, CadenceStep, FollowUp, Product, Sale
from scheduler.sending.planning import Because
from scheduler.sending.products import (
    ProductChange,
    ProductError,
    check_product,
    list_products,
    parse_renewal_days,
    update_product,
)
from tests.dispatching import follow_up, setup_sales
from tests.factories import NOW, sale_input

LIMA = ZoneInfo("America/Lima")


def lima(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LIMA).astimezone(UTC)


def change(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "Lavadora",
        "category": None,
        "renewal_days": None,
        "cadence": None,
    }
    return fields | changes


def _update(session: Session, config: Config, now: datetime = NOW, **changes: Any) -> Any:
    result = update_product(session, "LAV-9", change(**changes), config=config, now=now, actor="t")
    session.commit()
    return result


def _statuses(session: Session, external_id: str = "S-1") -> dict[str, FollowUpStatus]:
    rows = session.execute(
        select(CadenceStep.key, FollowUp.status)
        .join(FollowUp.step)
        .join(FollowUp.sale)
        .where(Sale.external_id == external_id)
    )
    return {key: status for key, status in rows}


def _own_cadence(session: Session, name: str, category: str | None = None) -> Cadence:
    """A cadence that thanks on day 2 (the default's template) and checks in on day 30."""
    cadence = Cadence(name=name, product_category=category, created_at=NOW, updated_at=NOW)
    session.add(cadence)
    session.flush()
    for key, days, template in (("thanks-2", 2, "thanks"), ("day30", 30, "check_in")):
        session.add(
            CadenceStep(
                cadence_id=cadence.id,
                key=key,
                anchor=Anchor.SALE,
                offset_minutes=days * 24 * 60,
                channel=Channel.SMS,
                template_name=template,
            )
        )
    session.commit()
    return cadence


# --- checking a change ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("", None), ("  ", None), (365, 365), (" 30 ", 30), ("0365", 365), (1, 1)],
)
def test_a_renewal_period_is_whole_days(given: Any, expected: int | None) -> None:
    assert parse_renewal_days(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("365 días", "must be a whole number of days, such as 365"),
        (365.0, "must be a whole number of days, such as 365"),
        ("36.5", "must be a whole number of days, such as 365"),
        (True, "must be a whole number of days, such as 365"),
        ("--5", "must be a whole number of days, such as 365"),
        ("٣٦٥", "must be a whole number of days, such as 365"),  # Arabic-Indic digits
        ([365], "must be a whole number of days, such as 365"),
        (0, "must be between 1 and 3650 days"),
        (-30, "must be between 1 and 3650 days"),
        ("3651", "must be between 1 and 3650 days"),
        (10**100, "must be between 1 and 3650 days"),
    ],
)
def test_a_renewal_period_that_is_not_one_is_refused_saying_how_to_write_it(
    given: Any, message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        parse_renewal_days(given)
    assert str(refused.value) == message


def test_check_names_every_problem_at_once() -> None:
    raw = {"name": "x" * 201, "category": "c" * 101, "renewal_days": "365 días", "cadence": "Nope"}
    assert check_product(raw, {"Default"}) == [
        ("name", "must be at most 200 characters (got 201)"),
        ("category", "must be at most 100 characters (got 101)"),
        ("renewal_days", "must be a whole number of days, such as 365"),
        ("cadence", "no cadence is called 'Nope'"),
    ]
    assert check_product({"name": " ", "category": "A\x00"}, set()) == [
        ("name", "a product needs a name"),
        ("category", "contains the control character U+0000"),
    ]
    assert check_product({"name": 7, "cadence": ["x"]}, set()) == [
        ("name", "must be text"),
        ("cadence", "must be text"),
    ]


def test_a_good_change_is_trimmed_and_blank_means_none() -> None:
    raw = {"name": " Lavadora ", "category": " ", "renewal_days": "", "cadence": " Mant "}
    assert check_product(raw, {"Mant"}) == ProductChange("Lavadora", None, None, "Mant")


# --- a renewing product's sales -------------------------------------------------------------------


def test_a_sale_of_a_renewing_product_gets_its_reminder_14_days_before_in_polite_hours(
    engine: Engine, config: Config
) -> None:
    sunday_night = lima(2026, 11, 22, 21, 15)
    sessions = setup_sales(
        engine, config, sale_input(sold_at=sunday_night, renewal_days=365, category="Línea blanca")
    )
    with sessions() as session:
        reminder = follow_up(session, "renewal-reminder")
        # Renewal on Monday 22 Nov 2027 at 21:15; 14 days before is 21:15, after the window
        # closes (20:00): the next morning at 09:00, in Lima.
        assert reminder.status is FollowUpStatus.SCHEDULED
        assert reminder.due_at == lima(2027, 11, 9, 9)
        product = session.scalars(select(Product)).one()
        assert (product.renewal_days, product.category) == (365, "Línea blanca")


def test_setting_a_renewal_period_plans_the_reminder_for_sales_already_recorded(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"), sale_input("S-2"))
    with sessions() as session:
        assert "renewal-reminder" not in _statuses(session)
        product, counts = _update(session, config, renewal_days=365)
        assert counts == {"redated": 0, "cancelled": 0, "added": 2, "already_sent": 0}
        for external_id in ("S-1", "S-2"):
            reminder = follow_up(session, "renewal-reminder", external_id)
            assert reminder.status is FollowUpStatus.SCHEDULED
            assert reminder.due_at == lima(2027, 11, 9, 10)
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "product.update"))
        assert (entry.actor, entry.entity_type, entry.entity_id) == ("t", "product", product.id)
        assert entry.details["changes"] == {"renewal_days": [None, 365]}
        assert entry.details["sku"] == "LAV-9"


def test_a_changed_period_moves_the_pending_reminder(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input(renewal_days=365))
    with sessions() as session:
        _product, counts = _update(session, config, renewal_days=30)
        assert counts["redated"] == 1 and counts["added"] == 0
        reminder = follow_up(session, "renewal-reminder")
        assert reminder.due_at == lima(2026, 12, 9, 10)  # 30 - 14 days after the sale
        assert reminder.status is FollowUpStatus.SCHEDULED


def test_a_reminder_whose_moment_passed_is_sent_within_the_grace_or_skipped_never_later(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input(renewal_days=365))
    with sessions() as session:
        # 17 days after the sale, a 30-day period puts the reminder one day back: within the
        # 48 hours of grace, it goes now.
        later = NOW + timedelta(days=17)
        _update(session, config, now=later, renewal_days=30)
        reminder = follow_up(session, "renewal-reminder")
        assert (reminder.status, reminder.due_at) == (FollowUpStatus.SCHEDULED, later)
        # A 20-day period would have reminded six days ago: too late to send.
        _update(session, config, now=later, renewal_days=20)
        assert reminder.status is FollowUpStatus.SKIPPED
        assert reminder.status_reason == "overdue by 11 d 0 h when planned (grace 2 d 0 h)"


def test_removing_the_period_cancels_pending_reminders_and_keeps_sent_ones(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(
        engine, config, sale_input("S-1", renewal_days=30), sale_input("S-2", renewal_days=30)
    )
    with sessions() as session:
        sent = follow_up(session, "renewal-reminder", "S-2")
        sent.status, sent.sent_at = FollowUpStatus.SENT, NOW
        session.commit()
        _product, counts = _update(session, config, renewal_days=None)
        assert counts["cancelled"] == 1
        pending = follow_up(session, "renewal-reminder", "S-1")
        assert pending.status is FollowUpStatus.CANCELLED
        assert pending.status_reason == "the product no longer renews"
        assert sent.status is FollowUpStatus.SENT
        assert _statuses(session)["day7-check-in"] is FollowUpStatus.SCHEDULED


def test_a_cancelled_sale_gets_no_renewal_reminder(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        session.scalars(select(Sale)).one().status = "cancelled"  # type: ignore[assignment]
        session.commit()
        _update(session, config, renewal_days=365)
        assert "renewal-reminder" not in _statuses(session)


# --- a product that moves to another cadence ------------------------------------------------------


def test_moving_a_product_to_its_own_cadence_replaces_what_is_pending_without_repeats(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        thanked = follow_up(session, "day1-thanks")
        thanked.status, thanked.sent_at = FollowUpStatus.SENT, NOW + timedelta(days=1)
        session.commit()
        _own_cadence(session, "Mantenimiento")
        _product, counts = _update(
            session, config, now=NOW + timedelta(days=1, hours=1), cadence="Mantenimiento"
        )
        assert counts == {"redated": 0, "cancelled": 3, "added": 2, "already_sent": 1}
        assert _statuses(session) == {
            "day1-thanks": FollowUpStatus.SENT,  # what went out stays as it was
            "day7-check-in": FollowUpStatus.CANCELLED,
            "day21-score": FollowUpStatus.CANCELLED,
            "day90-usage": FollowUpStatus.CANCELLED,
            "thanks-2": FollowUpStatus.SKIPPED,  # the same message: never twice
            "day30": FollowUpStatus.SCHEDULED,
        }
        cancelled = follow_up(session, "day7-check-in")
        assert cancelled.status_reason == "the product now follows the cadence 'Mantenimiento'"
        assert follow_up(session, "thanks-2").status_reason == (
            "this message already went out for this sale"
        )
        assert follow_up(session, "day30").due_at == lima(2026, 12, 23, 10)


def test_a_new_category_with_its_cadence_moves_the_sales_and_back_again_adds_nothing_twice(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        _own_cadence(session, "Electro", category="Electro")
        _product, counts = _update(session, config, category="Electro")
        assert counts["cancelled"] == 4 and counts["added"] == 2
        assert _statuses(session)["thanks-2"] is FollowUpStatus.SCHEDULED
        _product, counts = _update(session, config, category=None)
        assert counts["cancelled"] == 2  # Electro's steps, pending
        assert counts["added"] == 0  # the default's steps are this sale's already: cancelled
        assert len(session.scalars(select(FollowUp)).all()) == 6


def test_follow_ups_answering_a_score_stay_when_the_product_moves(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        review = session.scalars(select(CadenceStep).where(CadenceStep.key == "review-request"))
        sale = session.scalars(select(Sale)).one()
        session.add(
            FollowUp(
                sale_id=sale.id,
                step_id=review.one().id,
                customer_id=sale.customer_id,
                channel=Channel.SMS,
                due_at=NOW + timedelta(hours=2),
                created_at=NOW,
                updated_at=NOW,
            )
        )
        session.commit()
        _own_cadence(session, "Mantenimiento")
        _update(session, config, cadence="Mantenimiento")
        assert _statuses(session)["review-request"] is FollowUpStatus.SCHEDULED


def test_a_new_name_changes_no_follow_up(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        before = _statuses(session)
        product, counts = _update(session, config, name="Lavadora 9 kg")
        assert product.name == "Lavadora 9 kg"
        assert counts == {"redated": 0, "cancelled": 0, "added": 0, "already_sent": 0}
        assert _statuses(session) == before
        assert update_product(
            session, "LAV-9", change(name="Lavadora 9 kg"), config=config, now=NOW, actor="t"
        ) == (product, {})  # nothing changed: nothing audited
        session.commit()
        assert (
            len(
                session.scalars(
                    select(AuditEntry).where(AuditEntry.action == "product.update")
                ).all()
            )
            == 1
        )


def test_an_unknown_sku_or_a_bad_change_changes_nothing(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        assert (
            update_product(session, "' OR 1=1 --", change(), config=config, now=NOW, actor="t")
            is None
        )
        session.rollback()
        with pytest.raises(ProductError) as refused:
            update_product(
                session,
                "LAV-9",
                change(name="", renewal_days=-1, cadence="nope"),
                config=config,
                now=NOW,
                actor="t",
            )
        session.rollback()
        assert [field for field, _message in refused.value.problems] == [
            "name",
            "renewal_days",
            "cadence",
        ]
        assert session.scalars(select(Product)).one().renewal_days is None


# --- the list -------------------------------------------------------------------------------------


def _sessions(engine: Engine, config: Config) -> sessionmaker[Session]:
    return setup_sales(
        engine,
        config,
        sale_input("S-1"),
        sale_input("S-2", product_sku="MANT-1Y", product_name="Plan anual", category="Servicio"),
        sale_input("S-3", product_sku="TV 55/4K", product_name="Tele", category="Servicio"),
        sale_input("S-4", product_sku="TV 55/4K", product_name="Tele"),
    )


def test_each_product_says_which_cadence_it_follows_and_why(engine: Engine, config: Config) -> None:
    sessions = _sessions(engine, config)
    with sessions() as session:
        _own_cadence(session, "Servicios", category="Servicio")
        _own_cadence(session, "Teles")
        tv = session.scalars(select(Product).where(Product.sku == "TV 55/4K")).one()
        tv.cadence_id = session.scalars(select(Cadence.id).where(Cadence.name == "Teles")).one()
        session.commit()
        views = {view.sku: view for view in list_products(session)}
        assert list(views) == ["LAV-9", "MANT-1Y", "TV 55/4K"]
        assert (views["LAV-9"].follows, views["LAV-9"].because) == ("Default", Because.DEFAULT)
        assert (views["MANT-1Y"].follows, views["MANT-1Y"].because) == (
            "Servicios",
            Because.CATEGORY,
        )
        assert (views["TV 55/4K"].cadence, views["TV 55/4K"].because) == ("Teles", Because.PRODUCT)
        assert [views[sku].sales for sku in views] == [1, 1, 2]
        # A cadence chosen for a product but paused hands it on to its category's.
        session.scalars(select(Cadence).where(Cadence.name == "Teles")).one().active = False
        session.commit()
        [tv_view] = list_products(session, search="55/4")
        assert (tv_view.follows, tv_view.because) == ("Servicios", Because.CATEGORY)


def test_the_list_pages_by_sku_and_searches_literally(engine: Engine, config: Config) -> None:
    sessions = _sessions(engine, config)
    with sessions() as session:
        assert [v.sku for v in list_products(session, limit=2)] == ["LAV-9", "MANT-1Y"]
        assert [v.sku for v in list_products(session, after="MANT-1Y")] == ["TV 55/4K"]
        assert [v.sku for v in list_products(session, search="plan")] == ["MANT-1Y"]
        assert list_products(session, search="%") == []  # a wildcard is a character here
        assert list_products(session, search="_") == []

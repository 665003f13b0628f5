"""Recording a sale plans its follow-ups from the right cadence, in the customer's hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.defaults import DEFAULT_STEPS, default_templates, install_defaults
from scheduler.lifecycle import TEMPLATE_CHANNELS, Channel, FollowUpStatus
from scheduler.listening.inbound import ACK_TEMPLATE, KEYWORD_TEMPLATES, USE_START_TEMPLATE
from scheduler.models import Cadence, CadenceStep, FollowUp, MessageTemplate, Product
from scheduler.sending.planning import schedule_sales
from scheduler.sending.sales import record_sale
from tests.factories import NOW
from tests.factories import sale_input as sale

LIMA = ZoneInfo("America/Lima")


def planned(session: Session) -> dict[str, FollowUp]:
    rows = session.execute(select(CadenceStep.key, FollowUp).join(FollowUp.step)).all()
    return {key: follow_up for key, follow_up in rows}


def test_defaults_are_installed_once_and_edits_are_kept(session: Session) -> None:
    now = NOW
    assert install_defaults(session, now) == [
        f"default cadence installed ({len(DEFAULT_STEPS)} steps)",
        "42 default templates installed",
    ]
    template = session.scalars(select(MessageTemplate).limit(1)).one()
    template.body = "edited by the owner"
    assert install_defaults(session, now) == []
    assert session.scalar(select(func.count()).select_from(CadenceStep)) == len(DEFAULT_STEPS)
    assert session.get(MessageTemplate, template.id).body == "edited by the owner"  # type: ignore[union-attr]
    names = {(t.name, t.channel, t.locale) for t in default_templates()}
    steps = {step.template_name for step in DEFAULT_STEPS}
    keywords = {
        (name, Channel.SMS, loc)
        for name in (*KEYWORD_TEMPLATES.values(), ACK_TEMPLATE, USE_START_TEMPLATE)
        for loc in ("es", "en")
    }
    assert (
        names
        == {(n, c, loc) for n in steps for c in TEMPLATE_CHANNELS for loc in ("es", "en")}
        | keywords
    )


def test_a_sale_gets_its_follow_ups_inside_the_window(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    sold_evening = datetime(2026, 11, 23, 19, 45, tzinfo=LIMA)
    record_sale(session, sale(sold_at=sold_evening), config=config, now=NOW, actor="api")
    plan = planned(session)
    assert set(plan) == {"day1-thanks", "day7-check-in", "day21-score", "day90-usage"}
    assert plan["day1-thanks"].due_at == datetime(2026, 11, 24, 19, 45, tzinfo=LIMA)
    # Day 7 is a Monday evening; day 21 too; both inside 09:00-20:00.
    assert plan["day7-check-in"].due_at == datetime(2026, 11, 30, 19, 45, tzinfo=LIMA)
    # Day 90 falls on Sunday 2027-02-21: moved to Monday 09:00, and to SMS (no email address).
    assert plan["day90-usage"].due_at == datetime(2027, 2, 22, 9, 0, tzinfo=LIMA)
    assert plan["day90-usage"].channel == Channel.SMS
    assert all(f.status == FollowUpStatus.SCHEDULED for f in plan.values())


def test_customer_time_zone_wins_over_the_business_one(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    sold = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    record_sale(
        session,
        sale(sold_at=sold, phone="+13055550142", timezone="America/New_York"),
        config=config,
        now=sold,
        actor="api",
    )
    due = planned(session)["day1-thanks"].due_at
    assert due == datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("America/New_York"))


def test_renewing_products_get_a_reminder_before_renewal(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    session.add(Product(sku="MANT-1Y", name="Plan anual", renewal_days=365))
    record_sale(
        session,
        sale(product_sku="MANT-1Y", email="rosa@example.pe"),
        config=config,
        now=NOW,
        actor="api",
    )
    reminder = planned(session)["renewal-reminder"]
    assert reminder.channel == Channel.EMAIL
    assert reminder.due_at == NOW + timedelta(days=365 - 14)


def test_old_sales_skip_steps_that_are_too_late(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    record_sale(session, sale(sold_at=NOW - timedelta(days=30)), config=config, now=NOW, actor="x")
    plan = planned(session)
    for key in ("day1-thanks", "day7-check-in", "day21-score"):
        assert plan[key].status == FollowUpStatus.SKIPPED
        assert (plan[key].status_reason or "").startswith("overdue by")
    assert plan["day90-usage"].status == FollowUpStatus.SCHEDULED


def test_customer_with_no_address_gets_skipped_follow_ups(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    record_sale(session, sale(phone=None), config=config, now=NOW, actor="x")
    reasons = {f.status_reason for f in planned(session).values()}
    assert reasons == {"no phone or email"}


def test_product_and_category_cadences_win_over_the_default(
    session: Session, config: Config
) -> None:
    install_defaults(session, NOW)
    for name, category in (("Seguros", "insurance"), ("VIP", None)):
        cadence = Cadence(name=name, product_category=category, created_at=NOW, updated_at=NOW)
        cadence.steps = [
            CadenceStep(
                key=f"{name}-1", offset_minutes=60, channel=Channel.SMS, template_name="thanks"
            )
        ]
        session.add(cadence)
    session.flush()
    vip = session.scalars(select(Cadence).where(Cadence.name == "VIP")).one()
    session.add_all(
        [
            Product(sku="INS", name="Seguro", category="insurance"),
            Product(sku="GOLD", name="Oro", category="insurance", cadence_id=vip.id),
        ]
    )
    record_sale(session, sale("A", product_sku="INS"), config=config, now=NOW, actor="x")
    record_sale(session, sale("B", product_sku="GOLD"), config=config, now=NOW, actor="x")
    keys = session.execute(
        select(FollowUp.sale_id, CadenceStep.key).join(FollowUp.step).order_by(FollowUp.sale_id)
    ).all()
    assert [key for _, key in keys] == ["Seguros-1", "VIP-1"]


def test_scheduling_again_adds_nothing(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    row, _ = record_sale(session, sale(), config=config, now=NOW, actor="x")
    assert schedule_sales(session, [row], config, NOW) == {row.id: 0}
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 4

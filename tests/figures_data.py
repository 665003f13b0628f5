"""A small hand-built data set for the dashboard's figures, whose times sit on the edges that
matter: the business's local midnight (Lima, UTC-5) at both ends of the period and between two
weeks, a reply just over 7 days late, a reply after the period to a follow-up sent in it, a
case opened on a Friday evening and answered on Monday."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import defaults
from scheduler.figures.period import Period
from scheduler.lifecycle import CaseStatus, Channel, FollowUpStatus, RemedyStatus, Role
from scheduler.models import (
    Cadence,
    CadenceStep,
    Case,
    Customer,
    FollowUp,
    Remedy,
    Sale,
    User,
)
from tests.factories import inbound_sms
from tests.tallied import worked

LIMA = ZoneInfo("America/Lima")
PERIOD = Period(date(2026, 11, 2), date(2026, 11, 15), LIMA)  # two weeks, Monday to Sunday
S = FollowUpStatus


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2026 on Lima's clock."""
    return datetime(2026, 11, day, hour, minute, tzinfo=LIMA)


NOW = at(16, 12)  # the day after the period
OPENING = defaults().cases.opening_hours  # weekdays 09:00-18:00, Saturdays 09:00-13:00


def build(session: Session) -> int:
    """The data set; returns the id of the Premium cadence."""
    default = session.scalar(select(Cadence).where(Cadence.is_default.is_(True))) or Cadence(
        name="Default", is_default=True, created_at=NOW, updated_at=NOW
    )  # the one installed, if it is
    premium = Cadence(name="Premium", created_at=NOW, updated_at=NOW)
    session.add_all([default, premium])
    session.flush()

    def step(cadence: Cadence, key: str) -> CadenceStep:
        row = CadenceStep(
            cadence_id=cadence.id,
            key=key,
            offset_minutes=0,
            channel=Channel.SMS,
            template_name="thanks",
        )
        session.add(row)
        return row

    first, second, p1 = step(default, "d1"), step(default, "d2"), step(premium, "p1")
    customers = [
        Customer(name=f"C{n}", phone=f"+5198765432{n}", created_at=at(1, 8)) for n in range(1, 6)
    ]
    customers[0].sms_opt_out_at = at(5, 10)
    customers[1].email_opt_out_at, customers[1].whatsapp_opt_out_at = at(6, 10), at(6, 11)
    customers[2].sms_opt_out_at = at(1, 10)  # before the period
    session.add_all(customers)
    session.flush()
    sales = [
        Sale(external_id=f"S{n}", customer_id=c.id, sold_at=at(1, 9), created_at=at(1, 9))
        for n, c in enumerate(customers[:4], 1)
    ]
    session.add_all(sales)
    session.flush()

    def follow_up(
        sale: Sale,
        row: CadenceStep,
        channel: Channel,
        status: FollowUpStatus,
        due: datetime,
        *,
        sent: bool = False,
        reason: str | None = None,
    ) -> FollowUp:
        made = FollowUp(
            sale_id=sale.id,
            step_id=row.id,
            customer_id=sale.customer_id,
            channel=channel,
            status=status,
            status_reason=reason,
            due_at=due,
            sent_at=due if sent else None,
            created_at=at(1, 9),
            updated_at=due,
        )
        session.add(made)
        return made

    s1, s2, s3, s4 = sales
    f1 = follow_up(s1, first, Channel.SMS, S.DELIVERED, at(3, 10), sent=True)
    f2 = follow_up(s2, first, Channel.EMAIL, S.SENT, at(4, 10), sent=True)
    follow_up(s3, first, Channel.SMS, S.FAILED, at(5, 10))
    follow_up(s1, second, Channel.SMS, S.SKIPPED, at(6, 10), reason="no phone or email")
    follow_up(s2, second, Channel.EMAIL, S.SKIPPED, at(7, 10), reason="opted out")
    f6 = follow_up(s1, p1, Channel.SMS, S.DELIVERED, at(10, 10), sent=True)
    follow_up(s4, first, Channel.SMS, S.SCHEDULED, at(20, 10))  # after the period
    follow_up(s4, second, Channel.SMS, S.DELIVERED, at(1, 23, 30), sent=True)  # Nov 2 in UTC
    f10 = follow_up(s3, second, Channel.SMS, S.SENT, at(15, 23, 30), sent=True)  # Nov 16 in UTC
    session.flush()

    cases = [
        Case(
            customer_id=customers[0].id,
            opened_at=at(3, 12),
            first_response_due_at=at(3, 16),
            first_responded_at=at(3, 13),  # an hour of opening time
            resolved_at=at(4, 10),
            status=CaseStatus.RESOLVED,
        ),
        Case(  # open, unanswered, past its deadline
            customer_id=customers[1].id,
            opened_at=at(12, 10),
            first_response_due_at=at(12, 14),
        ),
        Case(  # opened before the period, resolved in it
            customer_id=customers[2].id,
            opened_at=at(1, 20),
            first_response_due_at=at(2, 12),
            first_responded_at=at(2, 9),
            resolved_at=at(2, 9),
            status=CaseStatus.RESOLVED,
        ),
        Case(  # open on a Sunday, its deadline still ahead
            customer_id=customers[3].id,
            opened_at=at(15, 10),
            first_response_due_at=at(16, 14),
        ),
        Case(  # open, answered in time on a Saturday morning
            customer_id=customers[0].id,
            opened_at=at(14, 10),
            first_response_due_at=at(14, 14),
            first_responded_at=at(14, 11),
        ),
        Case(  # Friday 17:30, answered on Monday at 10:00, late: 30 + 240 + 60 opening minutes
            customer_id=customers[4].id,
            opened_at=at(13, 17, 30),
            first_response_due_at=at(14, 12, 30),
            first_responded_at=at(16, 10),
        ),
    ]
    session.add_all(cases)
    owner = User(email="dueña@example.pe", password_hash="-", role=Role.OWNER, created_at=NOW)
    session.add(owner)
    session.flush()

    def remedy(
        kind: str, value: str | None, status: RemedyStatus, when: datetime, **by: int
    ) -> None:
        session.add(
            Remedy(
                case_id=cases[0].id,
                kind=kind,
                description=kind,
                value=Decimal(value) if value else None,
                status=status,
                created_at=when,
                **{f"{who}_id": user for who, user in by.items()},
            )
        )

    remedy("discount", "50.00", RemedyStatus.GRANTED, at(4, 9))  # within the staff's limit
    remedy("discount", "150.00", RemedyStatus.GRANTED, at(4, 9, 30), approved_by=owner.id)
    remedy("discount", "400.00", RemedyStatus.DECLINED, at(5, 9))
    remedy("replacement", None, RemedyStatus.REQUESTED, at(12, 11))
    remedy("discount", "80.00", RemedyStatus.GRANTED, at(1, 10))  # before the period

    def reply(
        when: datetime,
        score: int | None,
        answered: FollowUp | None = None,
        case: Case | None = None,
    ) -> None:
        session.add(
            inbound_sms(
                "...",
                when,
                score=score,
                label="objection" if case else "positive",
                case_id=case.id if case else None,
                follow_up_id=answered.id if answered else None,
            )
        )

    # Within the window, a promoter in week 1, and an objection whose case is resolved.
    reply(at(3, 12), 10, f1, cases[0])
    # 8 days after f2 went: not in time; week 2; an objection whose case is still open.
    reply(at(12, 10, 1), 5, f2, cases[1])
    reply(at(10, 11), 8, f6)  # a passive, in week 2
    reply(at(14, 9), None)  # a reply that answers no follow-up
    reply(at(16, 1), 9, f10)  # after the period: answers f10, counts in no figure of it
    reply(at(1, 22), 0)  # the evening before the period (already Nov 2 in UTC)
    reply(at(8, 23, 59), 6)  # Sunday night: week 1 on Lima's clock, Monday in UTC

    session.commit()
    worked(session)  # PostgreSQL: the objections' follow-ups, as the worker writes them
    session.commit()
    return premium.id

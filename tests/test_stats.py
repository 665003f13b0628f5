"""The dashboard's figures (`scheduler.figures`, `GET /api/stats`), each one asserted on a small
hand-built data set whose times sit on the edges that matter: the business's local midnight
(Lima, UTC-5) at both ends of the period and between two weeks, a reply just over 7 days late,
a reply after the period to a follow-up sent in it."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import defaults
from scheduler.figures.period import Period, period_from
from scheduler.figures.summary import CaseCounts, Nps, Remedies, StepFunnel, figures
from scheduler.lifecycle import CaseStatus, Channel, Direction, FollowUpStatus, RemedyStatus, Role
from scheduler.models import (
    Cadence,
    CadenceStep,
    Case,
    Customer,
    FollowUp,
    Message,
    Remedy,
    Sale,
    User,
)

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
            Message(
                direction=Direction.INBOUND,
                channel=Channel.SMS,
                from_address="+51987654321",
                to_address="+15005550006",
                body="...",
                status="received",
                created_at=when,
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
    return premium.id


def test_every_figure_of_the_period(session: Session) -> None:
    build(session)
    found = figures(session, PERIOD, now=NOW, opening=OPENING)
    assert found.follow_ups == {
        "delivered": {"sms": 2},
        "sent": {"email": 1, "sms": 1},
        "failed": {"sms": 1},
        "skipped": {"sms": 1, "email": 1},
    }
    assert found.skipped_because == {"no phone or email": 1, "opted out": 1}
    # Sent in the period: f1, f2, f6, f10; answered within 7 days: f1, f6, f10 (after the end).
    assert (found.sent, found.answered, found.reply_rate) == (4, 3, 0.75)
    assert found.replies == 5
    assert found.nps == Nps(promoters=1, passives=1, detractors=2)
    assert (found.nps.ratings, found.nps.score) == (4, -25)
    assert found.nps_by_week == [
        (date(2026, 11, 2), Nps(promoters=1, detractors=1)),
        (date(2026, 11, 9), Nps(passives=1, detractors=1)),
    ]
    assert [nps.score for _week, nps in found.nps_by_week] == [0, -50]
    assert found.cases == CaseCounts(opened=5, resolved=2, open_now=4, overdue_now=1)
    assert found.opt_outs.customers == 2
    assert found.opt_outs.by_channel == {"sms": 1, "email": 1, "whatsapp": 1}
    assert (found.opt_outs.messaged, found.opt_outs.share) == (3, 2 / 3)
    # Opened in the period and decided: answered after 60, 60 and 330 opening minutes, and one
    # unanswered past its deadline; two of the four on time. The Sunday case is not due yet.
    assert found.first_answers.minutes == [60, 60, 330]
    assert (found.first_answers.percentile(0.5), found.first_answers.percentile(0.9)) == (60, 330)
    assert found.first_answers.on_time_share == 0.5
    assert found.remedies == {
        "discount": Remedies(given=2, value=Decimal("200.00"), needed_owner=2),
        "replacement": Remedies(given=0, value=Decimal("0.00"), needed_owner=1),
    }
    assert found.steps == [
        StepFunnel("Default", "d1", sent=2, delivered=1, replied=2, objections=2, resolved=1),
        StepFunnel("Default", "d2", sent=1, delivered=0, replied=1, objections=0, resolved=0),
        StepFunnel("Premium", "p1", sent=1, delivered=1, replied=1, objections=0, resolved=0),
    ]


def test_one_cadence_narrows_follow_ups_replies_and_ratings(session: Session) -> None:
    premium = build(session)
    found = figures(session, PERIOD, now=NOW, opening=OPENING, cadence_id=premium)
    assert found.follow_ups == {"delivered": {"sms": 1}}
    assert (found.sent, found.answered, found.reply_rate, found.replies) == (1, 1, 1.0, 1)
    assert found.nps == Nps(passives=1) and found.nps.score == 0
    assert [nps.ratings for _week, nps in found.nps_by_week] == [0, 1]
    assert [step.step for step in found.steps] == ["p1"]


def test_an_empty_period_has_no_rate_and_no_score(session: Session) -> None:
    build(session)
    empty = figures(
        session, Period(date(2025, 1, 1), date(2025, 1, 31), LIMA), now=NOW, opening=OPENING
    )
    assert empty.follow_ups == {} and empty.reply_rate is None and empty.nps.score is None
    assert empty.opt_outs.share is None and len(empty.nps_by_week) == 5


def test_a_period_is_read_from_local_days() -> None:
    today = date(2026, 11, 28)
    assert period_from(None, None, tz=LIMA, today=today) == Period(date(2026, 10, 30), today, LIMA)
    period = period_from("2026-11-02", "2026-11-15", tz=LIMA, today=today)
    assert period.start == datetime(2026, 11, 2, 5, 0, tzinfo=ZoneInfo("UTC"))
    assert period.end == datetime(2026, 11, 16, 5, 0, tzinfo=ZoneInfo("UTC"))
    assert [week[0] for week in period.weeks()] == [date(2026, 11, 2), date(2026, 11, 9)]
    assert [
        w[0] for w in period_from("2026-11-04", "2026-11-10", tz=LIMA, today=today).weeks()
    ] == [
        date(2026, 11, 4),
        date(2026, 11, 9),
    ]


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-11-31", None, "from: '2026-11-31' is not a date (YYYY-MM-DD)"),
        ("20261101", None, "from: '20261101' is not a date (YYYY-MM-DD)"),
        (None, "9999-12-31", "to: 9999-12-31 is not between 1970-01-01 and 2999-12-31"),
        ("2026-11-20", "2026-11-10", "from: 2026-11-20 is after to (2026-11-10)"),
        ("2024-01-01", "2026-01-01", "to: at most 366 days from `from`"),
    ],
)
def test_a_wrong_period_is_refused_naming_the_field(
    first: str | None, last: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        period_from(first, last, tz=LIMA, today=date(2026, 11, 28))


def _api(client: FlaskClient, token: str, query: str) -> tuple[int, object, str]:
    answer = client.get(f"/api/stats?{query}", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, answer.get_json(silent=True), answer.get_data(as_text=True)


def test_the_api_gives_the_figures_as_json_and_csv(
    client: FlaskClient, token: str, session: Session
) -> None:
    build(session)
    with freeze_time(NOW):
        status, document, _text = _api(client, token, "from=2026-11-02&to=2026-11-15")
        assert status == 200 and isinstance(document, dict)
        assert document["time_zone"] == "America/Lima" and document["cadence"] is None
        assert document["follow_ups"]["delivered"] == 2 and document["follow_ups"]["held"] == 0
        assert document["follow_ups"]["by_channel"]["email"]["skipped"] == 1
        assert document["reply_rate"] == 0.75 and document["replies"] == 5
        assert document["nps"]["score"] == -25 and document["nps"]["ratings"] == 4
        assert [week["score"] for week in document["nps"]["by_week"]] == [0, -50]
        assert document["cases"] == {"opened": 5, "resolved": 2, "open_now": 4, "overdue_now": 1}
        assert document["opt_outs"]["customers"] == 2 and document["opt_outs"]["messaged"] == 3
        assert document["first_response_business_minutes"] == {
            "p50": 60,
            "p90": 330,
            "answered": 3,
            "on_time_share": 0.5,
        }
        assert document["remedies"]["discount"] == {
            "given": 2,
            "value": "200.00",
            "needed_owner": 2,
        }
        assert document["steps"][-1] == {
            "cadence": "Premium",
            "step": "p1",
            "sent": 1,
            "delivered": 1,
            "replied": 1,
            "objections": 0,
            "resolved": 0,
        }
        status, premium, _text = _api(
            client, token, "from=2026-11-02&to=2026-11-15&cadence=Premium"
        )
        assert status == 200 and isinstance(premium, dict) and premium["replies"] == 1
        status, _none, text = _api(client, token, "from=2026-11-02&to=2026-11-15&format=csv")
    assert status == 200
    rows = dict(csv.reader(io.StringIO(text)))
    assert rows["nps.score"] == "-25" and rows["reply_rate"] == "0.75"
    assert rows["nps.by_week.2026-11-09.score"] == "-50"
    assert rows["follow_ups.skipped_because.opted out"] == "1"
    assert rows["cadence"] == ""
    assert rows["remedies.replacement.needed_owner"] == "1"
    assert rows["steps.Premium.p1.replied"] == "1"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("cadence=Nope", "cadence"),
        ("format=xlsx", "format"),
    ],
)
def test_the_api_refuses_a_wrong_query_naming_the_field(
    client: FlaskClient, token: str, query: str, field: str
) -> None:
    status, document, _text = _api(client, token, query)
    assert status == 400 and isinstance(document, dict)
    assert [error["field"] for error in document["errors"]] == [field]


def test_the_figures_need_a_token(client: FlaskClient) -> None:
    assert client.get("/api/stats").status_code == 401

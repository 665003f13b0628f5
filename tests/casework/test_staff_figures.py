"""A person's own figures on their inbox (`scheduler.figures.staff`): the cases they answered,
how long the ones they answered first had waited in opening hours, the team's overdue cases."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.clock import utcnow
from scheduler.config import defaults
from scheduler.figures.period import Period
from scheduler.figures.staff import staff_figures
from scheduler.lifecycle import CaseStatus, Channel, Direction, Role
from scheduler.models import Case, Customer, Message, User

LIMA = ZoneInfo("America/Lima")
PERIOD = Period(date(2026, 11, 2), date(2026, 11, 15), LIMA)
OPENING = defaults().cases.opening_hours  # weekdays 09:00-18:00


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=LIMA)


def _person(session: Session, email: str) -> User:
    person = User(email=email, password_hash="-", role=Role.STAFF, created_at=at(1, 8))
    session.add(person)
    session.flush()
    return person


def _case(
    session: Session, opened: datetime, due: datetime, *answers: tuple[User, datetime]
) -> Case:
    """A case of a customer of its own, answered by these people at these times."""
    customer = Customer(
        name="C", phone=f"+5198{len(session.new)}{opened:%d%H%M}", created_at=opened
    )
    session.add(customer)
    session.flush()
    case = Case(
        customer_id=customer.id,
        opened_at=opened,
        first_response_due_at=due,
        first_responded_at=answers[0][1] if answers else None,
        status=CaseStatus.RESOLVED if answers else CaseStatus.OPEN,
        resolved_at=answers[-1][1] if answers else None,
    )
    session.add(case)
    session.flush()
    for person, when in answers:
        session.add(
            Message(
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                from_address="+15005550006",
                to_address=customer.phone or "",
                body="Hola",
                status="delivered",
                created_at=when,
                case_id=case.id,
                customer_id=customer.id,
                sent_by_id=person.id,
            )
        )
    return case


def test_each_person_sees_their_own_answers_and_the_teams_overdue_cases(session: Session) -> None:
    ana, beto = _person(session, "ana@example.pe"), _person(session, "beto@example.pe")
    _case(session, at(3, 10), at(3, 14), (ana, at(3, 11)), (beto, at(3, 12)))
    _case(session, at(4, 10), at(4, 14), (beto, at(4, 10, 30)), (ana, at(4, 11)))
    # Thursday 10:00 to Friday 10:00: 8 opening hours and one more, 540 minutes, late.
    _case(session, at(5, 10), at(5, 14), (ana, at(6, 10)))
    _case(session, at(1, 9), at(1, 13), (ana, at(1, 10)))  # before the period
    _case(session, at(10, 9), at(10, 13))  # open, unanswered, overdue
    _case(session, at(16, 11), at(16, 15))  # open, its deadline ahead
    session.commit()
    now = at(16, 12)
    mine = staff_figures(session, ana.id, PERIOD, now=now, opening=OPENING)
    assert mine.answered_cases == 3
    assert mine.first_answers.minutes == [60, 540] and mine.first_answers.on_time_share == 0.5
    assert mine.team_overdue == 1
    theirs = staff_figures(session, beto.id, PERIOD, now=now, opening=OPENING)
    assert (theirs.answered_cases, theirs.first_answers.minutes) == (2, [30])
    assert theirs.first_answers.percentile(0.5) == 30


def test_the_inbox_shows_my_figures(staff_client: FlaskClient, session: Session) -> None:
    me = session.scalars(select(User).where(User.role == Role.STAFF)).one()
    now = utcnow()
    _case(
        session,
        now - timedelta(days=3),
        now - timedelta(days=3, hours=-4),
        (me, now - timedelta(days=2)),
    )
    _case(session, now - timedelta(days=2), now - timedelta(days=1))  # overdue
    session.commit()
    page = staff_client.get("/inbox").get_data(as_text=True)
    assert "Your last 30 days: cases answered, 1;" in page
    assert "Cases of the team overdue now: 1." in page

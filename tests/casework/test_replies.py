"""What happens after a reply: a person gets the complaints (a case with a deadline in opening
hours, the customer's follow-ups held), a score plans what it enables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.casework.cases import deadline_words, resolve_case
from scheduler.config import Config
from scheduler.figures.first_answers import measure
from scheduler.lifecycle import CaseStatus, Direction, FollowUpStatus
from scheduler.models import AuditEntry, Case, Customer, FollowUp, Message, OutboxEntry
from tests.browsing import use_config
from tests.dispatching import Clock, dispatcher, follow_up
from tests.replying import DAY1, config, post, read, reply, sent, sms  # noqa: F401 - fixtures

__all__ = ["config", "sent"]
LIMA = ZoneInfo("America/Lima")


def test_a_complaint_opens_one_case_with_a_deadline_and_holds_follow_ups(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    reply(client, "la lavadora no prende 😡", 1)
    reply(client, "y nadie me contesta", 2)  # joins the open case
    with sent() as session:
        [case] = session.scalars(select(Case)).all()
        assert case.status is CaseStatus.OPEN and case.reason == "objection"
        assert case.first_response_due_at > case.opened_at  # arithmetic: test_business_hours
        messages = session.scalars(
            select(Message).where(Message.direction == Direction.INBOUND).order_by(Message.id)
        ).all()
        assert [(m.label, m.needs_human, m.case_id) for m in messages] == [
            ("objection", True, case.id),
            ("objection", True, case.id),
        ]
        held = follow_up(session, "day7-check-in")
        assert held.status is FollowUpStatus.HELD
        assert held.status_reason == "the customer has an open case"


def test_praise_opens_no_case(client: FlaskClient, sent: sessionmaker[Session]) -> None:
    reply(client, "todo perfecto, gracias!", 1)
    with sent() as session:
        assert session.scalars(select(Case)).all() == []
        assert follow_up(session, "day7-check-in").status is FollowUpStatus.SCHEDULED


@pytest.mark.parametrize("body", ["STOP 🙏", "BAJA 🙏", "Stop 👍", "STOP STOP STOP"])
def test_a_stop_word_with_emoji_or_repeated_opts_out_at_once(
    client: FlaskClient, sent: sessionmaker[Session], body: str
) -> None:
    response = post(client, "/webhooks/twilio/sms", sms(body))
    # Twilio acts on a message of one word only: this confirmation is ours to send.
    assert "<Message>Mi Tienda: " in response.get_data(as_text=True)
    read(client.application)
    with sent() as session:
        customer = session.scalars(select(Customer)).one()
        assert customer.sms_opt_out_at is not None
        assert session.scalars(select(Case)).all() == []  # a keyword: nothing for a person to do
        assert follow_up(session, "day7-check-in").status is FollowUpStatus.SKIPPED


def test_unknown_senders_open_no_case(client: FlaskClient, sent: sessionmaker[Session]) -> None:
    reply(client, "esto es una estafa", 1, sender="+51911000000")
    with sent() as session:
        assert session.scalars(select(Case)).all() == []
        assert session.scalars(
            select(Message.label).where(Message.customer_id.is_(None))
        ).all() == ["objection"]


def test_a_high_score_plans_the_review_request(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    reply(client, "10/10", 1)
    with sent() as session:
        review = follow_up(session, "review-request")
        assert review.facts == {"score": 10} and review.status is FollowUpStatus.SCHEDULED
        assert session.scalars(select(Case)).all() == []


def test_a_low_score_opens_a_case_and_its_hand_off_still_goes(
    client: FlaskClient, sent: sessionmaker[Session], config: Config
) -> None:
    reply(client, "un 3", 1)
    with sent() as session:
        [case] = session.scalars(select(Case)).all()
        hand_off = follow_up(session, "low-score-handoff")
        assert hand_off.facts == {"score": 3, "case_id": case.id}
        due = hand_off.due_at
    # The hand-off is the case's own message: the open case holds everything else, not it.
    work = dispatcher(sent, config, Clock(max(due, DAY1)))
    summary = work.run_pass()
    assert summary["sent"] == 1
    with sent() as session:
        assert follow_up(session, "low-score-handoff").status is FollowUpStatus.SENT
        assert follow_up(session, "day7-check-in").status is FollowUpStatus.HELD


def test_a_complaint_is_acknowledged_with_when_a_person_answers(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    with freeze_time(datetime(2026, 11, 30, 15, 0, tzinfo=UTC)):  # Monday 10:00 in Lima
        reply(client, "la lavadora no prende", 5)
    expected = (
        "Rosa, gracias por escribirnos. Una persona de Mi Tienda lo revisa y te responde hoy "
        "antes de las 14:00."
    )
    with sent() as session:
        [case] = session.scalars(select(Case)).all()
        assert case.first_response_due_at == datetime(2026, 11, 30, 19, 0, tzinfo=UTC)
        [ack] = acknowledgements(session)
        assert (ack.body, ack.case_id, ack.to_address) == (expected, case.id, "+51987654321")
        assert ack.status == "stored"  # sent, here through the outbox
        assert expected in session.scalars(select(OutboxEntry.body)).all()


def acknowledgements(session: Session) -> list[Message]:
    return list(
        session.scalars(
            select(Message).where(
                Message.direction == Direction.OUTBOUND,
                Message.case_id.isnot(None),
                Message.customer_id.isnot(None),
            )
        )
    )


@pytest.mark.parametrize(
    "settings, body",
    [
        ({"routine_words": ["horario"]}, "cual es el horario de la tienda"),  # routine question
        ({"acknowledge": False}, "la lavadora no prende"),
        ({"notify_emails": []}, "la lavadora no prende"),  # nobody told: no promise made
        ({}, "un 3"),  # a low score: its hand-off says it already
    ],
)
def test_no_acknowledgement(
    app: Flask, sent: sessionmaker[Session], settings: dict[str, object], body: str
) -> None:
    use_config(app, cases=settings)
    response = post(app.test_client(), "/webhooks/twilio/sms", sms(body))
    assert "<Message>" not in response.get_data(as_text=True)
    read(app)
    with sent() as session:
        assert len(session.scalars(select(Case)).all()) == 1  # a person gets it all the same
        assert acknowledgements(session) == []


@pytest.mark.parametrize(
    "due, locale, words",
    [
        (datetime(2026, 12, 1, 16, 0), "es", "mañana antes de las 11:00"),
        (datetime(2026, 12, 1, 16, 0), "en", "tomorrow before 11:00 AM"),
        (datetime(2026, 12, 3, 16, 0), "es", "el jueves 3 de diciembre antes de las 11:00"),
        (datetime(2026, 12, 3, 16, 0), "en", "on Thursday, December 3 before 11:00 AM"),
    ],
)
def test_deadlines_in_words(due: datetime, locale: str, words: str) -> None:
    now = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # Monday 17:00 in Lima
    assert deadline_words(due.replace(tzinfo=UTC), now, LIMA, locale) == words


def _resolve(sessions: sessionmaker[Session], config: Config, at: datetime) -> int:
    with sessions.begin() as session:
        case = session.scalars(select(Case).where(Case.status == CaseStatus.OPEN)).one()
        resolve_case(session, case, outcome="replaced", now=at, actor="user:1", config=config)
        return case.id


def _check_sent(sessions: sessionmaker[Session], config: Config, at: datetime) -> FollowUp:
    summary = dispatcher(sessions, config, Clock(at)).run_pass()
    assert summary["sent"] >= 1, summary
    with sessions() as session:
        return session.scalars(select(FollowUp).where(FollowUp.case_id.isnot(None))).one()


COMPLAINED = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # Sunday 10:00 in Lima
RESOLVED = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # Monday 11:00 in Lima
CHECK_DUE = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # three days later, same hour


def _complain(client: FlaskClient) -> None:
    """The day before the case is resolved, whatever today's date."""
    with freeze_time(COMPLAINED):
        reply(client, "la lavadora no prende", 1)


def test_a_resolved_case_asks_whether_it_was_solved(
    client: FlaskClient, sent: sessionmaker[Session], config: Config
) -> None:
    _complain(client)
    case_id = _resolve(sent, config, RESOLVED)
    with sent() as session:
        check = session.scalars(select(FollowUp).where(FollowUp.case_id == case_id)).one()
        assert (check.step.key, check.due_at, check.facts) == (
            "case-check",
            CHECK_DUE,
            {"case_id": case_id},
        )
    sent_check = _check_sent(sent, config, CHECK_DUE)
    assert sent_check.status is FollowUpStatus.SENT


def test_no_it_is_not_reopens_the_same_case(
    client: FlaskClient, sent: sessionmaker[Session], config: Config
) -> None:
    _complain(client)
    case_id = _resolve(sent, config, RESOLVED)
    _check_sent(sent, config, CHECK_DUE)
    with sent.begin() as session:  # answered, and its minutes counted by the worker
        answered = session.get_one(Case, case_id)
        answered.first_responded_at = answered.opened_at + timedelta(hours=1)
        session.flush()
        assert measure(session, config.cases.opening_hours, config.business.tz) == 1
    with freeze_time(CHECK_DUE + timedelta(hours=1)):
        reply(client, "no, sigue sin funcionar", 2)
    with sent() as session:
        [case] = session.scalars(select(Case)).all()
        assert (case.id, case.status, case.reopened_count) == (case_id, CaseStatus.OPEN, 1)
        # Its next first answer is the one the dashboard will count.
        kept = (case.first_responded_at, case.first_answer_minutes, case.minutes_counted_with)
        assert kept == (None, None, None)
        assert case.resolved_at is None and case.first_response_due_at > CHECK_DUE
        assert follow_up(session, "day21-score").status is FollowUpStatus.HELD
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert "case.reopen" in actions


def test_yes_it_is_confirms_it(
    client: FlaskClient, sent: sessionmaker[Session], config: Config
) -> None:
    _complain(client)
    _resolve(sent, config, RESOLVED)
    _check_sent(sent, config, CHECK_DUE)
    with freeze_time(CHECK_DUE + timedelta(hours=1)):
        reply(client, "si, todo bien, gracias!", 2)
    with sent() as session:
        [case] = session.scalars(select(Case)).all()
        assert case.status is CaseStatus.RESOLVED
        assert "case.confirm" in session.scalars(select(AuditEntry.action)).all()


def test_each_resolved_case_gets_its_own_question(
    client: FlaskClient, sent: sessionmaker[Session], config: Config
) -> None:
    _complain(client)
    _resolve(sent, config, RESOLVED)
    reply(client, "ahora gotea", 2)  # a new case on the same sale
    _resolve(sent, config, RESOLVED + timedelta(days=1))
    with sent() as session:
        checks = session.scalars(select(FollowUp).where(FollowUp.case_id.isnot(None))).all()
        assert len({check.case_id for check in checks}) == 2

"""What happens after a reply: a person gets the complaints (a case with a deadline in opening
hours, the customer's follow-ups held), a score plans what it enables."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.lifecycle import CaseStatus, Direction, FollowUpStatus
from scheduler.models import Case, Message
from tests.dispatching import Clock, dispatcher, follow_up
from tests.test_webhooks import DAY1, config, post, sent, sms  # noqa: F401 - fixtures

__all__ = ["config", "sent"]


def reply(client: FlaskClient, body: str, n: int, sender: str = "+51987654321") -> None:
    response = post(client, "/webhooks/twilio/sms", sms(body, sid=f"SM{n:032d}", sender=sender))
    assert response.status_code == 200


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
            ("objection", True, case.id), ("objection", True, case.id),
        ]  # fmt: skip
        held = follow_up(session, "day7-check-in")
        assert held.status is FollowUpStatus.HELD
        assert held.status_reason == "the customer has an open case"


def test_praise_opens_no_case(client: FlaskClient, sent: sessionmaker[Session]) -> None:
    reply(client, "todo perfecto, gracias!", 1)
    with sent() as session:
        assert session.scalars(select(Case)).all() == []
        assert follow_up(session, "day7-check-in").status is FollowUpStatus.SCHEDULED


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

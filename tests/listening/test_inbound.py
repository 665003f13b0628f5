"""Replies in the domain, without HTTP: stored once, a keyword acted on at once, then read by the
worker (matched to the customer and the follow-up they answer, a case for a complaint)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.lifecycle import CaseStatus, Channel, Direction, FollowUpStatus
from scheduler.listening.inbound import act_on_consent, store_sms, triage
from scheduler.listening.reply_store import InboundMessage
from scheduler.listening.themes import vocabulary
from scheduler.models import Case, Customer, FollowUp, Message
from tests.dispatching import DAY1, Clock, dispatcher, follow_up, setup_sales
from tests.factories import sale_input

ROSA = "+51987654321"
LATER = DAY1 + timedelta(hours=2)


def sms(body: str, n: int = 1, sender: str = ROSA) -> InboundMessage:
    return InboundMessage(f"SM{n:032d}", sender, "+15005550006", body)


def rosa_thanked(engine: Engine, config: Config) -> sessionmaker[Session]:
    """Rosa bought, and her day-1 thank-you went out."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    return sessions


def inbound(session: Session) -> list[Message]:
    query = select(Message).where(Message.direction == Direction.INBOUND).order_by(Message.id)
    return list(session.scalars(query))


def test_a_reply_is_stored_once_whatever_twilio_retries(engine: Engine, config: Config) -> None:
    sessions = rosa_thanked(engine, config)
    with sessions.begin() as session:
        assert store_sms(session, sms("todo bien, gracias"), now=LATER)
    with sessions.begin() as session:
        assert not store_sms(session, sms("todo bien, gracias"), now=LATER)  # the retry
    with sessions() as session:
        [stored] = inbound(session)
        assert (stored.body, stored.channel, stored.customer_id) == (
            "todo bien, gracias",
            Channel.SMS,
            None,  # matched by the worker, not in the webhook's short transaction
        )
        assert stored.needs_human is None


def test_triage_matches_the_reply_to_the_follow_up_it_answers(
    engine: Engine, config: Config
) -> None:
    sessions = rosa_thanked(engine, config)
    with sessions.begin() as session:
        store_sms(session, sms("todo bien, gracias"), now=LATER)
    assert triage(sessions, config, now=LATER) == 1
    assert triage(sessions, config, now=LATER) == 0  # read once
    with sessions() as session:
        [reply] = inbound(session)
        rosa = session.scalars(select(Customer)).one()
        assert (reply.customer_id, reply.follow_up_id) == (
            rosa.id,
            follow_up(session, "day1-thanks").id,
        )
        assert (reply.label, reply.needs_human) == ("positive", False)
        assert session.scalars(select(Case)).all() == []


def test_a_complaint_opens_a_case_that_holds_the_follow_ups(engine: Engine, config: Config) -> None:
    sessions = rosa_thanked(engine, config)
    with sessions.begin() as session:
        store_sms(session, sms("la lavadora no prende y nadie me contesta"), now=LATER)
    triage(sessions, config, now=LATER)
    with sessions() as session:
        [case] = session.scalars(select(Case)).all()
        assert case.status is CaseStatus.OPEN and case.first_response_due_at > LATER
        pending = session.scalars(select(FollowUp.status).where(FollowUp.sent_at.is_(None)))
        assert set(pending) == {FollowUpStatus.HELD}


def test_triage_notes_the_themes_of_a_reply_and_the_words_they_were_read_with(
    engine: Engine, config: Config
) -> None:
    sessions = rosa_thanked(engine, config)
    with sessions.begin() as session:
        store_sms(session, sms("la lavadora llegó rota y me cobraron dos veces"), now=LATER)
        store_sms(session, sms("todo bien, gracias", 2), now=LATER)
    triage(sessions, config, now=LATER)
    with sessions() as session:
        complaint, thanks = inbound(session)
        read_with = vocabulary(session).fingerprint
        assert (complaint.themes, complaint.themes_read_with) == (
            "delivery breakage billing",
            read_with,
        )
        assert (thanks.themes, thanks.themes_read_with) == ("", read_with)


def test_stop_is_honoured_in_the_webhook_before_the_worker_reads_it(
    engine: Engine, config: Config
) -> None:
    sessions = rosa_thanked(engine, config)
    with sessions.begin() as session:
        store_sms(session, sms("STOP"), now=LATER)
    with sessions.begin() as session:
        act_on_consent(session, sms("STOP"), config=config, now=LATER)
    with sessions() as session:
        rosa = session.scalars(select(Customer)).one()
        assert rosa.sms_opt_out_at == LATER
        # In the order they were planned: PostgreSQL returns updated rows in no fixed order.
        statuses = session.scalars(select(FollowUp.status).order_by(FollowUp.due_at, FollowUp.id))
        assert list(statuses) == [FollowUpStatus.SENT, *[FollowUpStatus.SKIPPED] * 3]


def test_a_stranger_is_kept_for_a_person_and_a_keyword_changes_nobody(
    engine: Engine, config: Config
) -> None:
    sessions = rosa_thanked(engine, config)
    stranger = sms("STOP", sender="+51911000000")
    with sessions.begin() as session:
        store_sms(session, stranger, now=LATER)
        assert act_on_consent(session, stranger, config=config, now=LATER) is None
    triage(sessions, config, now=LATER)
    with sessions() as session:
        [kept] = inbound(session)
        assert kept.customer_id is None and kept.from_address == "+51911000000"
        assert session.scalars(select(Customer.sms_opt_out_at)).all() == [None]

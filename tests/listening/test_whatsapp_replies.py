"""Customers answering on WhatsApp: the same webhook and case as SMS, their own consent, quick-
reply buttons, the 24-hour window for a person's answer, and WhatsApp's `read` report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.casework.staff_actions import CaseworkError, reply_to_customer
from scheduler.clock import utcnow
from scheduler.lifecycle import Channel, ConsentSource, Direction, FollowUpStatus
from scheduler.models import Case, Customer, FollowUp, Message, MessageTemplate, User
from tests.browsing import submit, use_config
from tests.dispatching import follow_up
from tests.replying import ROSA, config, post, read, sent  # noqa: F401 - fixtures

__all__ = ["config", "sent"]
ROSA_WA = f"whatsapp:{ROSA}"
SHOP_WA = "whatsapp:+14155238886"


@pytest.fixture
def whatsapp(app: Flask) -> Flask:
    use_config(app, whatsapp={"transport": "outbox", "from_number": SHOP_WA})
    return app


def wa(body: str, n: int, **fields: str) -> dict[str, str]:
    return {
        "MessageSid": f"SM{n:032d}",
        "From": ROSA_WA,
        "To": SHOP_WA,
        "Body": body,
        "ProfileName": "Rosa Q.",
        "WaId": ROSA.removeprefix("+"),
        **fields,
    }


def write(app: Flask, body: str, n: int, **fields: str) -> str:
    response = post(app.test_client(), "/webhooks/twilio/sms", wa(body, n, **fields))
    assert response.status_code == 200
    read(app)
    return response.get_data(as_text=True)


def acknowledgement(session: Session) -> Message:
    """The one message to the customer in their case: the acknowledgement."""
    case = session.scalars(select(Case)).one()
    [ack] = session.scalars(
        select(Message).where(
            Message.case_id == case.id,
            Message.direction == Direction.OUTBOUND,
            Message.customer_id.isnot(None),
        )
    ).all()
    return ack


def inbound(session: Session) -> list[Message]:
    query = select(Message).where(Message.direction == Direction.INBOUND).order_by(Message.id)
    return list(session.scalars(query))


def test_a_whatsapp_reply_joins_the_customer_and_the_follow_up(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    write(whatsapp, "todo bien, gracias", 1)
    with sent() as session:
        [reply] = inbound(session)
        assert (reply.channel, reply.from_address) == (Channel.WHATSAPP, ROSA_WA)
        assert reply.customer_id == session.scalars(select(Customer.id)).one()
        assert reply.follow_up_id == follow_up(session, "day1-thanks").id


def test_baja_on_whatsapp_ends_whatsapp_only_and_is_answered(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    answer = write(whatsapp, "STOP", 1)  # Twilio answers no keyword on WhatsApp: we do
    assert "<Message>Mi Tienda: done, you will not get our messages by WhatsApp again." in answer
    with sent() as session:
        rosa = session.scalars(select(Customer)).one()
        assert rosa.whatsapp_opt_out and not rosa.sms_opt_out
        assert rosa.whatsapp_opt_out_via == "replied 'stop' by WhatsApp"
        assert rosa.opt_out_source(Channel.WHATSAPP) is ConsentSource.KEYWORD
        # SMS steps still go by SMS.
        assert follow_up(session, "day7-check-in").status is FollowUpStatus.SCHEDULED


def test_free_words_to_stop_on_whatsapp_end_whatsapp(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    write(whatsapp, "ya no me escriban por whatsapp porfa", 1)
    with sent() as session:
        rosa = session.scalars(select(Customer)).one()
        assert rosa.whatsapp_opt_out_via == "asked by WhatsApp to stop"
        assert rosa.opt_out_source(Channel.WHATSAPP) is ConsentSource.WORDS


def test_start_on_whatsapp_is_the_yes_whatsapp_needs(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    with sent() as session:
        assert not session.scalars(select(Customer)).one().whatsapp_opt_in
    answer = write(whatsapp, "START", 1)
    assert "<Message>Mi Tienda: done, you will receive our messages by WhatsApp." in answer
    with sent() as session:
        rosa = session.scalars(select(Customer)).one()
        assert rosa.whatsapp_opt_in and rosa.whatsapp_opt_in_via == "replied 'start' by WhatsApp"


def test_a_button_answer_to_the_score_step_is_the_rating(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    write(whatsapp, "Muy probable", 1, ButtonText="Muy probable", ButtonPayload="score:10")
    with sent() as session:
        [reply] = inbound(session)
        assert (reply.body, reply.button_payload, reply.score) == ("Muy probable", "score:10", 10)
        planned = session.scalars(select(FollowUp).where(FollowUp.status == "scheduled")).all()
        assert "review-request" in {row.step.key for row in planned}


def test_a_complaint_on_whatsapp_is_acknowledged_there(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    write(whatsapp, "la lavadora no prende y nadie me contesta", 1)
    with sent() as session:
        ack = acknowledgement(session)
        assert (ack.channel, ack.to_address) == (Channel.WHATSAPP, ROSA_WA)


def test_a_person_answers_on_whatsapp_only_inside_the_window(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    write(whatsapp, "la lavadora no prende", 1)
    with sent.begin() as session:
        case = session.scalars(select(Case)).one()
        rosa = session.get_one(Customer, case.customer_id)
        user = User(email="ana@mitienda.pe", password_hash="-", role="staff", created_at=utcnow())
        session.add(user)
        session.flush()

        def answer(body: str, later: timedelta = timedelta(0)) -> None:
            channel, now = Channel.WHATSAPP, utcnow() + later
            reply_to_customer(
                session, case, rosa, user=user, channel=channel, body=body, subject=None, now=now
            )

        answer("Hola Rosa")
        with pytest.raises(CaseworkError, match="24-hour window is closed"):
            answer("¿Sigue?", timedelta(hours=24))
        with pytest.raises(CaseworkError, match="at most 1024"):
            answer("x" * 1025)
        replies = session.scalars(select(Message).where(Message.sent_by_id == user.id)).all()
        assert [(m.channel, m.to_address, m.body) for m in replies] == [
            (Channel.WHATSAPP, ROSA_WA, "Hola Rosa")
        ]


def test_read_reports_move_a_whatsapp_message_forward(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    with sent.begin() as session:
        message = session.scalars(select(Message)).one()
        message.channel, message.provider_id = Channel.WHATSAPP, "SM" + "7" * 32
    client = whatsapp.test_client()
    for value in ("delivered", "read", "sent"):  # a late "sent" never steps back
        report = {"MessageSid": "SM" + "7" * 32, "MessageStatus": value}
        assert post(client, "/webhooks/twilio/status", report).status_code == 204
    with sent() as session:
        assert session.scalars(select(Message.status)).one() == "read"
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.DELIVERED


def test_a_bare_si_on_whatsapp_is_an_answer_not_a_first_yes(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    answer = write(whatsapp, "Sí", 1)
    assert "<Message>" not in answer
    with sent() as session:
        assert not session.scalars(select(Customer)).one().whatsapp_opt_in


def test_a_button_without_a_rating_is_read_by_its_text(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    write(whatsapp, "Sí, todo bien", 1, ButtonText="Sí, todo bien", ButtonPayload="1")
    with sent() as session:
        [reply] = inbound(session)
        assert reply.score is None and session.scalars(select(Case)).all() == []


def test_a_report_of_63016_after_the_send_sends_its_words_by_sms_once(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    with sent.begin() as session:
        message = session.scalars(select(Message)).one()
        message.channel, message.provider_id = Channel.WHATSAPP, "SM" + "6" * 32
        message.to_address, words = ROSA_WA, message.body
    client = whatsapp.test_client()
    report = {"MessageSid": "SM" + "6" * 32, "MessageStatus": "failed", "ErrorCode": "63016"}
    for _ in range(2):  # Twilio repeats a report it did not see answered
        assert post(client, "/webhooks/twilio/status", report).status_code == 204
    with sent() as session:
        row = follow_up(session, "day1-thanks")
        assert row.status is FollowUpStatus.SENT  # never resent: its words go by SMS
        assert row.status_reason == "WhatsApp refused it (63016): sent by SMS instead"
        [sms] = session.scalars(
            select(Message).where(Message.follow_up_id == row.id, Message.channel == Channel.SMS)
        ).all()
        assert (sms.to_address, sms.body, sms.status) == (ROSA, words, "prepared")


def test_with_whatsapp_off_a_complaint_there_is_acknowledged_by_sms(
    app: Flask, sent: sessionmaker[Session]
) -> None:
    write(app, "la lavadora no prende y nadie me contesta", 1)  # WhatsApp is off here
    with sent() as session:
        ack = acknowledgement(session)
        assert (ack.channel, ack.to_address) == (Channel.SMS, ROSA)


def test_the_case_page_answers_on_whatsapp_and_says_when_the_window_closes(
    whatsapp: Flask, sent: sessionmaker[Session], staff_client: FlaskClient
) -> None:
    write(whatsapp, "la lavadora no prende", 1)
    with sent() as session:
        case = session.scalars(select(Case)).one()
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert '<input checked id="channel-1" name="channel" type="radio" value="whatsapp">' in page
    assert 'id="whatsapp-window"' in page and "window closes" in page
    assert '<span class="channel">WhatsApp</span>' in page
    use_config(whatsapp, whatsapp={"transport": "off"})
    refused = submit(
        staff_client, f"/cases/{case.id}/reply", {"channel": "whatsapp", "body": "Hola"}
    )
    assert refused.status_code == 302
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "WhatsApp is off: answer by SMS or email." in page


def test_an_acknowledgement_too_long_for_whatsapp_goes_by_sms(
    whatsapp: Flask, sent: sessionmaker[Session]
) -> None:
    with sent.begin() as session:  # an owner's edit: 1 100 characters
        long = "Gracias, " + "x" * 1091
        session.execute(
            update(MessageTemplate).where(MessageTemplate.name == "case_ack").values(body=long)
        )
    write(whatsapp, "la lavadora no prende y nadie me contesta", 1)
    with sent() as session:
        ack = acknowledgement(session)
        assert (ack.channel, ack.to_address, len(ack.body)) == (Channel.SMS, ROSA, 1100)

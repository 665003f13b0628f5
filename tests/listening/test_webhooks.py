"""Twilio's webhooks, signed with the real RequestValidator: replies, keywords, delivery reports."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from scheduler.lifecycle import ConsentSource, Direction, FollowUpStatus
from scheduler.models import Customer, FollowUp, Message
from tests.browsing import use_config
from tests.dispatching import follow_up
from tests.replying import ROSA, TOKEN, config, post, read, reply, sent, sms  # noqa: F401 - fixtures

__all__ = ["config", "sent"]


def inbound(session: Session) -> list[Message]:
    query = select(Message).where(Message.direction == Direction.INBOUND).order_by(Message.id)
    return list(session.scalars(query))


def test_a_reply_is_stored_once_and_linked(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    first = post(client, "/webhooks/twilio/sms", sms("todo bien, gracias"))
    again = post(client, "/webhooks/twilio/sms", sms("todo bien, gracias"))  # Twilio's retry
    assert first.status_code == again.status_code == 200
    assert first.mimetype == "application/xml"
    assert first.get_data(as_text=True).endswith("<Response />")
    with sent() as session:  # stored at once, not read yet
        [stored] = inbound(session)
        assert stored.needs_human is None
    read(client.application)  # the worker, seconds later
    with sent() as session:
        [reply] = inbound(session)
        assert reply.body == "todo bien, gracias" and reply.status == "received"
        assert reply.customer_id == session.scalars(select(Customer.id)).one()
        assert reply.follow_up_id == follow_up(session, "day1-thanks").id


def test_unsigned_or_badly_signed_requests_store_nothing(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    unsigned = client.post("/webhooks/twilio/sms", data=sms("hola"))
    forged = post(client, "/webhooks/twilio/sms", sms("hola"), signature="bm90IGEgc2lnbmF0dXJl")
    # Signed for the address the app sees, not the public one Twilio was given.
    local = RequestValidator(TOKEN).compute_signature(
        "http://localhost/webhooks/twilio/sms", sms("hola")
    )
    proxied = post(client, "/webhooks/twilio/sms", sms("hola"), signature=local)
    assert unsigned.status_code == forged.status_code == proxied.status_code == 403
    with sent() as session:
        assert inbound(session) == []


def test_unknown_senders_are_kept_for_a_person(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    response = post(client, "/webhooks/twilio/sms", sms("quien es?", sender="+51911000000"))
    assert response.status_code == 200
    read(client.application)
    with sent() as session:
        [reply] = inbound(session)
        assert reply.customer_id is None and reply.follow_up_id is None


def test_malformed_and_oversized_requests(client: FlaskClient, sent: sessionmaker[Session]) -> None:
    missing = post(client, "/webhooks/twilio/sms", {"From": ROSA, "Body": "hola"})
    assert missing.status_code == 400
    assert missing.get_data(as_text=True) == "missing form field(s): MessageSid, To\n"
    huge = post(client, "/webhooks/twilio/sms", sms("x" * 17_000))
    assert huge.status_code == 413
    with sent() as session:
        assert inbound(session) == []


@pytest.mark.parametrize(
    "body, answer",
    [
        ("STOP", None),  # Twilio's own opt-out handling already confirmed it
        ("Baja.", "Mi Tienda: listo, ya no te enviaremos mensajes por SMS."),
        (
            "ya no me manden mensajes porfa",
            "Mi Tienda: listo, ya no te enviaremos mensajes por SMS.",
        ),
        ("please stop texting me", "Mi Tienda: done, you will not get our messages by SMS again."),
    ],
)
def test_opting_out_by_sms_takes_effect_at_once(
    client: FlaskClient, sent: sessionmaker[Session], body: str, answer: str | None
) -> None:
    response = post(client, "/webhooks/twilio/sms", sms(body))
    text = response.get_data(as_text=True)
    if answer is None:
        assert "<Message>" not in text
    else:
        assert f"<Message>{answer}" in text
    with sent() as session:
        customer = session.scalars(select(Customer)).one()
        assert customer.sms_opt_out_at is not None
        assert customer.sms_opt_out_via and "by SMS" in customer.sms_opt_out_via
        pending = session.scalars(
            select(FollowUp.status).where(FollowUp.status == FollowUpStatus.SCHEDULED)
        ).all()
        assert pending == []  # day 7, day 21 and day 90 skipped now, not at their send time
        assert follow_up(session, "day7-check-in").status is FollowUpStatus.SKIPPED


def test_opting_back_in_and_a_plain_si(client: FlaskClient, sent: sessionmaker[Session]) -> None:
    plain = post(client, "/webhooks/twilio/sms", sms("si", sid="SM" + "2" * 32))
    assert "<Message>" not in plain.get_data(as_text=True)  # an answer, not an opt-in
    post(client, "/webhooks/twilio/sms", sms("BAJA", sid="SM" + "3" * 32))
    back = post(client, "/webhooks/twilio/sms", sms("alta", sid="SM" + "4" * 32))
    assert "<Message>Mi Tienda: listo, te escribiremos por SMS." in back.get_data(as_text=True)
    with sent() as session:
        assert session.scalars(select(Customer)).one().sms_opt_out_at is None
        assert len(inbound(session)) == 3


@pytest.mark.parametrize("policy, body, answered", [("all", "STOP", True), ("none", "BAJA", False)])
def test_who_answers_keywords_is_a_setting(
    app: Flask, sent: sessionmaker[Session], policy: str, body: str, answered: bool
) -> None:
    use_config(app, sms={"keyword_replies": policy})
    response = post(app.test_client(), "/webhooks/twilio/sms", sms(body))
    assert ("<Message>" in response.get_data(as_text=True)) is answered


def status(sid: str, value: str, error: str | None = None) -> dict[str, str]:
    params = {"MessageSid": sid, "MessageStatus": value}
    if error:
        params["ErrorCode"] = error
    return params


def test_delivery_reports_in_any_order(client: FlaskClient, sent: sessionmaker[Session]) -> None:
    with sent() as session:
        message = session.scalars(select(Message)).one()
        path = f"/webhooks/twilio/status?follow_up={message.follow_up_id}"
    assert post(client, path, status(str(message.provider_id), "delivered")).status_code == 204
    assert post(client, path, status(str(message.provider_id), "sent")).status_code == 204
    with sent() as session:
        assert session.scalars(select(Message.status)).one() == "delivered"
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.DELIVERED


def test_an_undelivered_report_fails_the_follow_up_with_the_code(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    with sent() as session:
        message = session.scalars(select(Message)).one()
    post(
        client, "/webhooks/twilio/status", status(str(message.provider_id), "undelivered", "30003")
    )
    with sent() as session:
        failed = follow_up(session, "day1-thanks")
        assert failed.status is FollowUpStatus.FAILED
        assert failed.status_reason == "the carrier reported undelivered (error 30003)"
        assert session.scalars(select(Message.error_code)).one() == "30003"


def test_a_report_settles_an_unknown_follow_up_and_21610_opts_out(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    with sent.begin() as session:
        row = follow_up(session, "day1-thanks")
        row.status = FollowUpStatus.UNKNOWN
        message = session.scalars(select(Message)).one()
        message.status, sid = "uncertain", str(message.provider_id)
    post(client, "/webhooks/twilio/status", status(sid, "failed", "21610"))
    with sent() as session:
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.FAILED
        customer = session.scalars(select(Customer)).one()
        assert customer.sms_opt_out_via == "Twilio error 21610: replied STOP to our number"
        assert customer.sms_opt_out_source is ConsentSource.PROVIDER_REFUSAL
        assert follow_up(session, "day7-check-in").status is FollowUpStatus.SKIPPED


def test_a_report_for_nothing_of_ours_is_acknowledged(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    response = post(client, "/webhooks/twilio/status", status("SM" + "9" * 32, "delivered"))
    assert response.status_code == 204
    with sent() as session:
        assert session.scalars(select(Message.status)).one() == "stored"


def test_a_nul_or_an_overlong_id_is_a_clear_400_or_dropped(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    assert post(client, "/webhooks/twilio/sms", sms("hola\x00 todo bien")).status_code == 200
    long_id = post(client, "/webhooks/twilio/sms", sms("hola", sid="SM" + "1" * 120))
    assert long_id.status_code == 400
    assert long_id.get_data(as_text=True) == "MessageSid is longer than 100 characters\n"
    with sent() as session:
        assert [m.body for m in inbound(session)] == ["hola todo bien"]


def test_alta_after_twilios_stop_asks_for_start(app: Flask, sent: sessionmaker[Session]) -> None:
    """Twilio blocks a number that sent STOP until START: an ALTA cannot lift that."""
    use_config(
        app,
        sms={"transport": "twilio"},
        twilio={"account_sid": "AC" + "0" * 32, "from_number": "+15005550006"},
    )
    client = app.test_client()
    post(client, "/webhooks/twilio/sms", sms("STOP", sid="SM" + "6" * 32))
    answer = post(client, "/webhooks/twilio/sms", sms("ALTA", sid="SM" + "7" * 32))
    assert "responde START" in answer.get_data(as_text=True)
    with sent() as session:
        assert session.scalars(select(Customer)).one().sms_opt_out_at is not None


@pytest.mark.parametrize(
    "body",
    [
        "el precio me parecio alto ya que hay otros",
        "por favor no me envien otro modelo",
        "quiero dar de baja el seguro",
        "I don't text much, please call me",
        "Para?",
    ],
)
def test_complaints_that_sound_like_stop_do_not_opt_out(
    client: FlaskClient, sent: sessionmaker[Session], body: str
) -> None:
    post(client, "/webhooks/twilio/sms", sms(body))
    with sent() as session:
        assert session.scalars(select(Customer)).one().sms_opt_out_at is None


def test_a_curly_apostrophe_still_opts_out(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    post(client, "/webhooks/twilio/sms", sms("please don\u2019t text me again"))
    with sent() as session:
        assert session.scalars(select(Customer)).one().sms_opt_out_at is not None

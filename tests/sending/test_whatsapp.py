"""WhatsApp: which channel a step takes, the 24-hour window, Content templates, 63016 and 63021."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.lifecycle import Channel, Direction, FollowUpStatus, MessageStatus
from scheduler.models import AuditEntry, CadenceStep, Customer, FollowUp, Message, MessageTemplate
from scheduler.sending.queueing import queue
from scheduler.sending.sandbox import RenderError
from scheduler.sending.transports import Failure, TransportError
from scheduler.sending.whatsapp import (
    Facts,
    Reach,
    content_form,
    content_variables,
    in_window,
    reach,
)
from tests.dispatching import DAY1, Clock, dispatcher, follow_up, outbox, scripted, setup_sales
from tests.factories import sale_input

SID = "HX" + "a" * 32
ROSA_WA = "whatsapp:+51987654321"


def on(config: Config, **whatsapp: object) -> Config:
    return config.replace(whatsapp={"transport": "outbox", **whatsapp})


# --- the rules, as plain functions -------------------------------------------------------------


def test_the_content_form_numbers_each_expression_once_in_order() -> None:
    form = content_form(
        "Hola {{ customer.first_name }}, ¿qué tal {{product.name}}? "
        "{{ customer.first_name }}, {{ reply.instructions }}"
    )
    assert form.text == "Hola {{1}}, ¿qué tal {{2}}? {{1}}, {{3}}"
    assert form.expressions == ("customer.first_name", "product.name", "reply.instructions")
    assert not form.logic
    assert content_form("{% if x %}a{% endif %}").logic
    with pytest.raises(RenderError, match="line 1"):
        content_form("Hola {{ customer.name ")


def test_variables_are_rendered_in_the_shape_meta_accepts() -> None:
    form = content_form("{{ a }} {{ b }} {{ c }}")
    context = {"a": "Rosa\nQuispe", "b": "", "c": "x      y"}
    assert content_variables(form, context, label="t") == {"1": "Rosa Quispe", "2": "-", "3": "x y"}


def test_the_window_closes_24_hours_after_the_last_message_with_a_margin() -> None:
    wrote = DAY1
    assert in_window(wrote, wrote + timedelta(hours=23, minutes=49))
    assert not in_window(wrote, wrote + timedelta(hours=23, minutes=51))
    assert not in_window(None, wrote)


@pytest.mark.parametrize(
    ("step", "facts", "sids", "prefer", "expected"),
    [
        # SMS steps: WhatsApp only to who opted in, when the owner prefers it.
        (Channel.SMS, Facts(False, True, None), {}, True, Reach(Channel.SMS)),
        (Channel.SMS, Facts(True, True, None), {"thanks/es": SID}, False, Reach(Channel.SMS)),
        (
            Channel.SMS,
            Facts(True, True, None),
            {"thanks/es": SID},
            True,
            Reach(Channel.WHATSAPP, SID),
        ),
        (Channel.SMS, Facts(True, True, DAY1), {}, True, Reach(Channel.WHATSAPP)),
        (
            Channel.SMS,
            Facts(True, True, None),
            {"thanks/en": SID},
            True,
            Reach(
                Channel.SMS,
                note="by SMS: WhatsApp's 24-hour window is closed and there is no approved "
                "Content template for thanks/es",
            ),
        ),
        (
            Channel.SMS,
            Facts(True, True, DAY1, refused=True),
            {},
            True,
            Reach(
                Channel.SMS, note="by SMS: WhatsApp refused it (63016: outside the 24-hour window)"
            ),
        ),
        # WhatsApp steps: SMS instead where allowed, else nothing.
        (
            Channel.WHATSAPP,
            Facts(False, True, None),
            {},
            True,
            Reach(Channel.SMS, note="by SMS: the customer has not opted in to WhatsApp"),
        ),
        (
            Channel.WHATSAPP,
            Facts(False, False, None),
            {},
            False,
            Reach(
                None,
                note="not by WhatsApp (the customer has not opted in to WhatsApp), and SMS is "
                "not allowed",
            ),
        ),
        (Channel.EMAIL, Facts(True, True, DAY1), {}, True, Reach(Channel.EMAIL)),
    ],
)
def test_which_channel_a_step_takes(
    config: Config,
    step: Channel,
    facts: Facts,
    sids: dict[str, str],
    prefer: bool,
    expected: Reach,
) -> None:
    whatsapp = on(config, prefer_over_sms=prefer, content_sids=sids).whatsapp
    now = DAY1 + timedelta(hours=1)
    assert (
        reach(step, facts, whatsapp=whatsapp, template="thanks", locale="es", now=now) == expected
    )


def test_whatsapp_off_is_never_used(config: Config) -> None:
    facts = Facts(True, True, DAY1)
    way = reach(Channel.SMS, facts, whatsapp=config.whatsapp, template="t", locale="es", now=DAY1)
    assert way == Reach(Channel.SMS)


# --- dispatch ----------------------------------------------------------------------------------


def rosa_opted_in(engine: Engine, config: Config) -> sessionmaker[Session]:
    sessions = setup_sales(engine, config, sale_input("S-1", whatsapp_opt_in=True))
    with sessions() as session:
        rosa = session.scalars(select(Customer)).one()
        assert rosa.whatsapp_opt_in and rosa.whatsapp_opt_in_via == "said yes with a sale (test)"
    return sessions


def wrote_on_whatsapp(sessions: sessionmaker[Session], at: object, body: str = "hola") -> None:
    with sessions.begin() as session:
        session.add(
            Message(
                direction=Direction.INBOUND,
                channel=Channel.WHATSAPP,
                from_address=ROSA_WA,
                to_address="whatsapp:+14155238886",
                body=body,
                provider_id=f"SM{hash(body) & 0xFFFF:032d}",
                status=MessageStatus.RECEIVED,
                created_at=at,
                needs_human=False,
            )
        )


def reroutes(session: Session) -> list[dict[str, object]]:
    query = select(AuditEntry.details).where(AuditEntry.action == "follow_up.channel")
    return list(session.scalars(query))


def test_outside_the_window_the_content_template_goes(engine: Engine, config: Config) -> None:
    config = on(config, content_sids={"thanks/es": SID})
    sessions = rosa_opted_in(engine, config)
    assert dispatcher(sessions, config, Clock(DAY1)).run_pass()["sent"] == 1
    with sessions() as session:
        [entry] = outbox(session)
        assert entry.channel is Channel.WHATSAPP and entry.to_address == ROSA_WA
        assert entry.headers["ContentSid"] == SID
        variables = json.loads(entry.headers["ContentVariables"])
        assert variables == {
            "1": "Rosa",
            "2": "Lavadora",
            "3": "Mi Tienda",
        }
        assert entry.body.startswith("Hola Rosa, gracias por comprar Lavadora en Mi Tienda.")
        message = session.scalars(select(Message)).one()
        assert (message.channel, message.content_sid) == (Channel.WHATSAPP, SID)
        assert message.content_variables == variables
        sent = follow_up(session, "day1-thanks")
        assert sent.status is FollowUpStatus.SENT and sent.channel is Channel.SMS  # as planned
        [audit] = reroutes(session)
        assert audit["planned"] == "sms" and audit["sent_by"] == "whatsapp"


def test_inside_the_window_free_text_goes(engine: Engine, config: Config) -> None:
    config = on(config)
    sessions = rosa_opted_in(engine, config)
    wrote_on_whatsapp(sessions, DAY1 - timedelta(hours=3))
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions() as session:
        [entry] = outbox(session)
        assert entry.channel is Channel.WHATSAPP and "ContentSid" not in entry.headers
        assert "responde a este mensaje" in entry.body


def test_without_a_template_or_consent_it_goes_by_sms(engine: Engine, config: Config) -> None:
    config = on(config)  # no Content template
    sessions = setup_sales(
        engine,
        config,
        sale_input("S-1", whatsapp_opt_in=True),
        sale_input("S-2", phone="+51911111111"),  # never said yes to WhatsApp
    )
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions() as session:
        assert {entry.channel for entry in outbox(session)} == {Channel.SMS}
        [audit] = reroutes(session)  # only the customer WhatsApp could have taken
        assert audit["sent_by"] == "sms" and "no approved Content template for thanks/es" in str(
            audit["reason"]
        )


def test_a_whatsapp_step_without_consent_or_sms_is_skipped_with_why(
    engine: Engine, config: Config
) -> None:
    config = on(config)
    sessions = setup_sales(engine, config, sale_input("S-1"))
    with sessions.begin() as session:
        session.execute(update(CadenceStep).values(channel=Channel.WHATSAPP))
        session.execute(update(FollowUp).values(channel=Channel.WHATSAPP))
        session.execute(update(Customer).values(sms_opt_out_at=DAY1, sms_opt_out_via="BAJA"))
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions() as session:
        assert outbox(session) == []
        skipped = follow_up(session, "day1-thanks")
        assert skipped.status is FollowUpStatus.SKIPPED
        assert skipped.status_reason == (
            "not by WhatsApp (the customer has not opted in to WhatsApp), and SMS is not allowed"
        )


def test_63016_is_never_retried_blindly_it_goes_by_sms(engine: Engine, config: Config) -> None:
    config = on(config)
    sessions = rosa_opted_in(engine, config)
    wrote_on_whatsapp(sessions, DAY1 - timedelta(hours=3))
    refused = TransportError("outside the allowed window", failure=Failure.PERMANENT, code="63016")
    transports = scripted(sessions, Clock(DAY1))
    transports[Channel.WHATSAPP].errors.append(refused)
    clock = Clock(DAY1)
    summary = dispatcher(sessions, config, clock, transports).run_pass()  # refused, then by SMS
    assert (summary["retrying"], summary["sent"]) == (1, 1)
    clock.advance(minutes=1)
    assert dispatcher(sessions, config, clock, transports).run_pass()["claimed"] == 0
    with sessions() as session:
        assert len(transports[Channel.WHATSAPP].sends) == 1  # never again
        [entry] = outbox(session)
        assert entry.channel is Channel.SMS
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        outbound = [m for m in messages if m.direction is Direction.OUTBOUND]
        assert [(m.channel, m.status, m.error_code) for m in outbound] == [
            (Channel.WHATSAPP, MessageStatus.FAILED, "63016"),
            (Channel.SMS, "stored", None),
        ]
        row = follow_up(session, "day1-thanks")
        assert row.status is FollowUpStatus.SENT and row.channel is Channel.SMS


def test_63016_fails_with_the_reason_when_sms_is_not_allowed(
    engine: Engine, config: Config
) -> None:
    config = on(config)
    sessions = rosa_opted_in(engine, config)
    wrote_on_whatsapp(sessions, DAY1 - timedelta(hours=3))
    with sessions.begin() as session:
        session.execute(update(Customer).values(sms_opt_out_at=DAY1, sms_opt_out_via="BAJA"))
    transports = scripted(
        sessions,
        Clock(DAY1),
        TransportError("outside the allowed window", failure=Failure.PERMANENT, code="63016"),
    )
    dispatcher(sessions, config, Clock(DAY1), transports).run_pass()
    with sessions() as session:
        row = follow_up(session, "day1-thanks")
        assert row.status is FollowUpStatus.FAILED and "63016" in (row.status_reason or "")


def test_a_message_over_1024_characters_goes_by_sms(engine: Engine, config: Config) -> None:
    config = on(config)
    sessions = rosa_opted_in(engine, config)
    wrote_on_whatsapp(sessions, DAY1 - timedelta(hours=3))
    with sessions.begin() as session:
        session.execute(update(FollowUp).values(facts={"long": "x" * 1100}).where(FollowUp.id > 0))
        session.execute(
            update(MessageTemplate)
            .where(MessageTemplate.name == "thanks", MessageTemplate.channel == Channel.SMS)
            .values(body="Hola {{ customer.first_name }} {{ long }}")
        )
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions() as session:
        [entry] = outbox(session)
        assert entry.channel is Channel.SMS
        [audit] = reroutes(session)
        assert "more than 1024" in str(audit["reason"])


def test_a_whatsapp_opt_out_before_the_hand_over_sends_nothing(
    engine: Engine, config: Config
) -> None:
    config = on(config, content_sids={"thanks/es": SID})
    sessions = rosa_opted_in(engine, config)
    clock = Clock(DAY1)
    worker = dispatcher(sessions, config, clock, scripted(sessions, clock))
    ids = worker.claim()
    jobs = worker.prepare(ids, Counter())
    with sessions.begin() as session:  # a STOP on WhatsApp arrives meanwhile
        session.execute(update(Customer).values(whatsapp_opt_out_at=DAY1))
    worker.record(worker.deliver_batch(jobs), Counter())
    with sessions() as session:
        assert outbox(session) == []


def test_free_text_whose_window_closed_before_it_went_is_drafted_anew(
    engine: Engine, config: Config
) -> None:
    config = on(config, content_sids={"thanks/es": SID})
    sessions = rosa_opted_in(engine, config)
    wrote_on_whatsapp(sessions, DAY1 - timedelta(hours=23, minutes=40))
    passing = TransportError("timed out connecting", failure=Failure.RETRY)
    clock = Clock(DAY1)
    transports = scripted(sessions, clock)
    transports[Channel.WHATSAPP].errors.append(passing)
    dispatcher(sessions, config, clock, transports).run_pass()  # free text, not sent
    clock.advance(hours=2)  # the window closed meanwhile
    dispatcher(sessions, config, clock, transports).run_pass()
    sends = transports[Channel.WHATSAPP].sends
    assert [(s.content_sid is None) for s in sends] == [True, False]  # then the template
    with sessions() as session:
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        assert [(m.content_sid, m.status) for m in messages if m.direction is Direction.OUTBOUND][
            0
        ] == (None, MessageStatus.FAILED)
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SENT


def test_the_content_template_is_the_one_of_the_language_rendered(
    engine: Engine, config: Config
) -> None:
    """A customer in English with no English template gets the Spanish text: the Spanish
    Content template goes, its variables numbered for that text."""
    config = on(config, content_sids={"thanks/es": SID, "thanks/en": "HX" + "b" * 32})
    sessions = rosa_opted_in(engine, config)
    with sessions.begin() as session:
        session.execute(update(Customer).values(locale="en"))
        session.execute(
            update(MessageTemplate)
            .where(MessageTemplate.name == "thanks", MessageTemplate.locale == "en")
            .values(locale="xx")
        )
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions() as session:
        [entry] = outbox(session)
        assert entry.headers["ContentSid"] == SID and entry.body.startswith("Hola Rosa")


def test_a_channel_turned_off_fails_its_waiting_messages_with_why(
    engine: Engine, config: Config
) -> None:
    sessions = rosa_opted_in(engine, config)
    clock = Clock(DAY1)
    with sessions.begin() as session:
        rosa = session.scalars(select(Customer)).one()
        queue(
            session,
            channel=Channel.WHATSAPP,
            to=ROSA_WA,
            subject=None,
            body="Hola Rosa",
            now=clock(),
            customer_id=rosa.id,
        )
    summary = dispatcher(sessions, config, clock).queued.run_pass()  # WhatsApp is off
    assert summary["queued_failed"] == 1
    with sessions() as session:
        message = session.scalars(select(Message).where(Message.channel == Channel.WHATSAPP)).one()
        assert message.status == MessageStatus.FAILED
        assert "whatsapp is off (whatsapp.transport)" in (message.error_message or "")

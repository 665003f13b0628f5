"""Where an opt-out came from is a typed value: written by every way of opting out, and read,
never searched for in the wording (migration 0013 gives existing opt-outs theirs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from scheduler import schema
from scheduler.config import Config
from scheduler.consent import opt_in, opt_out
from scheduler.lifecycle import Channel, ConsentSource
from scheduler.listening.inbound import act_on_consent
from scheduler.listening.reply_store import InboundMessage
from scheduler.models import Base, Customer
from tests.factories import NOW
from tests.migrating import blank  # noqa: F401 - fixture

__all__ = ["blank"]
DAY = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WORDINGS = {  # what each way of opting out wrote before 0013, and the source it means
    "Twilio error 21610: replied STOP to our number": "provider_refusal",
    "replied 'stop' by SMS": "provider_keyword",
    "replied 'baja' by SMS": "keyword",
    "replied 'stop 🙏' by SMS": "keyword",  # Twilio acts on a single word only
    "asked by SMS to stop": "words",
    "asked from +51911000000 to stop, matched by Ana": "matched",
    "ana@mitienda.pe: llamó a la tienda": "staff",
}


def test_existing_opt_outs_get_the_source_their_wording_was_written_by(blank: Engine) -> None:
    schema.upgrade(blank, "0012")
    customers = Base.metadata.tables["customers"]
    with blank.begin() as connection:
        for n, via in enumerate(WORDINGS):
            values = {"name": f"C{n}", "created_at": DAY, "sms_opt_out_at": DAY}
            connection.execute(insert(customers).values(values | {"sms_opt_out_via": via}))
        connection.execute(
            insert(customers).values(
                name="Email",
                created_at=DAY,
                email_opt_out_at=DAY,
                email_opt_out_via="one-click unsubscribe link",
            )
        )
        connection.execute(insert(customers).values(name="Nobody", created_at=DAY))
    schema.upgrade(blank, "0013")
    with blank.connect() as connection:
        rows = connection.execute(
            select(
                customers.c.sms_opt_out_via,
                customers.c.sms_opt_out_source,
                customers.c.email_opt_out_source,
            ).order_by(customers.c.id)
        ).all()
    assert [(via, source) for via, source, _ in rows[: len(WORDINGS)]] == list(WORDINGS.items())
    assert rows[-2][1:] == (None, "unsubscribe_link")
    assert rows[-1][1:] == (None, None)


def rosa(session: Session) -> Customer:
    customer = Customer(name="Rosa", phone="+51987654321", created_at=NOW)
    session.add(customer)
    session.flush()
    return customer


@pytest.mark.parametrize(
    "body, source",
    [
        ("STOP", ConsentSource.PROVIDER_KEYWORD),
        ("STOP 🙏", ConsentSource.KEYWORD),
        ("BAJA", ConsentSource.KEYWORD),
        ("ya no me manden mensajes por favor", ConsentSource.WORDS),
    ],
)
def test_a_reply_stores_where_the_opt_out_came_from(
    session: Session, config: Config, body: str, source: ConsentSource
) -> None:
    customer = rosa(session)
    sms = InboundMessage("SM" + "1" * 32, "+51987654321", "+15005550006", body)
    act_on_consent(session, sms, config=config, now=NOW)
    assert (customer.sms_opt_out_at, customer.sms_opt_out_source) == (NOW, source)


def test_twilio_s_own_stop_cannot_be_lifted_by_an_alta(session: Session, config: Config) -> None:
    """Twilio blocks the number until START: an ALTA is answered, not obeyed, and the reason
    is read from the source, whatever the wording says."""
    twilio = config.replace(
        sms={"transport": "twilio"},
        twilio={
            "account_sid": "AC" + "0" * 32,
            "auth_token": "t" * 32,
            "from_number": "+15005550006",
        },
    )
    customer = rosa(session)
    opt_out(
        session,
        customer,
        channel=Channel.SMS,
        source=ConsentSource.PROVIDER_REFUSAL,
        via="an opt-out in any words",
        now=NOW,
        actor="test",
    )
    alta = InboundMessage("SM" + "2" * 32, "+51987654321", "+15005550006", "ALTA")
    act_on_consent(session, alta, config=twilio, now=NOW)
    assert customer.sms_opt_out_at == NOW  # still out: Twilio would refuse what we send
    assert customer.sms_opt_out_source is ConsentSource.PROVIDER_REFUSAL
    elsewhere = InboundMessage("SM" + "3" * 32, "+51987654321", "+15005550006", "ALTA")
    act_on_consent(session, elsewhere, config=config, now=NOW)  # the outbox: nothing blocks it
    assert customer.sms_opt_out_at is None
    opt_out(
        session,
        customer,
        channel=Channel.SMS,
        source=ConsentSource.PROVIDER_KEYWORD,
        via="replied 'stop' by SMS",
        now=NOW,
        actor="test",
    )
    assert opt_in(
        session, customer, channel=Channel.SMS, via="START", now=NOW, actor="customer"
    )  # START itself reaches us as an opt-in
    session.flush()
    session.refresh(customer)
    assert customer.sms_opt_out_at is None and customer.sms_opt_out_source is None

"""The outbox page, and simulating a customer's reply without Twilio."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import CaseStatus, Channel
from scheduler.models import Case, Customer, Message
from scheduler.sending import sent_texts
from scheduler.sending.sales import record_sale
from tests.browsing import submit, use_config
from tests.factories import NOW, inbound_sms, outbound_sms, sale_input


@pytest.fixture
def rosa(session: Session, config: Config) -> Iterator[Customer]:
    install_defaults(session, NOW)
    sale, _new = record_sale(session, sale_input(), config=config, now=NOW, actor="test")
    session.commit()
    with freeze_time(NOW):
        yield session.get_one(Customer, sale.customer_id)


def _sent(
    customer: Customer | None,
    body: str,
    at: datetime,
    *,
    channel: Channel = Channel.SMS,
    status: str = "delivered",
    to: str = "+51987654321",
) -> Message:
    customer_id = customer.id if customer else None
    return outbound_sms(body, at, to=to, customer_id=customer_id, channel=channel, status=status)


def test_the_outbox_lists_what_went_out_escaped_newest_first(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    session.add_all(
        [
            _sent(rosa, "Hola <b>Rosa</b>", NOW),
            _sent(rosa, "Gracias por tu compra", NOW - timedelta(hours=1), status="failed"),
            inbound_sms("la lavadora no prende", NOW, customer_id=rosa.id),  # not ours
        ]
    )
    session.commit()
    page = staff_client.get("/outbox").get_data(as_text=True)
    assert "Hola &lt;b&gt;Rosa&lt;/b&gt;" in page and "Rosa Quispe" in page
    assert page.index("Hola &lt;b&gt;") < page.index("Gracias por tu compra")
    assert "la lavadora no prende" not in page and "failed" in page


WORDS = ("uno", "dos", "tres", "cuatro", "cinco", "seis", "siete")
ROSAS = [f"mensaje {word}" for word in WORDS]


@pytest.fixture
def many(rosa: Customer, session: Session) -> dict[str, Customer]:
    """Rosa's seven SMS an hour apart, the newest first (the fourth failed), an email to Juan,
    and a WhatsApp to Rosa two days earlier."""
    juan = Customer(name="Juan Perez", email="juan@example.pe", created_at=NOW)
    session.add(juan)
    session.flush()
    for hour, word in enumerate(WORDS):
        status = "failed" if hour == 3 else "delivered"
        session.add(_sent(rosa, f"mensaje {word}", NOW - timedelta(hours=hour), status=status))
    session.add(
        _sent(
            juan, "Tu garantía", NOW, channel=Channel.EMAIL, to="juan@example.pe", status="stored"
        )
    )
    session.add(
        _sent(
            rosa,
            "Hola por WhatsApp",
            NOW - timedelta(days=2),
            channel=Channel.WHATSAPP,
            to="whatsapp:+51987654321",
        )
    )
    session.commit()
    return {"rosa": rosa, "juan": juan}


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("channel=email", ["Tu garantía"]),
        ("channel=whatsapp", ["Hola por WhatsApp"]),
        ("status=failed", ["mensaje cuatro"]),
        ("q=garantía", ["Tu garantía"]),
        ("q=juan", ["Tu garantía"]),  # the customer's name
        ("q=juan%40example", ["Tu garantía"]),  # the customer's email
        ("q=987654321+whatsapp", ["Hola por WhatsApp"]),  # Rosa's phone, and a word
        ("q=seis+mensaje", ["mensaje seis"]),
        ("q=%25", []),  # a character, not a wildcard
        ("from=2026-11-21&to=2026-11-21", ["Hola por WhatsApp"]),
        ("channel=sms&status=delivered&q=cinco", ["mensaje cinco"]),
    ],
)
def test_the_outbox_filters_by_channel_status_days_and_words(
    many: dict[str, Customer],
    staff_client: FlaskClient,
    session: Session,
    query: str,
    shown: list[str],
) -> None:
    """The same whether the texts still wait to be copied for the search or are copied
    (PostgreSQL: `sent_texts`)."""
    every = ["Tu garantía", "Hola por WhatsApp", *ROSAS]
    for _copied in (False, True):
        page = staff_client.get(f"/outbox?{query}").get_data(as_text=True)
        assert [text for text in every if f"{text}</td>" in page] == shown
        sent_texts.copy_waiting(session)
        session.commit()


def test_the_messages_of_one_customer_a_page_at_a_time(
    many: dict[str, Customer],
    staff_client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("scheduler.sending.sent.PAGE", 3)
    seen: list[str] = []
    url = f"/outbox?customer={many['rosa'].id}"
    for _page in range(5):
        page = staff_client.get(url).get_data(as_text=True)
        assert "Only the messages to Rosa Quispe." in page
        seen += re.findall(r"(mensaje \w+|Hola por WhatsApp)</td>", page)
        following = re.search(r'href="(/outbox\?after=[^"#]+)#sent" rel="next"', page)
        if following is None:
            break
        url = following.group(1).replace("&amp;", "&")
    assert seen == [*ROSAS, "Hola por WhatsApp"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("channel=fax", "Channel:"),
        ("status=lost", "Status:"),
        ("customer=rosa", "Customer:"),
        ("customer=99999999999", "Customer:"),
        ("from=2026-13-01", "From:"),
        ("from=2026-11-23&to=2026-11-01", "From:"),
        ("q=" + "x" * 201, "Search:"),
        ("q=%00", "Search:"),
        ("after=yesterday", "Page:"),
    ],
)
def test_a_filter_that_cannot_be_read_is_a_400_naming_the_field(
    many: dict[str, Customer], staff_client: FlaskClient, query: str, field: str
) -> None:
    response = staff_client.get(f"/outbox?{query}")
    assert response.status_code == 400
    assert field in response.get_data(as_text=True)


def test_a_simulated_complaint_opens_a_case_at_once(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    page = staff_client.get("/outbox").get_data(as_text=True)
    assert "Simulate a customer" in page and 'value="+51987654321"' in page
    answer = submit(
        staff_client,
        "/outbox/simulate",
        {"sender": "987 654 321", "body": "la lavadora no prende, pesimo"},
        page="/outbox",
    )
    assert answer.status_code == 302
    case = session.scalars(select(Case)).one()
    assert (case.customer_id, case.status, case.reason) == (rosa.id, CaseStatus.OPEN, "objection")
    inbox = staff_client.get("/inbox").get_data(as_text=True)
    assert "Rosa Quispe" in inbox and "la lavadora no prende, pesimo" in inbox


def test_a_simulated_stop_opts_out(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    submit(
        staff_client, "/outbox/simulate", {"sender": "+51987654321", "body": "BAJA"}, page="/outbox"
    )
    session.refresh(rosa)
    assert rosa.sms_opt_out_at == NOW and rosa.sms_opt_out_via == "replied 'baja' by SMS"


def test_no_simulation_when_sms_really_go_out(app: Flask, staff_client: FlaskClient) -> None:
    use_config(
        app,
        sms={"transport": "twilio"},
        twilio={"account_sid": "AC" + "0" * 32, "auth_token": "t", "from_number": "+15005550006"},
    )
    assert "Simulate" not in staff_client.get("/outbox").get_data(as_text=True)
    refused = submit(
        staff_client, "/outbox/simulate", {"sender": "+51987654321", "body": "hola"}, page="/inbox"
    )
    assert refused.status_code == 409


def test_a_word_naming_many_customers_is_found_through_the_join(
    many: dict[str, Customer], staff_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past NAMED_MOST customers a word names, their messages are found by joining them, not
    by their ids: the same messages either way."""
    monkeypatch.setattr("scheduler.sending.sent.NAMED_MOST", 0)
    page = staff_client.get("/outbox?q=juan").get_data(as_text=True)
    assert "Tu garantía</td>" in page and "mensaje uno</td>" not in page

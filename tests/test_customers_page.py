"""Customers and sales in the admin: search, timeline, consent, a sale by hand, cancelling."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Channel, Direction, FollowUpStatus, SaleStatus
from scheduler.models import AuditEntry, Customer, FollowUp, Message, Sale, User
from scheduler.sending.sales import record_sale
from tests.browsing import fresh, submit
from tests.factories import NOW, sale_input


@pytest.fixture
def rosa(session: Session, config: Config) -> Iterator[Customer]:
    install_defaults(session, NOW)
    sale, _new = record_sale(
        session, sale_input(email="rosa@example.pe"), config=config, now=NOW, actor="test"
    )
    record_sale(
        session,
        sale_input("S-2", customer_name="Juan Perez", phone="+51911222333"),
        config=config,
        now=NOW,
        actor="test",
    )
    session.commit()
    with freeze_time(NOW):
        yield session.get_one(Customer, sale.customer_id)


@pytest.mark.parametrize(
    "query",
    ["rosa", "QUISPE", "987 654", "rosa@example", "", "quispe rosa", "Rosa 987654321", "S-1"],
)
def test_search_finds_by_name_phone_email_or_sale_each_word_anywhere(
    rosa: Customer, staff_client: FlaskClient, query: str
) -> None:
    page = staff_client.get(f"/customers?q={query}").get_data(as_text=True)
    assert "Rosa Quispe" in page
    assert ("Juan Perez" in page) is (query == "")


def test_a_search_ignores_case_beyond_ascii(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    """SQLite's own lower() knows ASCII alone: "peña" missed "PEÑA" there, not on PostgreSQL."""
    rosa.name = "ROSA PEÑA ÁLVAREZ"
    session.commit()
    page = staff_client.get("/customers?q=peña álvarez").get_data(as_text=True)
    assert "ROSA PEÑA ÁLVAREZ" in page


@pytest.mark.parametrize("query", ["rosa perez", "S-", "%", "rosa_", "S-3"])
def test_a_search_finds_nobody_unless_every_word_is_found(
    rosa: Customer, staff_client: FlaskClient, query: str
) -> None:
    """Each word must be somewhere; a sale is found by its whole number; % and _ are
    characters, not wildcards."""
    page = staff_client.get(f"/customers?q={query}").get_data(as_text=True)
    assert "Rosa Quispe" not in page and "Juan Perez" not in page


def test_customer_page_tells_the_whole_story_in_order(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    session.add(
        Message(
            customer_id=rosa.id,
            direction=Direction.INBOUND,
            channel=Channel.SMS,
            from_address=rosa.phone or "",
            to_address="x",
            body="<i>gracias</i>",
            status="received",
            created_at=NOW,
        )
    )
    session.commit()
    page = staff_client.get(f"/customers/{rosa.id}").get_data(as_text=True)
    sale, first_step, reply = page.index("Sale S-1"), page.index("thanks"), page.index("gracias")
    assert sale < reply < first_step  # the reply now, the day-1 thanks tomorrow
    assert "&lt;i&gt;gracias&lt;/i&gt;" in page and "<i>gracias" not in page
    assert staff_client.get("/customers/999").status_code == 404


def test_opting_out_by_hand_keeps_who_and_why(
    rosa: Customer, staff_client: FlaskClient, staff: User, session: Session
) -> None:
    answer = submit(
        staff_client,
        f"/customers/{rosa.id}/consent",
        {"channel": "sms", "action": "out", "reason": "lo pidio por telefono"},
    )
    assert answer.status_code == 302
    fresh(session)
    customer = session.get_one(Customer, rosa.id)
    assert customer.sms_opt_out_at == NOW
    assert customer.sms_opt_out_via == "staff@example.com: lo pidio por telefono"
    pending_sms = session.scalars(
        select(FollowUp).where(FollowUp.customer_id == rosa.id, FollowUp.channel == Channel.SMS)
    ).all()
    assert pending_sms and {row.status for row in pending_sms} == {FollowUpStatus.SKIPPED}
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "customer.opt_out")).one()
    assert entry.actor == f"user:{staff.id}"
    page = staff_client.get(f"/customers/{rosa.id}").get_data(as_text=True)
    assert "pending follow-ups skipped" in page and "lo pidio por telefono" in page
    submit(
        staff_client,
        f"/customers/{rosa.id}/consent",
        {"channel": "sms", "action": "in", "reason": "volvio a aceptar"},
    )
    fresh(session)
    assert session.get_one(Customer, rosa.id).sms_opt_out_at is None


def test_a_whatsapp_yes_by_hand_is_kept_with_who_and_how(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    page = staff_client.get(f"/customers/{rosa.id}").get_data(as_text=True)
    assert "never said yes: nothing goes by WhatsApp" in page
    yes = {"channel": "whatsapp", "action": "in", "reason": "dijo que si en la tienda"}
    assert submit(staff_client, f"/customers/{rosa.id}/consent", yes).status_code == 302
    fresh(session)
    customer = session.get_one(Customer, rosa.id)
    assert customer.whatsapp_opt_in and customer.whatsapp_opt_in_at == NOW
    assert customer.whatsapp_opt_in_via == "staff@example.com: dijo que si en la tienda"
    page = staff_client.get(f"/customers/{rosa.id}").get_data(as_text=True)
    assert "Recorded: the customer said yes to WhatsApp." in page and "said yes" in page


def test_consent_needs_a_reason(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    submit(staff_client, f"/customers/{rosa.id}/consent", {"channel": "sms", "action": "out"})
    fresh(session)
    assert session.get_one(Customer, rosa.id).sms_opt_out_at is None
    page = staff_client.get(f"/customers/{rosa.id}").get_data(as_text=True)
    assert "say why (the customer&#39;s words, or how they asked)" in page


def test_consent_is_a_choice_never_a_preticked_opt_out(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    page = staff_client.get(f"/customers/{rosa.id}").get_data(as_text=True)
    actions = re.findall(r'<input[^>]*name="action"[^>]*>', page)
    assert len(actions) == 2 and not any("checked" in box for box in actions)
    submit(staff_client, f"/customers/{rosa.id}/consent", {"channel": "sms", "reason": "x"})
    fresh(session)
    assert session.get_one(Customer, rosa.id).sms_opt_out_at is None
    page = staff_client.get(f"/customers/{rosa.id}").get_data(as_text=True)
    assert "Choose whether the customer opts out or back in" in page


def test_forms_offer_only_the_channels_a_customer_has(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    juan = session.scalars(select(Customer).where(Customer.name == "Juan Perez")).one()
    page = staff_client.get(f"/customers/{juan.id}").get_data(as_text=True)
    assert 'value="sms"' in page and 'value="email"' not in page
    page = staff_client.get(f"/customers/{rosa.id}").get_data(as_text=True)
    assert 'value="sms"' in page and 'value="email"' in page


def test_a_sale_by_hand_plans_its_follow_ups(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    form = {
        "external_id": "B-77",
        "sold_at": "2026-11-23T09:30",
        "customer_name": "Ana Diaz",
        "phone": "999 888 777",
        "product_name": "Cocina",
        "amount": "899.90",
        "currency": "PEN",
        "whatsapp_opt_in": "yes",  # the box ticked
    }
    answer = submit(staff_client, "/sales/new", form)
    assert answer.status_code == 302
    sale = session.scalars(select(Sale).where(Sale.external_id == "B-77")).one()
    assert sale.sold_at.isoformat() == "2026-11-23T14:30:00+00:00"  # 09:30 in Lima
    assert session.get_one(Customer, sale.customer_id).whatsapp_opt_in
    planned = session.scalars(select(FollowUp).where(FollowUp.sale_id == sale.id)).all()
    page = staff_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert planned and f"Sale B-77 recorded: {len(planned)} follow-ups planned." in page
    again = submit(staff_client, "/sales/new", form)
    assert "was already recorded" in staff_client.get(again.headers["Location"]).get_data(
        as_text=True
    )


def test_a_bad_sale_says_what_is_wrong_and_keeps_what_was_typed(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    form = {
        "external_id": "B-78",
        "sold_at": "ayer",
        "customer_name": "Ana Diaz",
        "phone": "12",
        "amount": "mucho",
    }
    answer = submit(staff_client, "/sales/new", form)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "Nothing was saved" in page and 'value="Ana Diaz"' in page
    assert page.count('aria-invalid="true"') == 3  # sold_at, phone, amount
    assert session.scalars(select(Sale).where(Sale.external_id == "B-78")).all() == []


def test_cancelling_a_sale_cancels_its_pending_follow_ups(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    sale = session.scalars(select(Sale).where(Sale.customer_id == rosa.id)).one()
    submit(staff_client, f"/sales/{sale.id}/cancel", {"reason": "devolvio el producto"})
    fresh(session)
    sale = session.get_one(Sale, sale.id)
    assert sale.status is SaleStatus.CANCELLED
    rows = session.scalars(select(FollowUp).where(FollowUp.sale_id == sale.id)).all()
    assert {row.status for row in rows} == {FollowUpStatus.CANCELLED}
    assert rows[0].status_reason == "staff@example.com: devolvio el producto"

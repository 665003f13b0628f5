"""The one-click unsubscribe link: a GET only asks, a POST unsubscribes, once."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import ConsentSource
from scheduler.models import AuditEntry, Customer, FollowUp
from scheduler.sending.sales import record_sale
from tests.factories import NOW, sale_input

TOKEN = "k" * 43


def customer_with_token(session: Session, config: Config) -> Customer:
    install_defaults(session, NOW)
    sale, _ = record_sale(
        session,
        sale_input(phone=None, email="rosa@example.pe"),  # her follow-ups go by email
        config=config,
        now=NOW,
        actor="test",
    )
    sale.customer.unsubscribe_token = TOKEN
    session.commit()
    return sale.customer


def opt_outs(session: Session) -> list[AuditEntry]:
    session.rollback()  # see what the app committed
    query = select(AuditEntry).where(AuditEntry.action == "customer.opt_out")
    return list(session.scalars(query))


def test_get_asks_for_confirmation_and_changes_nothing(
    client: FlaskClient, session: Session, config: Config
) -> None:
    customer = customer_with_token(session, config)
    response = client.get(f"/unsubscribe/{TOKEN}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<form method="post" action="/unsubscribe/{TOKEN}">' in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert "<script" not in page
    assert "¿Dejar de recibir nuestros correos?" in page and "Stop receiving our emails?" in page
    assert response.headers["Cache-Control"] == "no-store"
    assert opt_outs(session) == []
    session.refresh(customer)
    assert customer.email_opt_out_at is None


def test_one_click_post_unsubscribes_from_email_once(
    client: FlaskClient, session: Session, config: Config
) -> None:
    customer = customer_with_token(session, config)
    with freeze_time(NOW):
        response = client.post(
            f"/unsubscribe/{TOKEN}",
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "no recibirás más correos" in page and "you will receive no more emails" in page
    [entry] = opt_outs(session)
    assert (entry.actor, entry.entity_id) == ("customer", customer.id)
    assert entry.details == {
        "channel": "email",
        "source": "unsubscribe_link",
        "via": "one-click unsubscribe link",
        "follow_ups_skipped": 4,
        "messages_withdrawn": 0,
    }
    session.refresh(customer)
    assert customer.email_opt_out_at == NOW
    assert customer.email_opt_out_via == "one-click unsubscribe link"
    assert customer.email_opt_out_source is ConsentSource.UNSUBSCRIBE_LINK
    assert customer.sms_opt_out_at is None  # only email: SMS consent is separate
    skipped = session.scalars(select(FollowUp.status_reason)).all()  # at once, not at send time
    assert skipped == ["the customer opted out (one-click unsubscribe link)"] * 4

    with freeze_time(NOW + timedelta(days=3)):
        again = client.post(f"/unsubscribe/{TOKEN}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert len(opt_outs(session)) == 1
    session.refresh(customer)
    assert customer.email_opt_out_at == NOW  # the first opt-out stands


def test_an_unknown_token_is_404_and_changes_nothing(
    client: FlaskClient, session: Session, config: Config
) -> None:
    customer_with_token(session, config)
    for response in (
        client.get("/unsubscribe/not-a-token"),
        client.post("/unsubscribe/not-a-token", data={"List-Unsubscribe": "One-Click"}),
    ):
        assert response.status_code == 404
        assert "Enlace no válido" in response.get_data(as_text=True)
    assert opt_outs(session) == []

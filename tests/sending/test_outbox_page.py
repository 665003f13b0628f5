"""The outbox page, and simulating a customer's reply without Twilio."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import CaseStatus, Channel
from scheduler.models import Case, Customer, OutboxEntry
from scheduler.sending.sales import record_sale
from tests.browsing import submit, use_config
from tests.factories import NOW, sale_input


@pytest.fixture
def rosa(session: Session, config: Config) -> Iterator[Customer]:
    install_defaults(session, NOW)
    sale, _new = record_sale(session, sale_input(), config=config, now=NOW, actor="test")
    session.commit()
    with freeze_time(NOW):
        yield session.get_one(Customer, sale.customer_id)


def test_outbox_lists_what_was_kept_escaped(staff_client: FlaskClient, session: Session) -> None:
    session.add(
        OutboxEntry(
            reference="follow-up:1",
            channel=Channel.SMS,
            to_address="+51987654321",
            from_address="outbox-sms",
            body="Hola <b>Rosa</b>",
            created_at=NOW,
        )
    )
    session.commit()
    page = staff_client.get("/outbox").get_data(as_text=True)
    assert "+51987654321" in page and "Hola &lt;b&gt;Rosa&lt;/b&gt;" in page


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

"""Replies from numbers that are nobody's: staff link them to a customer, make a customer of the
sender, or dismiss them with a reason; the reply simulator takes only real numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.lifecycle import CaseStatus, Channel, Direction, MessageStatus
from scheduler.models import AuditEntry, Case, Customer, Message
from tests.browsing import fresh, submit

STRANGER = "+51911222333"


def _stranger_writes(session: Session, body: str) -> Message:
    message = Message(
        direction=Direction.INBOUND,
        channel=Channel.SMS,
        from_address=STRANGER,
        to_address="+15005550006",
        body=body,
        status="received",
        label="objection",
        needs_human=True,
        created_at=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
    )
    session.add(message)
    session.commit()
    return message


@pytest.fixture
def rosa(session: Session) -> Customer:
    customer = Customer(name="Rosa Quispe", phone="+51987654321", created_at=datetime.now(UTC))
    session.add(customer)
    session.commit()
    return customer


def _audit(session: Session, action: str) -> AuditEntry:
    return session.scalars(select(AuditEntry).where(AuditEntry.action == action)).one()


def test_a_complaint_linked_to_its_customer_opens_their_case(
    staff_client: FlaskClient, session: Session, rosa: Customer
) -> None:
    message = _stranger_writes(session, "la lavadora no prende, escribo del cel de mi hijo")
    page = staff_client.get(f"/replies/{message.id}?q=rosa").get_data(as_text=True)
    assert "Rosa Quispe" in page and "Link to this customer" in page
    answer = submit(staff_client, f"/replies/{message.id}/link", {"customer_id": rosa.id})
    assert answer.status_code == 302
    fresh(session)
    linked = session.get_one(Message, message.id)
    case = session.scalars(select(Case).where(Case.customer_id == rosa.id)).one()
    assert (linked.customer_id, linked.case_id, case.status) == (rosa.id, case.id, CaseStatus.OPEN)
    assert answer.headers["Location"].endswith(f"/cases/{case.id}")
    assert _audit(session, "reply.link").details["customer_id"] == rosa.id
    tab = staff_client.get("/inbox?tab=unmatched").get_data(as_text=True)
    assert "escribo del cel de mi hijo" not in tab


def test_a_stop_linked_to_its_customer_opts_them_out(
    staff_client: FlaskClient, session: Session, rosa: Customer
) -> None:
    message = _stranger_writes(session, "STOP")
    answer = submit(staff_client, f"/replies/{message.id}/link", {"customer_id": rosa.id})
    assert answer.status_code == 302
    fresh(session)
    customer = session.get_one(Customer, rosa.id)
    assert customer.sms_opt_out_at is not None and STRANGER in (customer.sms_opt_out_via or "")


def test_a_new_customer_from_a_reply_with_a_case_opened_by_hand(
    staff_client: FlaskClient, session: Session
) -> None:
    message = _stranger_writes(session, "gracias por todo")
    form = {"name": "Luis Rojas", "open_case": "y"}
    answer = submit(staff_client, f"/replies/{message.id}/customer", form)
    assert answer.status_code == 302
    fresh(session)
    luis = session.scalars(select(Customer).where(Customer.phone == STRANGER)).one()
    case = session.scalars(select(Case).where(Case.customer_id == luis.id)).one()
    assert luis.name == "Luis Rojas" and session.get_one(Message, message.id).case_id == case.id
    assert _audit(session, "customer.create").details["from_message"] == message.id


def test_a_reply_whose_number_a_customer_has_is_linked_not_duplicated(
    staff_client: FlaskClient, session: Session
) -> None:
    message = _stranger_writes(session, "hola")
    session.add(Customer(name="Ya Existe", phone=STRANGER, created_at=datetime.now(UTC)))
    session.commit()
    answer = submit(staff_client, f"/replies/{message.id}/customer", {"name": "Otra Vez"})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "a customer already has this address" in page and 'value="Otra Vez"' in page
    fresh(session)
    assert len(session.scalars(select(Customer)).all()) == 1


def test_dismissing_needs_a_reason_and_is_recorded(
    staff_client: FlaskClient, session: Session
) -> None:
    message = _stranger_writes(session, "GANE UN PREMIO haga clic")
    refused = submit(staff_client, f"/replies/{message.id}/dismiss", {"reason": "  "})
    assert refused.status_code == 422
    done = submit(staff_client, f"/replies/{message.id}/dismiss", {"reason": "publicidad"})
    assert done.status_code == 302
    fresh(session)
    assert session.get_one(Message, message.id).status == MessageStatus.DISMISSED
    assert _audit(session, "reply.dismiss").details["reason"] == "publicidad"
    assert "GANE UN PREMIO" not in staff_client.get("/inbox?tab=unmatched").get_data(as_text=True)
    again = submit(staff_client, f"/replies/{message.id}/customer", {"name": "Spam"})
    assert again.status_code == 422
    assert "someone already dealt with this reply" in again.get_data(as_text=True)


def test_acting_on_a_reply_that_does_not_exist_is_404(staff_client: FlaskClient) -> None:
    assert staff_client.get("/replies/999999").status_code == 404
    assert submit(staff_client, "/replies/999999/dismiss", {"reason": "x"}).status_code == 404


def test_the_simulator_refuses_a_number_it_cannot_read(
    owner_client: FlaskClient, session: Session
) -> None:
    answer = submit(
        owner_client, "/outbox/simulate", {"sender": "12", "body": "hola"}, page="/outbox"
    )
    assert answer.status_code == 302
    page = owner_client.get("/outbox").get_data(as_text=True)
    assert "is not a valid phone number" in page
    assert session.scalars(select(Message)).all() == []


def test_a_customer_id_beyond_the_database_is_refused_not_a_crash(
    staff_client: FlaskClient, session: Session
) -> None:
    message = _stranger_writes(session, "hola")
    for bad in ("2147483648", "9223372036854775808", "0", "-3", "abc"):
        answer = submit(staff_client, f"/replies/{message.id}/link", {"customer_id": bad})
        assert answer.status_code == 422, bad


def test_a_reply_the_worker_has_not_read_is_not_offered_yet(
    staff_client: FlaskClient, session: Session, rosa: Customer
) -> None:
    message = _stranger_writes(session, "recien llegado")
    message.needs_human = None  # stored by the webhook a second ago
    session.commit()
    assert "recien llegado" not in staff_client.get("/inbox?tab=unmatched").get_data(as_text=True)
    answer = submit(staff_client, f"/replies/{message.id}/link", {"customer_id": rosa.id})
    assert answer.status_code == 422 and "has not read this reply" in answer.get_data(as_text=True)


def test_a_stop_that_is_also_a_complaint_opts_out_and_reaches_a_person(
    staff_client: FlaskClient, session: Session, rosa: Customer
) -> None:
    body = "ya no me manden mensajes, la cocina llegó rota y nadie me responde"
    message = _stranger_writes(session, body)
    submit(staff_client, f"/replies/{message.id}/link", {"customer_id": rosa.id})
    fresh(session)
    assert session.get_one(Customer, rosa.id).sms_opt_out_at is not None
    assert session.scalars(select(Case).where(Case.customer_id == rosa.id)).one()

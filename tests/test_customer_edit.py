"""A customer's contact details and language changed from their page: who (the person signed
in) and why (asked every time) go to the audit log; bad input is refused field by field and
nothing is saved."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.models import AuditEntry, Customer
from tests.browsing import fresh, submit
from tests.factories import NOW
from tests.test_customers_page import rosa

__all__ = ["rosa"]
ROSA = {
    "name": "Rosa Quispe",
    "phone": "+51987654321",
    "email": "rosa@example.pe",
    "locale": "",
    "timezone": "",
}


def _edit(client: FlaskClient, customer: Customer, **changes: str) -> TestResponse:
    page = f"/customers/{customer.id}/edit"
    return submit(client, page, ROSA | {"reason": "llamó para avisar"} | changes, page=page)


def test_a_new_phone_needs_a_new_yes_to_whatsapp(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    rosa.whatsapp_opt_in_at, rosa.whatsapp_opt_in_via = NOW, "said yes in the shop"
    session.commit()
    assert _edit(staff_client, rosa, email="rosa@example.pe").status_code == 302
    fresh(session)
    assert rosa.whatsapp_opt_in_at is not None  # the same phone: the yes stands
    assert _edit(staff_client, rosa, phone="+51999888777").status_code == 302
    fresh(session)
    yes = select(Customer.whatsapp_opt_in_at, Customer.whatsapp_opt_in_via)
    assert session.execute(yes.where(Customer.id == rosa.id)).one() == (None, None)


def test_the_form_shows_the_details_and_saves_a_change_with_who_and_why(
    rosa: Customer, staff_client: FlaskClient, session: Session
) -> None:
    form = staff_client.get(f"/customers/{rosa.id}/edit").get_data(as_text=True)
    assert 'value="+51987654321"' in form and 'value="rosa@example.pe"' in form
    response = _edit(
        staff_client,
        rosa,
        name="Rosa Quispe Mamani",
        phone="999 888 777",  # local to the business's country (Peru)
        locale="en",
        timezone="America/New_York",
    )
    assert response.status_code == 302
    fresh(session)
    assert (rosa.name, rosa.phone, rosa.email, rosa.locale, rosa.timezone) == (
        "Rosa Quispe Mamani",
        "+51999888777",
        "rosa@example.pe",
        "en",
        "America/New_York",
    )
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "customer.edit")).one()
    assert entry.entity_id == rosa.id and entry.actor.startswith("user:")
    assert entry.details == {
        "fields": ["locale", "name", "phone", "timezone"],
        "by": "staff@example.com",
        "reason": "llamó para avisar",
    }


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"reason": "  "}, "reason", "say why"),
        ({"phone": "12"}, "phone", "not a valid phone number"),
        ({"email": "rosa@"}, "email", "email"),
        ({"locale": "fr"}, "locale", "not supported"),
        ({"timezone": "Lima"}, "timezone", "time zone"),
        ({"name": ""}, "name", "required"),
        ({"phone": "+51911222333"}, "phone", "another customer has it"),
        ({"email": "JUAN@x.pe"}, "email", "another customer has it"),
        ({"phone": "", "email": ""}, "email", "a phone or an email is required"),
    ],
)
def test_a_change_that_cannot_be_made_saves_nothing_and_says_which_field(
    rosa: Customer,
    staff_client: FlaskClient,
    session: Session,
    changes: dict[str, str],
    field: str,
    says: str,
) -> None:
    juan = session.scalars(select(Customer).where(Customer.name == "Juan Perez")).one()
    juan.email = "juan@x.pe"
    session.commit()
    response = _edit(staff_client, rosa, **({"name": "Rosa Q."} | changes))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    marked = page.split(f'name="{field}"', 1)[1].split("</label>", 1)[0]
    assert says in marked
    assert 'value="Rosa Q."' in page or "name" in changes  # what was typed stays in the form
    fresh(session)
    assert (rosa.name, rosa.phone, rosa.email) == ("Rosa Quispe", "+51987654321", "rosa@example.pe")
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.edit")) is None

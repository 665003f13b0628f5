"""`GET /api/customers?phone=&email=` and `PATCH /api/customers/{id}`: found as everywhere
(a phone read in the business's country, an email in any case), changed by the same rules as
elsewhere, consent with who and why, every change audited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.config import Config
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import AuditEntry, Customer, FollowUp
from tests.api_calls import bearer, call, errors_of, shop
from tests.factories import NOW


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def patch(client: FlaskClient, token: str, customer_id: int, body: Any) -> TestResponse:
    return call(client, "PATCH", f"/api/customers/{customer_id}", token, json=body)


def test_a_customer_is_found_by_phone_as_typed_or_by_email_in_any_case(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=3)
    rosa = session.get_one(Customer, 2)
    rosa.email = "rosa@example.pe"
    session.commit()
    for query in ("phone=987 654 321", "phone=%2B51987654321", "email=ROSA@Example.PE"):
        found = client.get(f"/api/customers?{query}", headers=bearer(token)).get_json()
        assert [c["id"] for c in found["customers"]] == [2], query
        assert found["next_cursor"] is None
    both = "/api/customers?phone=987654321&email=other@example.pe"
    assert client.get(both, headers=bearer(token)).get_json()["customers"] == []
    everyone = client.get("/api/customers", headers=bearer(token)).get_json()["customers"]
    assert [c["id"] for c in everyone] == [1, 2, 3]
    assert everyone[1]["phone"] == "+51987654321" and "timeline" not in everyone[1]
    bad = client.get("/api/customers?phone=12&email=not-an-email", headers=bearer(token))
    assert bad.status_code == 400 and list(errors_of(bad)) == ["phone", "email"]


def test_details_change_and_the_answer_is_the_customer_as_get_shows_it(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=1)
    change = {"name": " Rosa Q. ", "email": "Rosa@Example.PE", "locale": "en"}
    answer = patch(client, token, 1, change | {"timezone": "Europe/Madrid"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["name"], body["email"], body["locale"], body["timezone"]) == (
        "Rosa Q.",
        "rosa@example.pe",
        "en",
        "Europe/Madrid",
    )
    assert body == call(client, "GET", "/api/customers/1", token).get_json()
    back = patch(client, token, 1, {"locale": None, "timezone": ""}).get_json()
    assert (back["locale"], back["timezone"]) == (None, None)  # the business's defaults
    session.rollback()
    edits = session.scalars(select(AuditEntry).where(AuditEntry.action == "customer.edit")).all()
    assert [e.details["fields"] for e in edits] == [
        ["email", "locale", "name", "timezone"],
        ["locale", "timezone"],
    ]
    assert {e.actor for e in edits} == {"api:tienda-online"}


def test_opting_out_needs_who_and_why_and_skips_pending_follow_ups(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=1)
    refused = patch(client, token, 1, {"sms_opt_out": True})
    assert refused.status_code == 422 and list(errors_of(refused)) == ["by", "reason"]
    answer = patch(client, token, 1, {"sms_opt_out": True, "by": "Ana (tienda)", "reason": "llamó"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["sms_opt_out"] is True and body["sms_opt_out_via"] == "Ana (tienda): llamó"
    session.rollback()
    statuses = set(session.scalars(select(FollowUp.status).where(FollowUp.channel == "sms")))
    assert statuses == {FollowUpStatus.SKIPPED}
    again = {"sms_opt_out": False, "by": "Ana", "reason": "volvió a aceptar"}
    assert patch(client, token, 1, again).get_json()["sms_opt_out"] is False
    session.rollback()
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.action.like("customer.opt%"))
    )
    assert list(actions) == ["customer.opt_out", "customer.opt_in"]


def test_whatsapp_consent_a_yes_a_no_and_a_contradiction(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=1)
    who = {"by": "Ana", "reason": "lo pidió en tienda"}
    never_asked = patch(client, token, 1, {"whatsapp_opt_out": False} | who).get_json()
    assert never_asked["whatsapp_opt_in"] is False  # not saying no is not a yes
    yes = patch(client, token, 1, {"whatsapp_opt_in": True} | who).get_json()
    assert (
        yes["whatsapp_opt_in"] is True and yes["whatsapp_opt_in_via"] == "Ana: lo pidió en tienda"
    )
    no = patch(client, token, 1, {"whatsapp_opt_in": False} | who).get_json()
    assert (no["whatsapp_opt_in"], no["whatsapp_opt_out"]) == (False, True)
    both = patch(client, token, 1, {"whatsapp_opt_in": True, "whatsapp_opt_out": True} | who)
    assert both.status_code == 422 and list(errors_of(both)) == ["whatsapp_opt_out"]


def test_every_problem_is_named_and_nothing_changes(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=1)
    body = {
        "name": "",
        "email": "not-an-email",
        "locale": "fr",
        "timezone": "Mars/Base",
        "sms_opt_out": "yes",
        "phone": "+51 12",
        "birthday": "1990-01-01",
        "by": 5,
    }
    answer = patch(client, token, 1, body)
    assert answer.status_code == 422
    problems = errors_of(answer)
    assert set(problems) == {
        *("name", "email", "locale", "timezone", "sms_opt_out", "phone", "birthday", "by")
    }
    assert problems["birthday"].startswith("is not a field of a customer")
    assert "not a valid phone number" in problems["phone"]
    assert problems["sms_opt_out"] == "must be true or false"
    assert "fr" in problems["locale"] and "Mars/Base" in problems["timezone"]
    session.rollback()
    assert session.get_one(Customer, 1).name == "Cliente 0"


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "texto",
        {"name": "x" * 201},
        {"name": "Rosa\u0000"},
        {"name": {"first": "Rosa"}},
        {"timezone": "a" * 5000},
        {"email": "a@" + "b" * 300 + ".pe"},
        {"reason": "x" * 201, "by": "Ana", "sms_opt_out": True},
        {"x" * 10_000: 1},
    ],
)
def test_hostile_bodies_are_4xx_never_a_500(
    client: FlaskClient, session: Session, config: Config, token: str, body: Any
) -> None:
    shop(session, config, customers=1)
    answer = patch(client, token, 1, body)
    assert answer.status_code in (400, 422), answer.get_data(as_text=True)[:200]
    assert answer.get_json()["errors"]


def test_an_email_another_customer_has_is_409(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=2)
    session.get_one(Customer, 1).email = "rosa@example.pe"
    session.commit()
    answer = patch(client, token, 2, {"email": "ROSA@example.pe"})
    assert answer.status_code == 409 and errors_of(answer) == {
        "email": "another customer has this email (customer 1)"
    }
    missing = patch(client, token, 99, {"name": "Nadie"})
    assert missing.status_code == 404
    no_address = patch(client, token, 1, {"email": None})
    assert no_address.status_code == 200  # the phone is left
    session.get_one(Customer, 2).phone = None
    session.commit()
    answer = patch(client, token, 1, {"email": "x@example.pe"})
    unreachable = patch(client, token, 2, {"email": None, "name": "Otro"})
    assert (answer.status_code, unreachable.status_code) == (200, 422)


def test_a_phone_is_changed_as_typed_and_one_another_customer_has_is_409(
    client: FlaskClient, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=2)
    changed = patch(client, token, 1, {"phone": "999 888 777"})  # local to the business (PE)
    assert changed.status_code == 200 and changed.get_json()["phone"] == "+51999888777"
    clash = patch(client, token, 1, {"phone": "+51987654321"})
    assert clash.status_code == 409 and errors_of(clash) == {
        "phone": "another customer has this phone (customer 2)"
    }
    assert errors_of(patch(client, token, 1, {"phone": "12"})) == {
        "phone": "'12' is not a valid phone number (numbers without + are read as PE)"
    }
    unreachable = patch(client, token, 1, {"phone": None})
    assert unreachable.status_code == 422 and list(errors_of(unreachable)) == ["phone"]


def test_parallel_patches_of_one_email_to_two_customers_give_it_to_one(
    app: Flask, session: Session, config: Config, token: str
) -> None:
    shop(session, config, customers=6)
    start = threading.Barrier(6)
    statuses: list[int] = [0] * 6

    def send(index: int) -> None:
        client = app.test_client()
        start.wait()
        with freeze_time(NOW):
            statuses[index] = patch(
                client, token, index + 1, {"email": "una@example.pe"}
            ).status_code

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] + [409] * 5
    session.rollback()
    owners = session.scalars(select(Customer.id).where(Customer.email == "una@example.pe"))
    assert len(owners.all()) == 1

"""The JSON API: bearer tokens, recording and cancelling sales, reading follow-ups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.lifecycle import FollowUpStatus
from scheduler.models import ApiToken, AuditEntry, Customer, FollowUp, Sale
from tests.factories import NOW

LIMA = ZoneInfo("America/Lima")


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with freeze_time(NOW):  # Monday 10:00 in Lima
        yield


def body(external_id: str = "S-1", **changes: Any) -> dict[str, Any]:
    sale: dict[str, Any] = {
        "external_id": external_id,
        "sold_at": "2026-11-22T21:15:00-05:00",  # Sunday evening in Lima
        "customer": {"name": "Rosa Quispe", "phone": "987654321", "email": "rosa@example.pe"},
        "product": {"sku": "LAV-9", "name": "Lavadora"},
        "amount": "1899.90",
        "currency": "PEN",
        "attributes": {"store": "Miraflores"},
    }
    sale.update(changes)
    return sale


def post(client: FlaskClient, path: str, token: str, payload: Any = None) -> TestResponse:
    return client.post(path, json=payload, headers={"Authorization": f"Bearer {token}"})


def get(client: FlaskClient, path: str, token: str) -> TestResponse:
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def fields(response: TestResponse) -> list[str | None]:
    return [item["field"] for item in response.get_json()["errors"]]


def count(session: Session, model: type[Any]) -> int:
    session.rollback()  # a fresh look at what the app committed
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer pv_not-a-real-token", "Basic dXNlcjpwYXNz", "pv_no-scheme"],
)
def test_requests_without_a_valid_token_are_401(
    client: FlaskClient, session: Session, token: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.post("/api/sales", json=body(), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    [problem] = response.get_json()["errors"]
    assert problem["field"] is None and "token" in problem["message"]
    assert count(session, Sale) == 0


def test_a_revoked_token_is_401(client: FlaskClient, session: Session, token: str) -> None:
    row = session.scalars(select(ApiToken)).one()
    row.revoked_at = NOW
    session.commit()
    assert get(client, "/api/follow-ups", token).status_code == 401


def test_a_valid_token_is_marked_used(client: FlaskClient, session: Session, token: str) -> None:
    assert get(client, "/api/follow-ups", token).status_code == 200
    session.rollback()
    assert session.scalars(select(ApiToken)).one().last_used_at == NOW


# --- POST /api/sales ----------------------------------------------------------------------------


def test_a_new_sale_is_201_with_its_planned_follow_ups(
    client: FlaskClient, session: Session, token: str
) -> None:
    response = post(client, "/api/sales", token, body())
    assert response.status_code == 201
    data = response.get_json()
    sale = data["sale"]
    assert sale["external_id"] == "S-1" and sale["status"] == "active"
    assert sale["sold_at"] == "2026-11-23T02:15:00Z"
    assert sale["customer"]["name"] == "Rosa Quispe" and isinstance(sale["customer"]["id"], int)
    assert sale["product"] == {"sku": "LAV-9", "name": "Lavadora"}
    assert (sale["amount"], sale["currency"]) == ("1899.90", "PEN")
    assert sale["attributes"] == {"store": "Miraflores"}
    steps = [item["step"] for item in data["follow_ups"]]
    assert steps == ["day1-thanks", "day7-check-in", "day21-score", "day90-usage"]
    thanks = data["follow_ups"][0]
    # Monday 21:15 in Lima is after the window: Tuesday 09:00 in Lima, 14:00 UTC.
    assert thanks["due_at"] == "2026-11-24T14:00:00Z"
    assert (thanks["channel"], thanks["status"]) == ("sms", "scheduled")
    for item in data["follow_ups"]:
        local = datetime.fromisoformat(item["due_at"]).astimezone(LIMA)
        assert 9 <= local.hour < 20 and local.weekday() != 6, item
    session.rollback()
    stored = session.scalars(select(Sale)).one()
    assert stored.id == sale["id"] and stored.customer.phone == "+51987654321"
    assert count(session, FollowUp) == 4
    actors = session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "sale.record"))
    assert actors.all() == ["api:tienda-online"]


def test_the_same_external_id_again_is_200_with_the_first_sale(
    client: FlaskClient, session: Session, token: str
) -> None:
    first = post(client, "/api/sales", token, body())
    # The same sale as another system writes it: the amount without its last zero, the time in
    # UTC, the phone with its prefix, another spelling of the name and attributes.
    same = body(
        amount=1899.9,
        sold_at="2026-11-23T02:15:00Z",
        customer={"name": "ROSA QUISPE", "phone": "+51 987 654 321"},
        attributes={},
    )
    again = post(client, "/api/sales", token, same)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert (count(session, Sale), count(session, FollowUp)) == (1, 4)


def test_the_same_external_id_with_other_content_is_409_listing_what_differs(
    client: FlaskClient, session: Session, token: str
) -> None:
    first = post(client, "/api/sales", token, body())
    other = body(
        amount="1.00",
        currency="USD",
        sold_at="2026-11-22T21:16:00-05:00",
        customer={"name": "Rosa Quispe", "phone": "987654322"},
        product={"sku": "LAV-10"},
    )
    again = post(client, "/api/sales", token, other)
    assert again.status_code == 409
    problems = {item["field"]: item["message"] for item in again.get_json()["errors"]}
    assert list(problems) == [
        "external_id",
        "sold_at",
        "customer.phone",
        "product.sku",
        "amount",
        "currency",
    ]
    assert f"(sale {first.get_json()['sale']['id']})" in problems["external_id"]
    assert problems["amount"] == "recorded as 1899.90, sent as 1.00"
    assert problems["customer.phone"] == "recorded as +51987654321, sent as +51987654322"
    assert problems["sold_at"] == (
        "recorded as 2026-11-23T02:15:00+00:00, sent as 2026-11-23T02:16:00+00:00"
    )
    assert (count(session, Sale), count(session, FollowUp), count(session, Customer)) == (1, 4, 1)
    by_email = post(client, "/api/sales", token, body(customer={"name": "R", "email": "x@y.pe"}))
    assert by_email.status_code == 409  # the customer is found by the phone when one is sent
    assert [item["field"] for item in by_email.get_json()["errors"]][1:] == ["customer.email"]


def test_an_email_in_another_case_is_the_same_customer(
    client: FlaskClient, session: Session, token: str
) -> None:
    rosa = {"name": "Rosa Quispe", "email": "Rosa.Quispe@Example.PE"}
    first = post(client, "/api/sales", token, body("S-1", customer=rosa))
    again = post(
        client,
        "/api/sales",
        token,
        body("S-2", customer=rosa | {"email": "rosa.quispe@example.pe"}),
    )
    assert (first.status_code, again.status_code) == (201, 201)
    session.rollback()
    assert session.scalars(select(Customer.email)).all() == ["rosa.quispe@example.pe"]


def test_validation_lists_every_problem_with_nested_field_names(
    client: FlaskClient, session: Session, token: str
) -> None:
    payload = body(sold_at="last tuesday", customer={"phone": "12", "locale": "fr"}, amount=-1)
    response = post(client, "/api/sales", token, payload)
    assert response.status_code == 422
    assert fields(response) == [
        "sold_at",
        "customer.name",
        "customer.phone",
        "customer.locale",
        "amount",
    ]
    messages = {item["field"]: item["message"] for item in response.get_json()["errors"]}
    assert messages["customer.name"] == "is required"
    assert "ISO 8601" in messages["sold_at"]
    assert count(session, Sale) == 0


def test_parts_that_are_not_objects_are_named(client: FlaskClient, token: str) -> None:
    response = post(client, "/api/sales", token, body(customer="Rosa", product=["LAV-9"]))
    assert response.status_code == 422
    assert fields(response) == ["customer", "product", "customer.name", "customer.phone"]


def test_a_body_that_is_not_a_json_object_is_400(client: FlaskClient, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    for response in (
        client.post("/api/sales", data="external_id=S-1", headers=auth),
        client.post("/api/sales", data="{not json", headers=auth, content_type="application/json"),
        post(client, "/api/sales", token, ["S-1"]),
    ):
        assert response.status_code == 400
        assert fields(response) == [None]
        assert "JSON object" in response.get_json()["errors"][0]["message"]


# --- POST /api/sales/<id>/cancel ----------------------------------------------------------------


def test_cancel_cancels_pending_follow_ups_and_keeps_sent_ones(
    client: FlaskClient, session: Session, token: str
) -> None:
    sale_id = post(client, "/api/sales", token, body()).get_json()["sale"]["id"]
    sent = session.scalars(select(FollowUp).order_by(FollowUp.due_at)).first()
    assert sent is not None
    sent.status, sent.sent_at = FollowUpStatus.SENT, NOW
    session.commit()

    response = post(client, f"/api/sales/{sale_id}/cancel", token)
    assert response.status_code == 200
    data = response.get_json()
    assert data["sale"]["status"] == "cancelled"
    assert data["sale"]["cancelled_at"] == "2026-11-23T15:00:00Z"
    assert [item["status"] for item in data["follow_ups"]] == ["sent"] + ["cancelled"] * 3
    session.rollback()
    reasons = session.scalars(
        select(FollowUp.status_reason).where(FollowUp.status == FollowUpStatus.CANCELLED)
    )
    assert set(reasons) == {"cancelled through the API"}

    again = post(client, f"/api/sales/{sale_id}/cancel", token)
    assert again.status_code == 200 and again.get_json() == data
    assert count(session, AuditEntry) == 4  # token, sale.record, one sale.cancel (not two)


def test_cancel_of_an_unknown_sale_is_404(client: FlaskClient, token: str) -> None:
    response = post(client, "/api/sales/999/cancel", token)
    assert response.status_code == 404
    assert response.get_json() == {"errors": [{"field": None, "message": "no sale with id 999"}]}


# --- GET /api/follow-ups ------------------------------------------------------------------------


def test_follow_ups_filter_by_sale_and_status(
    client: FlaskClient, session: Session, token: str
) -> None:
    first = post(client, "/api/sales", token, body("S-1")).get_json()["sale"]["id"]
    second = post(client, "/api/sales", token, body("S-2")).get_json()["sale"]["id"]
    post(client, f"/api/sales/{first}/cancel", token)

    everything = get(client, "/api/follow-ups", token).get_json()["follow_ups"]
    assert len(everything) == 8
    assert [item["due_at"] for item in everything] == sorted(item["due_at"] for item in everything)

    of_second = get(client, f"/api/follow-ups?sale_id={second}", token).get_json()["follow_ups"]
    assert {item["sale_id"] for item in of_second} == {second} and len(of_second) == 4
    assert set(of_second[0]) == {
        "id",
        "step",
        "channel",
        "due_at",
        "status",
        "sale_id",
        "status_reason",
        "sent_at",
    }

    cancelled = get(client, "/api/follow-ups?status=cancelled", token).get_json()["follow_ups"]
    assert {item["sale_id"] for item in cancelled} == {first} and len(cancelled) == 4
    assert cancelled[0]["status_reason"] == "cancelled through the API"

    both = f"/api/follow-ups?sale_id={second}&status=cancelled"
    assert get(client, both, token).get_json() == {"follow_ups": [], "next_cursor": None}

    limited = get(client, "/api/follow-ups?limit=3", token).get_json()["follow_ups"]
    assert [item["id"] for item in limited] == [item["id"] for item in everything[:3]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=pending", "status"),
        ("sale_id=abc", "sale_id"),
        ("sale_id=-1", "sale_id"),
        ("limit=501", "limit"),
        ("limit=0", "limit"),
    ],
)
def test_bad_follow_up_filters_are_400(
    client: FlaskClient, token: str, query: str, field: str
) -> None:
    response = get(client, f"/api/follow-ups?{query}", token)
    assert response.status_code == 400
    assert fields(response) == [field]


# --- errors -------------------------------------------------------------------------------------


def test_unknown_paths_and_methods_under_api_answer_json(client: FlaskClient, token: str) -> None:
    missing = get(client, "/api/nothing-here", token)
    assert missing.status_code == 404 and fields(missing) == [None]
    wrong_method = get(client, "/api/sales", token)
    assert wrong_method.status_code == 405 and fields(wrong_method) == [None]
    assert "POST" in wrong_method.headers["Allow"]
    elsewhere = client.get("/nothing-here")
    assert elsewhere.status_code == 404 and elsewhere.mimetype == "text/html"


def test_the_whatsapp_opt_in_comes_with_the_sale_and_shows_on_the_customer(
    client: FlaskClient, session: Session, token: str
) -> None:
    customer = {"name": "Rosa Quispe", "phone": "987654321", "whatsapp_opt_in": True}
    assert post(client, "/api/sales", token, body(customer=customer)).status_code == 201
    later = {"name": "Rosa Quispe", "phone": "987654321", "whatsapp_opt_in": False}
    assert post(client, "/api/sales", token, body("S-2", customer=later)).status_code == 201
    session.rollback()
    rosa = session.scalars(select(Customer)).one()
    shown = get(client, f"/api/customers/{rosa.id}", token).get_json()
    assert shown["whatsapp_opt_in"] is True and shown["whatsapp_opt_out"] is False
    assert shown["whatsapp_opt_in_via"] == "said yes with a sale (api:tienda-online)"  # kept
    assert shown["whatsapp_opt_in_at"] == "2026-11-23T15:00:00Z"


@pytest.mark.parametrize(
    ("customer", "message"),
    [
        ({"name": "R", "phone": "987654321", "whatsapp_opt_in": "maybe"}, "must be true or false"),
        ({"name": "R", "email": "r@example.pe", "whatsapp_opt_in": True}, "needs the customer's"),
    ],
)
def test_a_bad_whatsapp_opt_in_is_named(
    client: FlaskClient, token: str, customer: dict[str, Any], message: str
) -> None:
    response = post(client, "/api/sales", token, body(customer=customer))
    assert response.status_code == 422
    [problem] = response.get_json()["errors"]
    assert problem["field"] == "customer.whatsapp_opt_in" and message in problem["message"]

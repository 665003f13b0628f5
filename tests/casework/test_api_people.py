"""`GET /api/cases` and `GET /api/customers/{id}`: what people must answer, a customer's story."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.accounts import create_api_token
from scheduler.models import Customer
from tests.factories import NOW
from tests.replying import DAY1, config, reply, sent  # noqa: F401 - fixtures

__all__ = ["config", "sent"]


def bearer(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions.begin() as session:
        secret = create_api_token(session, name="crm", now=NOW, actor="test")
    return {"Authorization": f"Bearer {secret}"}


def test_open_cases_with_their_conversation(
    client: FlaskClient, sent: sessionmaker[Session]
) -> None:
    reply(client, "la lavadora no prende", 1)
    reply(client, "me pueden llamar?", 2)
    headers = bearer(sent)
    assert client.get("/api/cases").status_code == 401
    body = client.get("/api/cases?status=open", headers=headers).get_json()
    [case] = body["cases"]
    assert case["status"] == "open" and case["customer"]["name"] == "Rosa Quispe"
    assert case["first_response_due_at"].endswith("Z")
    conversation = [(m["direction"], m["body"][:22]) for m in case["messages"]]
    assert conversation == [
        ("inbound", "la lavadora no prende"),
        ("outbound", "Rosa, gracias por escr"),
        ("inbound", "me pueden llamar?"),
    ]  # the outbound one is the acknowledgement
    assert client.get("/api/cases?status=resolved", headers=headers).get_json() == {
        "cases": [],
        "next_cursor": None,
    }
    wrong = client.get("/api/cases?status=closed", headers=headers)
    assert wrong.status_code == 400 and wrong.get_json()["errors"][0]["field"] == "status"


def test_a_customers_timeline(client: FlaskClient, sent: sessionmaker[Session]) -> None:
    with freeze_time(DAY1 + timedelta(hours=1)):  # the day after the sale, after the thank-you
        reply(client, "BAJA", 1)
    headers = bearer(sent)
    with sent() as session:
        customer_id = session.scalars(select(Customer.id)).one()
    body = client.get(f"/api/customers/{customer_id}", headers=headers).get_json()
    assert body["sms_opt_out"] is True and body["email_opt_out"] is False
    assert body["sms_opt_out_via"] == "replied 'baja' by SMS"
    kinds = [event["type"] for event in body["timeline"]]
    assert kinds[:2] == ["sale", "follow_up"] and kinds.count("message") == 2  # thanks, BAJA
    assert kinds.count("follow_up") == 4
    follow_ups = {e["step"]: e["status"] for e in body["timeline"] if e["type"] == "follow_up"}
    assert follow_ups["day1-thanks"] == "sent" and follow_ups["day7-check-in"] == "skipped"
    times = [event["at"] for event in body["timeline"]]
    assert all(t is not None for t in times)
    missing = client.get("/api/customers/999999", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["errors"][0]["field"] is None

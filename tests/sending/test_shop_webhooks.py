"""Orders from the shops' own webhooks: signed, taken once, in any order, and what cannot be
used kept for a person."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler.config import Config, defaults
from scheduler.defaults import install_defaults
from scheduler.lifecycle import DeliveryOutcome, FollowUpStatus, SaleStatus
from scheduler.models import AuditEntry, Customer, FollowUp, Sale, ShopDelivery
from scheduler.sending.shop_deliveries import MAX_BODY
from tests import shop_payloads as payloads
from tests.browsing import use_config
from tests.factories import NOW
from tests.shop_payloads import deliver
from web.shop_webhooks import signature


@pytest.fixture
def config(engine: Engine) -> Config:
    url = engine.url.render_as_string(hide_password=False)
    return defaults().replace(
        database={"url": url},
        shops={
            "shopify_secret": payloads.SHOPIFY_SECRET,
            "woocommerce_secret": payloads.WOOCOMMERCE_SECRET,
        },
    )


@pytest.fixture(autouse=True)
def shop(session: Session) -> Iterator[None]:
    """The default cadence installed, at Monday 10:00 in Lima."""
    install_defaults(session, NOW)
    session.commit()
    with freeze_time(NOW):
        yield


def sales(session: Session) -> list[Sale]:
    session.rollback()  # a fresh look at what the app committed
    return list(session.scalars(select(Sale).order_by(Sale.id)))


def deliveries(session: Session) -> list[ShopDelivery]:
    session.rollback()
    return list(session.scalars(select(ShopDelivery).order_by(ShopDelivery.id)))


def statuses(session: Session, sale: Sale) -> set[FollowUpStatus]:
    return set(session.scalars(select(FollowUp.status).where(FollowUp.sale_id == sale.id)))


def test_a_paid_shopify_order_records_its_sale_and_plans_follow_ups(
    client: FlaskClient, session: Session
) -> None:
    answer = deliver(client, "shopify", payloads.shopify_order())
    assert answer.status_code == 200
    [sale] = sales(session)
    assert answer.get_json() == {"status": "recorded", "reason": None, "sale_id": sale.id}
    assert sale.external_id == "shopify:5123456789" and sale.product is not None
    assert (sale.product.sku, sale.currency, str(sale.amount)) == ("LAV-9", "PEN", "2049.00")
    assert sale.attributes["order_name"] == "#1001" and len(sale.attributes["items"]) == 3
    assert sale.customer.phone == "+51987654321" and sale.customer.locale == "es"
    assert statuses(session, sale) == {FollowUpStatus.SCHEDULED}
    actor = session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "sale.record"))
    assert actor.one() == "webhook:shopify"
    [delivery] = deliveries(session)
    assert (delivery.outcome, delivery.sale_id, delivery.body) == (
        DeliveryOutcome.RECORDED,
        sale.id,
        None,  # what was recorded is in the sale: only refused bodies are kept
    )


def test_a_guest_paying_in_dollars_without_a_phone_is_recorded_by_email(
    client: FlaskClient, session: Session
) -> None:
    assert deliver(client, "shopify", payloads.shopify_guest_order()).status_code == 200
    [sale] = sales(session)
    assert (sale.currency, str(sale.amount)) == ("USD", "520.00")  # the business's is PEN
    assert (sale.customer.name, sale.customer.phone) == ("John Smith", None)
    assert sale.customer.email == "tourist@example.com"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # unsigned
        {"X-Shopify-Hmac-Sha256": "bm90IGEgc2lnbmF0dXJl"},
        {"X-Shopify-Hmac-Sha256": ""},
    ],
)
def test_unsigned_or_forged_orders_store_nothing(
    client: FlaskClient, session: Session, headers: dict[str, str]
) -> None:
    body = json.dumps(payloads.shopify_order()).encode()
    answer = client.post(
        "/webhooks/shopify/orders",
        data=body,
        headers={"X-Shopify-Topic": "orders/paid", **headers},
        content_type="application/json",
    )
    assert answer.status_code == 401
    assert answer.get_json()["errors"] == [
        {"field": "X-Shopify-Hmac-Sha256", "message": "invalid or missing X-Shopify-Hmac-Sha256"}
    ]
    assert sales(session) == [] and deliveries(session) == []


def test_a_signature_with_another_secret_or_of_another_body_stores_nothing(
    client: FlaskClient, session: Session
) -> None:
    other = deliver(client, "shopify", payloads.shopify_order(), secret="someone else's")
    woo_secret = deliver(
        client, "shopify", payloads.shopify_order(), secret=payloads.WOOCOMMERCE_SECRET
    )
    raw = json.dumps(payloads.shopify_order()).encode()
    changed = client.post(
        "/webhooks/shopify/orders",
        data=raw.replace(b"2049.00", b"1.00"),  # changed on the way, signed as it was
        headers={
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Hmac-Sha256": signature(raw, payloads.SHOPIFY_SECRET),
        },
    )
    assert other.status_code == woo_secret.status_code == changed.status_code == 401
    assert sales(session) == [] and deliveries(session) == []


def test_without_a_secret_every_request_is_refused(app: Flask, session: Session) -> None:
    use_config(app, shops={"shopify_secret": "", "woocommerce_secret": ""})
    client = app.test_client()
    shopify = deliver(client, "shopify", payloads.shopify_order(), secret="")
    ping = client.post(
        "/webhooks/woocommerce/orders",
        data=b"webhook_id=12",
        content_type="application/x-www-form-urlencoded",
    )
    assert shopify.status_code == ping.status_code == 403
    message = shopify.get_json()["errors"][0]["message"]
    assert "[shops] shopify_secret" in message and "POSTVENTA_SHOPIFY_SECRET" in message
    assert sales(session) == [] and deliveries(session) == []


def test_a_retry_of_a_delivery_changes_nothing(client: FlaskClient, session: Session) -> None:
    first = deliver(client, "shopify", payloads.shopify_order(), delivery_id="b54557e4-1")
    [sale] = sales(session)
    planned = follow_ups(session, sale)
    again = deliver(client, "shopify", payloads.shopify_order(), delivery_id="b54557e4-1")
    assert first.status_code == again.status_code == 200
    assert again.get_json() == {"status": "duplicate"}
    # Another delivery of the same order (a second subscription): the sale is not doubled.
    other = deliver(client, "shopify", payloads.shopify_order(), delivery_id="c0ffee-2")
    assert other.get_json() == {"status": "recorded", "reason": "already recorded", "sale_id": 1}
    assert [row.id for row in sales(session)] == [sale.id]
    assert follow_ups(session, sale) == planned
    assert len(deliveries(session)) == 2


def follow_ups(session: Session, sale: Sale) -> list[tuple[int, FollowUpStatus]]:
    rows = session.execute(select(FollowUp.id, FollowUp.status).where(FollowUp.sale_id == sale.id))
    return sorted((row.id, row.status) for row in rows)


def _at_once(app: Flask, count: int, send: Any) -> list[int]:
    """`send(client, index)` from `count` threads released together; their status codes."""
    start = threading.Barrier(count)
    answers: list[int] = [0] * count

    def run(index: int) -> None:
        client = app.test_client()
        start.wait()
        answers[index] = send(client, index).status_code

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def test_parallel_identical_deliveries_record_one_sale(app: Flask, session: Session) -> None:
    order = payloads.shopify_order()
    answers = _at_once(
        app, 8, lambda client, _: deliver(client, "shopify", order, delivery_id="same-delivery")
    )
    assert answers == [200] * 8
    [sale] = sales(session)
    assert len(deliveries(session)) == 1
    assert session.scalar(select(func.count()).select_from(Customer)) == 1
    steps = session.scalars(select(FollowUp.step_id).where(FollowUp.sale_id == sale.id)).all()
    assert len(steps) == len(set(steps)) > 0


def test_paid_and_cancelled_at_once_never_leave_follow_ups_planned(
    app: Flask, session: Session
) -> None:
    order = payloads.shopify_order()

    def send(client: FlaskClient, index: int) -> Any:
        topic = "orders/cancelled" if index % 2 else "orders/paid"
        return deliver(client, "shopify", order, topic=topic, delivery_id=f"d-{index}")

    assert _at_once(app, 6, send) == [200] * 6
    [sale] = sales(session)
    assert sale.status is SaleStatus.CANCELLED
    assert FollowUpStatus.SCHEDULED not in statuses(session, sale)


def test_a_cancellation_cancels_the_pending_follow_ups(
    client: FlaskClient, session: Session
) -> None:
    deliver(client, "shopify", payloads.shopify_order())
    cancelled_at = "2026-11-23T10:00:00-05:00"
    payload = payloads.shopify_order(cancelled_at=cancelled_at, cancel_reason="customer")
    answer = deliver(client, "shopify", payload, topic="orders/cancelled")
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "cancelled"
    [sale] = sales(session)
    assert sale.status is SaleStatus.CANCELLED
    assert statuses(session, sale) == {FollowUpStatus.CANCELLED}
    reasons = session.scalars(select(FollowUp.status_reason).where(FollowUp.sale_id == sale.id))
    assert set(reasons) == {"Shopify cancelled the order"}


def test_a_cancellation_before_the_payment_is_remembered(
    client: FlaskClient, session: Session
) -> None:
    early = deliver(client, "shopify", {"id": 5123456789}, topic="orders/cancelled")
    assert early.get_json()["status"] == "cancelled" and sales(session) == []
    late = deliver(client, "shopify", payloads.shopify_order())
    assert late.status_code == 200
    assert late.get_json()["reason"] == "the shop cancelled the order before it was paid"
    [sale] = sales(session)
    assert sale.status is SaleStatus.CANCELLED
    assert statuses(session, sale) <= {FollowUpStatus.CANCELLED, FollowUpStatus.SKIPPED}
    # Another order of the same shop is not touched by it.
    deliver(client, "shopify", payloads.shopify_order(id=5123456800, name="#1003"))
    assert sales(session)[-1].status is SaleStatus.ACTIVE


def test_a_refund_of_the_main_item_cancels_and_of_an_accessory_does_not(
    client: FlaskClient, session: Session
) -> None:
    deliver(client, "shopify", payloads.shopify_order())
    bags = deliver(client, "shopify", payloads.shopify_refund("BOLSA-1"), topic="refunds/create")
    assert bags.status_code == 200 and bags.get_json()["status"] == "ignored"
    [sale] = sales(session)
    assert sale.status is SaleStatus.ACTIVE and FollowUpStatus.SCHEDULED in statuses(session, sale)
    main = deliver(
        client,
        "shopify",
        payloads.shopify_refund("LAV-9", amount="1899.00"),
        topic="refunds/create",
    )
    assert main.get_json()["status"] == "cancelled"
    [sale] = sales(session)
    assert sale.status is SaleStatus.CANCELLED
    assert statuses(session, sale) == {FollowUpStatus.CANCELLED}


def test_a_refund_of_an_order_never_recorded_is_kept_for_a_person(
    client: FlaskClient, session: Session
) -> None:
    answer = deliver(client, "shopify", payloads.shopify_refund("LAV-9"), topic="refunds/create")
    assert answer.status_code == 200 and answer.get_json()["status"] == "ignored"
    [delivery] = deliveries(session)
    assert delivery.body is not None and '"order_id": 5123456789' in delivery.body


def test_a_completed_woocommerce_order_is_recorded_and_a_refunded_one_cancelled(
    client: FlaskClient, session: Session
) -> None:
    for status in ("pending", "processing", "on-hold"):
        answer = deliver(client, "woocommerce", payloads.woocommerce_order(status=status))
        assert answer.status_code == 200
        assert answer.get_json()["reason"] == f"status {status}: recorded once completed"
    assert sales(session) == [] and deliveries(session) == []
    deliver(client, "woocommerce", payloads.woocommerce_order(), delivery_id=None)
    again = deliver(client, "woocommerce", payloads.woocommerce_order(), delivery_id=None)
    assert again.get_json()["reason"] == "already recorded"  # idempotent on the order itself
    [sale] = sales(session)
    assert (sale.external_id, sale.customer.name) == ("woocommerce:1042", "Lucía Mendoza")
    refunded = deliver(client, "woocommerce", payloads.woocommerce_order(status="refunded"))
    assert refunded.get_json()["status"] == "cancelled"
    [sale] = sales(session)
    assert sale.status is SaleStatus.CANCELLED
    assert statuses(session, sale) == {FollowUpStatus.CANCELLED}


def test_woocommerce_ping_is_answered_and_stores_nothing(
    client: FlaskClient, session: Session
) -> None:
    answer = client.post(
        "/webhooks/woocommerce/orders",
        data=b"webhook_id=17",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert deliveries(session) == []
    not_a_ping = client.post("/webhooks/woocommerce/orders", data=b"webhook_id=17&x=1")
    assert not_a_ping.status_code == 401


@pytest.mark.parametrize(
    "body, field, message",
    [
        (b"<order/>", "body", "the body is not JSON: a shop sends its orders as JSON"),
        (b"\xff\xfe{}", "body", "the body is not JSON: a shop sends its orders as JSON"),
        (b"null", "body", "the body must be a JSON object"),
        (b"[1, 2]", "body", "the body must be a JSON object"),
        (b'{"id": 12}', "created_at", "is required: when the order was placed"),
        (b"[" * 100_000, "body", "the body is not JSON: a shop sends its orders as JSON"),
    ],
)
def test_what_is_not_an_order_answers_422_and_is_kept(
    client: FlaskClient, session: Session, body: bytes, field: str, message: str
) -> None:
    answer = deliver(client, "shopify", None, body=body)
    assert answer.status_code == 422
    assert answer.get_json() == {"errors": [{"field": field, "message": message}]}
    [delivery] = deliveries(session)
    assert delivery.outcome is DeliveryOutcome.REFUSED and delivery.reason
    assert delivery.body == body.decode("utf-8", "replace")
    assert sales(session) == []


def test_an_order_intake_refuses_answers_422_with_the_reasons(
    client: FlaskClient, session: Session
) -> None:
    payload = payloads.shopify_guest_order() | {"email": None, "contact_email": None}
    answer = deliver(client, "shopify", payload)
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == [
        {"field": "phone", "message": "a phone or an email is required"}
    ]
    [delivery] = deliveries(session)
    assert delivery.reason == "phone: a phone or an email is required"
    assert json.loads(delivery.body or "") == payload
    again = deliver(client, "shopify", payload)  # Shopify's retry: answered, not kept twice
    assert again.status_code == 200 and len(deliveries(session)) == 1


def test_a_nul_in_a_refused_body_is_kept_readable(client: FlaskClient, session: Session) -> None:
    body = b'{"id": "\\u0000", "text": "\x00"}'
    assert deliver(client, "shopify", None, body=body).status_code == 422
    [delivery] = deliveries(session)
    assert delivery.body is not None and "\x00" not in delivery.body


def test_a_large_refused_body_is_kept_cut_saying_so(client: FlaskClient, session: Session) -> None:
    body = b"x" * (MAX_BODY + 10)
    assert deliver(client, "shopify", None, body=body).status_code == 422
    [delivery] = deliveries(session)
    assert delivery.body == "x" * MAX_BODY + "\n[... cut: 10 more characters]"


def test_an_oversized_body_is_refused_before_it_is_read(
    client: FlaskClient, session: Session
) -> None:
    huge = b'{"id": 1, "note": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = deliver(client, "shopify", None, body=huge)
    assert answer.status_code == 413
    assert deliveries(session) == []


def test_other_topics_and_bad_headers(client: FlaskClient, session: Session) -> None:
    other = deliver(client, "shopify", payloads.shopify_order(), topic="orders/create")
    assert other.status_code == 200 and other.get_json()["status"] == "ignored"
    assert "orders/paid" in other.get_json()["reason"]
    long_id = deliver(client, "shopify", payloads.shopify_order(), delivery_id="x" * 101)
    assert long_id.status_code == 400
    assert long_id.get_json()["errors"][0]["field"] == "X-Shopify-Webhook-Id"
    no_topic = deliver(client, "woocommerce", payloads.woocommerce_order(), topic="")
    assert no_topic.status_code == 400
    assert no_topic.get_json()["errors"] == [
        {"field": "X-WC-Webhook-Topic", "message": "is required: which event this is"}
    ]
    woo = deliver(client, "woocommerce", payloads.woocommerce_order(), topic="order.created")
    assert woo.get_json()["status"] == "recorded"
    product = deliver(client, "woocommerce", {"id": 93, "name": "x"}, topic="product.updated")
    assert product.get_json()["status"] == "ignored"
    assert [d.outcome for d in deliveries(session)] == [
        DeliveryOutcome.IGNORED,
        DeliveryOutcome.RECORDED,
        DeliveryOutcome.IGNORED,
    ]


def test_the_owner_sees_what_was_refused_and_staff_do_not(
    client: FlaskClient, owner_client: FlaskClient, staff_client: FlaskClient
) -> None:
    payload = payloads.shopify_guest_order() | {"email": None, "contact_email": None}
    deliver(client, "shopify", payload)
    deliver(client, "shopify", None, body=b"<script>alert(1)</script>")
    deliver(client, "shopify", payloads.shopify_order())  # recorded: not listed
    page = owner_client.get("/admin/shop-deliveries")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "phone: a phone or an email is required" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text
    assert "#1001" not in text
    assert staff_client.get("/admin/shop-deliveries").status_code == 403
    assert "/admin/shop-deliveries" in owner_client.get("/admin/tokens").get_data(as_text=True)

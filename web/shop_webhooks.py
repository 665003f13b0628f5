"""The shops' order webhooks: Shopify and WooCommerce, signed, taken once, answered in JSON.

Both sign the raw body: base64(HMAC-SHA256(body, secret)), compared in constant time before
anything is read. A shop without a configured secret is refused outright, and a request that
fails the check changes nothing. A signed delivery that cannot be used (not an order, or a sale
the intake refuses) answers 422 with the reasons, and its body is kept for a person
(Admin > Shop deliveries).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from scheduler.clock import utcnow
from scheduler.config import Config
from scheduler.lifecycle import DeliveryOutcome
from scheduler.sending.shop_deliveries import NOT_JSON, Delivery, take_delivery
from scheduler.sending.shop_orders import SHOPIFY, WOOCOMMERCE
from web.api import error, errors
from web.database import db_session, services

blueprint = Blueprint("shop_webhooks", __name__, url_prefix="/webhooks")
BODY_LIMIT = 2 * 1024 * 1024  # an order with hundreds of lines is a few hundred kilobytes
# What WooCommerce sends, unsigned, when a webhook is saved: it activates the hook on a 200.
WOOCOMMERCE_PING = re.compile(rb"webhook_id=\d{1,20}")
HEADER_LIMITS = {"topic": 64, "delivery": 100}


@dataclass(frozen=True)
class Shop:
    name: str
    shown: str  # as the shop calls itself
    signature: str
    topic: str
    delivery: str
    secret_key: str  # the [shops] key with its secret
    environment: str  # ... and the variable that may give it

    def secret(self, config: Config) -> str:
        secret: str = getattr(config.shops, self.secret_key)
        return secret


SHOPS = {
    SHOPIFY: Shop(
        SHOPIFY,
        "Shopify",
        "X-Shopify-Hmac-Sha256",
        "X-Shopify-Topic",
        "X-Shopify-Webhook-Id",
        "shopify_secret",
        "POSTVENTA_SHOPIFY_SECRET",
    ),
    WOOCOMMERCE: Shop(
        WOOCOMMERCE,
        "WooCommerce",
        "X-WC-Webhook-Signature",
        "X-WC-Webhook-Topic",
        "X-WC-Webhook-Delivery-ID",
        "woocommerce_secret",
        "POSTVENTA_WOOCOMMERCE_SECRET",
    ),
}


def signature(body: bytes, secret: str) -> str:
    """What the shops put in their signature header for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@blueprint.post("/shopify/orders")
def shopify_orders() -> tuple[Response, int]:
    """Shopify's orders/paid, orders/cancelled and refunds/create."""
    return _receive(SHOPS[SHOPIFY])


@blueprint.post("/woocommerce/orders")
def woocommerce_orders() -> tuple[Response, int]:
    """WooCommerce's order.created and order.updated (and the ping of a webhook being saved)."""
    return _receive(SHOPS[WOOCOMMERCE])


def _receive(shop: Shop) -> tuple[Response, int]:
    """Size (413, before the body is read), secret (403), signature (401), headers (400); then
    the delivery is taken once."""
    request.max_content_length = BODY_LIMIT
    if (request.content_length or 0) > BODY_LIMIT:
        return error(413, f"the body is larger than {BODY_LIMIT // 1024} KiB")
    config = services().config
    secret = shop.secret(config)
    if not secret:
        message = (
            f"{shop.shown} orders are not taken here yet: set [shops] {shop.secret_key} "
            f"(or {shop.environment}) to the webhook's signing secret"
        )
        return error(403, message)
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:  # no Content-Length: counted as it was read
        return error(413, f"the body is larger than {BODY_LIMIT // 1024} KiB")
    if shop.name == WOOCOMMERCE and WOOCOMMERCE_PING.fullmatch(body):
        return jsonify(status="ok"), 200
    given = request.headers.get(shop.signature, "").strip()
    if not given or not hmac.compare_digest(given.encode(), signature(body, secret).encode()):
        return error(401, f"invalid or missing {shop.signature}", shop.signature)
    headers, problems = {}, []
    for key, limit in HEADER_LIMITS.items():
        name = getattr(shop, key)
        value = request.headers.get(name, "").strip()
        if len(value) > limit or not value.isprintable():
            problems.append((name, f"must be at most {limit} printable characters"))
        headers[key] = value
    if not headers["topic"] and not problems:
        problems.append((shop.topic, "is required: which event this is"))
    if problems:
        return errors(400, problems)
    delivery = Delivery(
        shop.name, headers["topic"], headers["delivery"] or None, body.decode("utf-8", "replace")
    )
    session = db_session()
    taken = take_delivery(session, delivery, _json(body), config=config, now=utcnow())
    session.commit()
    if taken.repeat:
        return jsonify(status="duplicate"), 200
    if taken.outcome is DeliveryOutcome.REFUSED:
        return errors(422, list(taken.problems))
    answer = {"status": str(taken.outcome), "reason": taken.reason, "sale_id": taken.sale_id}
    return jsonify(answer), 200


def _json(body: bytes) -> Any:
    """The parsed body, or NOT_JSON (both shops send JSON in UTF-8)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return NOT_JSON

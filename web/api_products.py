"""The JSON API's product catalogue: list products with the cadence each follows, change one.

Routes on `web.api.blueprint`, so the same bearer tokens and JSON errors apply. Products are
made by sales; `PUT /api/products/{sku}` changes one and never creates one (404).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import select

from scheduler.clock import utcnow
from scheduler.models import Product
from scheduler.sending.products import (
    FIELDS,
    ProductError,
    ProductView,
    product_view,
    product_views,
    update_product,
)
from web.api import api_actor, blueprint, error, errors
from web.api_paging import page, read_paging
from web.database import db_session, services

# PUT takes the whole product: every field, null where there is none. "sku" may be sent back
# as GET gave it, but cannot change.
PUT_KEYS = frozenset(FIELDS) | {"sku"}


def product_json(view: ProductView) -> dict[str, Any]:
    return {
        "sku": view.sku,
        "name": view.name,
        "category": view.category,
        "renewal_days": view.renewal_days,
        "cadence": view.cadence,
        "follows": {
            "cadence": view.follows,
            "because": str(view.because) if view.because else None,
        },
    }


@blueprint.get("/products")
def list_products_route() -> tuple[Response, int]:
    """Products by SKU, a page at a time; `next_cursor` continues the list (null at its end)."""
    problems: list[tuple[str | None, str]] = []
    paging = read_paging((Product.sku,), problems)
    if problems:
        return errors(400, problems)
    session = db_session()
    rows, next_cursor = page(session, select(Product), paging)
    views = product_views(session, [product for (product,) in rows])
    return jsonify(products=[product_json(view) for view in views], next_cursor=next_cursor), 200


@blueprint.put("/products/<path:sku>")
def put_product(sku: str) -> tuple[Response, int]:
    """Change a product: the whole of it, every field given (null clears one), so that a
    forgotten key never clears a field by accident. 422 lists every problem."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the parser recurses once per `[` or `{`
        return error(400, "the body is nested too deeply to be a product")
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object (Content-Type: application/json)")
    problems: list[tuple[str | None, str]] = [
        (str(key)[:100], "is not a field of a product") for key in body if key not in PUT_KEYS
    ]
    problems += [
        (key, "is required: PUT takes the whole product (null where it has none)")
        for key in FIELDS
        if key not in body
    ]
    if "sku" in body and body["sku"] != sku:
        problems.append(("sku", "cannot be changed: it is how sales name the product"))
    if problems:
        return errors(422, problems)
    session = db_session()
    try:
        updated = update_product(
            session,
            sku,
            {key: body[key] for key in FIELDS},
            config=services().config,
            now=utcnow(),
            actor=api_actor(),
        )
    except ProductError as refused:
        session.rollback()
        return errors(422, list(refused.problems))
    if updated is None:
        session.rollback()
        return error(404, f"no product with the SKU {sku[:100]!r}: products are made by sales")
    session.commit()
    view = product_view(session, sku)
    assert view is not None  # just changed, in this request
    return jsonify(product_json(view)), 200

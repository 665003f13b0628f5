"""The JSON API's product catalogue: list products with the cadence each follows, change one.

Routes on `web.api.blueprint`, so the same bearer tokens and JSON errors apply. Products are
made by sales; `PUT /api/products/{sku}` changes one and never creates one (404).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Response, jsonify, request

from scheduler.clock import utcnow
from scheduler.sending.products import (
    FIELDS,
    ProductError,
    ProductView,
    list_products,
    product_view,
    update_product,
)
from web.api import DEFAULT_LIMIT, MAX_LIMIT, _actor, _int_arg, blueprint, error, errors
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


def _page(cursor: str, size: int) -> tuple[list[ProductView], str | None]:
    """The `size` products after `cursor`, and the cursor of the next page (None at the end).
    A cursor is the last SKU seen in URL-safe base64, opaque to clients; ValueError for one
    this API did not give."""
    after = None
    if cursor:
        try:
            after = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
        except (UnicodeError, binascii.Error, ValueError):
            raise ValueError("is not a cursor this API gave: start again without it") from None
    views = list_products(db_session(), after=after, limit=size + 1)
    if len(views) <= size:
        return views, None
    return views[:size], base64.urlsafe_b64encode(views[size - 1].sku.encode()).decode()


@blueprint.get("/products")
def list_products_route() -> tuple[Response, int]:
    """Products by SKU, `limit` at a time; `next_cursor` continues the list (null at its end)."""
    problems: list[tuple[str | None, str]] = []
    limit = None
    try:
        limit = _int_arg("limit")
    except ValueError as problem:
        problems.append(("limit", str(problem)))
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        problems.append(("limit", f"must be between 1 and {MAX_LIMIT}"))
    views: list[ProductView] = []
    next_cursor = None
    if not problems:
        try:
            views, next_cursor = _page(
                request.args.get("cursor", "").strip(), limit or DEFAULT_LIMIT
            )
        except ValueError as problem:
            problems.append(("cursor", str(problem)))
    if problems:
        return errors(400, problems)
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
            actor=_actor(),
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

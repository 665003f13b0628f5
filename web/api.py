"""The JSON API under `/api`, for the shop's systems: record sales, cancel them, read follow-ups.

Every route needs `Authorization: Bearer TOKEN` (tokens from `postventa token create`). Errors
always have the shape `{"errors": [{"field": str|null, "message": str}]}`, so an integration
handles one format whatever went wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException

from scheduler.accounts import find_api_token
from scheduler.clock import utcnow
from scheduler.db import MAX_ID
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import ApiToken, FollowUp, Sale
from scheduler.sending.intake import validate_sale
from scheduler.sending.replanning import cancel_sale
from scheduler.sending.sales import differences, record_sale
from web.api_paging import page, read_paging
from web.database import as_id, db_session, services

blueprint = Blueprint("api", __name__, url_prefix="/api")

PUBLIC = "api.openapi_document"  # what the API takes and answers: no data, no token
CANCEL_REASON = "cancelled through the API"
# Intake names its fields flat (as the CSV columns are); the API body nests them.
NESTED_FIELDS = {
    "customer_name": "customer.name",
    "phone": "customer.phone",
    "email": "customer.email",
    "locale": "customer.locale",
    "timezone": "customer.timezone",
    "whatsapp_opt_in": "customer.whatsapp_opt_in",
    "product_sku": "product.sku",
    "product_name": "product.name",
    "category": "product.category",
    "renewal_days": "product.renewal_days",
}


def error(status: int, message: str, field: str | None = None) -> tuple[Response, int]:
    return errors(status, [(field, message)])


def errors(status: int, problems: Sequence[tuple[str | None, str]]) -> tuple[Response, int]:
    body = {"errors": [{"field": field, "message": message} for field, message in problems]}
    return jsonify(body), status


def timestamp(value: datetime | None) -> str | None:
    """UTC, to the second, always with a `Z`: one shape that every client can parse."""
    if value is None:
        return None
    # Not strftime: its %Y drops the leading zeros of a year before 1000 on Linux.
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


# --- authentication and errors ------------------------------------------------------------------


def _unauthorized(message: str) -> tuple[Response, int]:
    response, status = error(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="postventa"'
    return response, status


@blueprint.before_request
def require_token() -> tuple[Response, int] | None:
    """Refuse the request unless it carries a live token; remember which one, for the audit."""
    if request.endpoint == PUBLIC:
        return None
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("an API token is required: Authorization: Bearer TOKEN")
    session = db_session()
    row = find_api_token(session, token.strip(), utcnow())
    if row is None:
        return _unauthorized("the API token is not valid or has been revoked")
    session.commit()  # last_used_at, even when the request itself fails
    g.api_token = row
    return None


def api_actor() -> str:
    """Who the audit log says did it: the token's name."""
    token: ApiToken = g.api_token
    return f"api:{token.name}"[:100]  # audit_log.actor is 100 characters


@blueprint.errorhandler(HTTPException)
def http_error(exception: HTTPException) -> tuple[Response, int]:
    """Errors raised inside API views (a body too large, ...) answer JSON like the rest."""
    return error(exception.code or 500, exception.description or exception.name)


def json_error(exception: HTTPException) -> tuple[Response, int]:
    """An error under /api outside its views (an unknown path or method) answers JSON too.

    Routing errors happen before any blueprint is chosen: the app-wide error handler
    (web/errors.py) hands those under /api to this one.
    """
    response, status = http_error(exception)
    for name, value in exception.get_headers():
        if name == "Allow":  # a 405 says which methods the path takes
            response.headers["Allow"] = value
    return response, status


# --- serialising --------------------------------------------------------------------------------


def follow_up_json(
    row: FollowUp, *, detailed: bool = False, reason: bool = False
) -> dict[str, Any]:
    """`reason` adds why it is where it is (a step skipped because its time had passed)."""
    item: dict[str, Any] = {
        "id": row.id,
        "step": row.step.key,
        "channel": str(row.channel),
        "due_at": timestamp(row.due_at),
        "status": str(row.status),
    }
    if reason and not detailed:
        item["status_reason"] = row.status_reason
    if detailed:
        item |= {
            "sale_id": row.sale_id,
            "status_reason": row.status_reason,
            "sent_at": timestamp(row.sent_at),
        }
    return item


def sale_json(sale: Sale) -> dict[str, Any]:
    product = sale.product
    return {
        "id": sale.id,
        "external_id": sale.external_id,
        "status": str(sale.status),
        "sold_at": timestamp(sale.sold_at),
        "cancelled_at": timestamp(sale.cancelled_at),
        "customer": {"id": sale.customer.id, "name": sale.customer.name},
        "product": {"sku": product.sku, "name": product.name} if product else None,
        "amount": None if sale.amount is None else str(sale.amount),
        "currency": sale.currency,
        "attributes": sale.attributes,
    }


def _sale_with_follow_ups(sale: Sale) -> dict[str, Any]:
    """The sale and its follow-ups; a skipped one says why (its time had passed when the sale
    was recorded), and how many were skipped is given apart, so a shop's system can warn."""
    rows = (
        db_session()
        .scalars(
            select(FollowUp)
            .where(FollowUp.sale_id == sale.id)
            .options(selectinload(FollowUp.step))
            .order_by(FollowUp.due_at, FollowUp.id)
        )
        .all()
    )

    def skipped(row: FollowUp) -> bool:
        return row.status is FollowUpStatus.SKIPPED

    return {
        "sale": sale_json(sale),
        "follow_ups": [follow_up_json(row, reason=skipped(row)) for row in rows],
        "skipped_follow_ups": sum(1 for row in rows if skipped(row)),
    }


# --- routes -------------------------------------------------------------------------------------


def json_body(what: str) -> tuple[dict[str, Any], tuple[Response, int] | None]:
    """The request's JSON object, or the 400 that says why there is none."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the parser recurses once per `[` or `{`: 100 000 of them
        return {}, error(400, f"the body is nested too deeply to be {what}")
    if not isinstance(body, dict):
        return {}, error(400, "the body must be a JSON object (Content-Type: application/json)")
    return body, None


def _flatten(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """The API body as intake's flat mapping, and the problems with its shape."""
    problems: list[tuple[str | None, str]] = []
    parts: dict[str, Mapping[str, Any]] = {}
    for part in ("customer", "product"):
        value = body.get(part)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            problems.append((part, "must be an object"))
            value = {}
        parts[part] = value
    customer, product = parts["customer"], parts["product"]
    raw = {key: body.get(key) for key in ("external_id", "sold_at", "amount", "currency")}
    raw |= {
        "customer_name": customer.get("name"),
        "phone": customer.get("phone"),
        "email": customer.get("email"),
        "locale": customer.get("locale"),
        "timezone": customer.get("timezone"),
        "whatsapp_opt_in": customer.get("whatsapp_opt_in"),
        "product_sku": product.get("sku"),
        "product_name": product.get("name"),
        "category": product.get("category"),
        "renewal_days": product.get("renewal_days"),
        "attributes": body.get("attributes"),
    }
    return raw, problems


@blueprint.post("/sales")
def create_sale() -> tuple[Response, int]:
    """Record a sale and plan its follow-ups; the same external_id again returns the first one,
    or 409 with what differs when it comes with other content (`sales.differences`)."""
    body, refusal = json_body("a sale")
    if refusal is not None:
        return refusal
    config, now = services().config, utcnow()
    raw, problems = _flatten(body)
    result = validate_sale(raw, config, now=now)
    if isinstance(result, list):
        problems += [(NESTED_FIELDS.get(field, field), message) for field, message in result]
    if problems or isinstance(result, list):
        return errors(422, problems)
    session = db_session()
    sale, created = record_sale(session, result, config=config, now=now, actor=api_actor())
    differ = [] if created else differences(sale, result)
    if differ:
        session.rollback()
        again = f"{sale.external_id!r} is already recorded (sale {sale.id}) with other content"
        return errors(
            409,
            [("external_id", again)]
            + [(NESTED_FIELDS.get(field, field), message) for field, message in differ],
        )
    session.commit()
    return jsonify(_sale_with_follow_ups(sale)), 201 if created else 200


@blueprint.post("/sales/<int:sale_id>/cancel")
def cancel(sale_id: int) -> tuple[Response, int]:
    """Cancel a sale's pending follow-ups; cancelling twice answers the same as once."""
    session = db_session()
    sale = session.get(Sale, sale_id)
    if sale is None:
        return error(404, f"no sale with id {sale_id}")
    cancel_sale(session, sale, now=utcnow(), actor=api_actor(), reason=CANCEL_REASON)
    session.commit()
    return jsonify(_sale_with_follow_ups(sale)), 200


def _int_arg(name: str) -> int | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{text[:40]!r} is not a whole number")
    number = as_id(text)
    if number is None:
        raise ValueError(f"must be at most {MAX_ID}")
    return number


FOLLOW_UP_ORDER = (FollowUp.due_at, FollowUp.id)


@blueprint.get("/follow-ups")
def list_follow_ups() -> tuple[Response, int]:
    """Follow-ups by due time, optionally of one sale and in one status, a page at a time."""
    problems: list[tuple[str | None, str]] = []
    sale_id = None
    try:
        sale_id = _int_arg("sale_id")
    except ValueError as problem:
        problems.append(("sale_id", str(problem)))
    paging = read_paging(FOLLOW_UP_ORDER, problems)
    status = request.args.get("status", "").strip() or None
    if status is not None and status not in {member.value for member in FollowUpStatus}:
        known = ", ".join(FollowUpStatus)
        problems.append(("status", f"{status[:40]!r} is not a follow-up status (one of: {known})"))
    if problems:
        return errors(400, problems)
    query = select(FollowUp).options(selectinload(FollowUp.step))
    if sale_id is not None:
        query = query.where(FollowUp.sale_id == sale_id)
    if status is not None:
        query = query.where(FollowUp.status == FollowUpStatus(status))
    rows, next_cursor = page(db_session(), query, paging)
    follow_ups = [follow_up_json(row, detailed=True) for (row,) in rows]
    return jsonify(follow_ups=follow_ups, next_cursor=next_cursor), 200

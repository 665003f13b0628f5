"""The JSON API's customers: found by phone or email, a customer's whole story, and changes to
their details and consent on someone's word.

Routes on `web.api.blueprint`, so the same bearer tokens and JSON errors apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from scheduler import timeline
from scheduler.addresses import normalise_email, normalise_phone
from scheduler.clock import utcnow
from scheduler.customer_editing import (
    CONSENTS,
    PROFILE,
    AddressTaken,
    check_edit,
    edit_customer,
)
from scheduler.db import begin_writing
from scheduler.models import Customer
from web.api import (
    api_actor,
    blueprint,
    error,
    errors,
    follow_up_json,
    json_body,
    sale_json,
    timestamp,
)
from web.api_paging import page, read_paging
from web.api_people import case_json, message_json
from web.database import db_session, services

CUSTOMER_ORDER = (Customer.id,)
NULLABLE = {"phone", "email", "locale", "timezone"}  # back to none, or to the business's default
FIELDS = (*PROFILE, *CONSENTS, "by", "reason")
KNOWN = ", ".join(FIELDS)
Problem = tuple[str | None, str]


def customer_json(customer: Customer) -> dict[str, Any]:
    """The customer and their consent on each channel, with when and how it was given."""
    return {
        "id": customer.id,
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "locale": customer.locale,
        "timezone": customer.timezone,
        "sms_opt_out": customer.sms_opt_out,
        "sms_opt_out_at": timestamp(customer.sms_opt_out_at),
        "sms_opt_out_via": customer.sms_opt_out_via,
        "email_opt_out": customer.email_opt_out,
        "email_opt_out_at": timestamp(customer.email_opt_out_at),
        "email_opt_out_via": customer.email_opt_out_via,
        "email_bounced_at": timestamp(customer.email_bounced_at),
        "email_bounce_reason": customer.email_bounce_reason,
        "whatsapp_opt_in": customer.whatsapp_opt_in,
        "whatsapp_opt_in_at": timestamp(customer.whatsapp_opt_in_at),
        "whatsapp_opt_in_via": customer.whatsapp_opt_in_via,
        "whatsapp_opt_out": customer.whatsapp_opt_out,
        "whatsapp_opt_out_at": timestamp(customer.whatsapp_opt_out_at),
        "whatsapp_opt_out_via": customer.whatsapp_opt_out_via,
    }


def _with_timeline(customer: Customer) -> dict[str, Any]:
    as_json: dict[str, Callable[[Any], dict[str, Any]]] = {
        "sale": sale_json,
        "follow_up": lambda row: follow_up_json(row, detailed=True),
        "message": message_json,
        "case": lambda case: case_json(case, customer, []),
    }
    events = [
        {"type": event.kind, "at": timestamp(event.at), **as_json[event.kind](event.item)}
        for event in timeline.customer_timeline(db_session(), customer.id)
    ]
    return customer_json(customer) | {"timeline": events}


@blueprint.get("/customers")
def list_customers() -> tuple[Response, int]:
    """Customers by id, or the one with a phone (read as everywhere, `987 654 321` in the
    business's country) or an email (in any case), a page at a time."""
    problems: list[Problem] = []
    paging = read_paging(CUSTOMER_ORDER, problems)
    query = select(Customer)
    for name, normalise in (
        ("phone", lambda text: normalise_phone(text, services().config.business.country)),
        ("email", normalise_email),
    ):
        text = request.args.get(name, "").strip()
        if not text:
            continue
        try:
            query = query.where(getattr(Customer, name) == normalise(text[:300]))
        except ValueError as problem:
            problems.append((name, str(problem)))
    if problems:
        return errors(400, problems)
    rows, next_cursor = page(db_session(), query, paging)
    return jsonify(customers=[customer_json(row) for (row,) in rows], next_cursor=next_cursor), 200


# One rule for both methods: split over two, an id beyond the converter's range answers 405
# (werkzeug checks the method before the converter) instead of 404.
@blueprint.route("/customers/<int:customer_id>", methods=["GET", "PATCH"])
def customer_timeline(customer_id: int) -> tuple[Response, int]:
    """The customer, their consent, and everything that happened, oldest first (PATCH:
    `change_customer`)."""
    if request.method == "PATCH":
        return change_customer(customer_id)
    customer = db_session().get(Customer, customer_id)
    if customer is None:
        return error(404, f"no customer {customer_id}")
    return jsonify(_with_timeline(customer)), 200


def _typed(
    body: dict[str, Any],
) -> tuple[dict[str, str | None], dict[str, bool], dict[str, str], list[Problem]]:
    """The body's details, consents, and who and why, and what is wrong with their names or
    types (every problem, as the checks that follow also report all of theirs)."""
    problems: list[Problem] = []
    profile: dict[str, str | None] = {}
    consents: dict[str, bool] = {}
    words: dict[str, str] = {}
    for name, value in body.items():
        if name not in FIELDS:
            problems.append((name[:100], f"is not a field of a customer (one of: {KNOWN})"))
        elif name in CONSENTS:
            if isinstance(value, bool):
                consents[name] = value
            else:
                problems.append((name, "must be true or false"))
        elif name in PROFILE and (isinstance(value, str) or value is None and name in NULLABLE):
            profile[name] = value
        elif name not in PROFILE and isinstance(value, str | None):
            words[name] = value or ""
        else:
            problems.append((name, "must be text" + (" or null" if name in NULLABLE else "")))
    return profile, consents, words, problems


def change_customer(customer_id: int) -> tuple[Response, int]:
    """Change a customer's name, phone, email, locale, time zone or consent. A consent change
    says who asked (`by`) and why (`reason`), as on the customer's page; a phone or email
    another customer has is 409. Answers the customer as GET shows them."""
    body, refusal = json_body("a change to a customer")
    if refusal is not None:
        return refusal
    profile, consents, words, problems = _typed(body)
    checked = check_edit(
        profile,
        consents,
        by=words.get("by"),
        reason=words.get("reason"),
        region=services().config.business.country,
    )
    if isinstance(checked, list):
        problems += checked
    if problems or isinstance(checked, list):
        return errors(422, problems)
    session = db_session()
    begin_writing(session)
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        return error(404, f"no customer {customer_id}")
    try:
        refused = edit_customer(session, customer, checked, now=utcnow(), actor=api_actor())
    except AddressTaken as clash:
        session.rollback()
        message = f"another customer has this {clash.field} (customer {clash.customer_id})"
        return error(409, message, clash.field)
    except IntegrityError:  # another request gave it to someone at the same moment
        session.rollback()
        field = "phone" if "phone" in checked.profile else "email"
        return error(409, f"another customer has this {field}", field)
    if refused:
        session.rollback()
        return errors(422, refused)
    session.commit()
    return jsonify(_with_timeline(customer)), 200

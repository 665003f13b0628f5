"""The JSON API's cases and customers: what a person must answer, and a customer's whole story.

Routes on `web.api.blueprint`, so the same bearer tokens and JSON errors apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import select

from scheduler import timeline
from scheduler.lifecycle import CaseStatus
from scheduler.models import Case, Customer, Message
from web.api import blueprint, error, follow_up_json, sale_json, timestamp
from web.database import db_session

MAX_CASES = 500


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": str(message.direction),
        "channel": str(message.channel),
        "body": message.body,
        "at": timestamp(message.created_at),
        "status": message.status,
        "label": message.label,
        "score": message.score,
    }


def case_json(case: Case, customer: Customer, messages: list[Message]) -> dict[str, Any]:
    return {
        "id": case.id,
        "customer": {"id": customer.id, "name": customer.name},
        "status": str(case.status),
        "reason": case.reason,
        "opened_at": timestamp(case.opened_at),
        "first_response_due_at": timestamp(case.first_response_due_at),
        "first_responded_at": timestamp(case.first_responded_at),
        "resolved_at": timestamp(case.resolved_at),
        "messages": [
            {"direction": str(m.direction), "body": m.body, "at": timestamp(m.created_at)}
            for m in messages
        ],
    }


def _messages_by_case(case_ids: list[int]) -> dict[int, list[Message]]:
    grouped: dict[int, list[Message]] = {case_id: [] for case_id in case_ids}
    rows = db_session().scalars(
        select(Message)  # the conversation with the customer, not the notices to staff
        .where(Message.case_id.in_(case_ids), Message.customer_id.isnot(None))
        .order_by(Message.created_at, Message.id)
    )
    for message in rows:
        if message.case_id is not None:
            grouped[message.case_id].append(message)
    return grouped


@blueprint.get("/cases")
def list_cases() -> tuple[Response, int]:
    """Cases, the most urgent first (open ones by deadline), with their conversation."""
    status = request.args.get("status", "").strip() or None
    if status is not None and status not in {member.value for member in CaseStatus}:
        known = ", ".join(CaseStatus)
        return error(400, f"{status!r} is not a case status (one of: {known})", "status")
    query = select(Case, Customer).join(Customer, Case.customer_id == Customer.id)
    if status is not None:
        query = query.where(Case.status == CaseStatus(status))
    query = query.order_by(Case.status, Case.first_response_due_at, Case.id).limit(MAX_CASES)
    rows = db_session().execute(query).all()
    messages = _messages_by_case([case.id for case, _ in rows])
    cases = [case_json(case, customer, messages[case.id]) for case, customer in rows]
    return jsonify(cases=cases), 200


@blueprint.get("/customers/<int:customer_id>")
def customer_timeline(customer_id: int) -> tuple[Response, int]:
    """The customer, their consent, and everything that happened, oldest first."""
    session = db_session()
    customer = session.get(Customer, customer_id)
    if customer is None:
        return error(404, f"no customer {customer_id}")
    as_json: dict[str, Callable[[Any], dict[str, Any]]] = {
        "sale": lambda sale: sale_json(sale),
        "follow_up": lambda row: follow_up_json(row, detailed=True),
        "message": message_json,
        "case": lambda case: case_json(case, customer, []),
    }
    events = [
        {"type": event.kind, "at": timestamp(event.at), **as_json[event.kind](event.item)}
        for event in timeline.customer_timeline(session, customer_id)
    ]
    body = {
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
        "timeline": events,
    }
    return jsonify(body), 200

"""The JSON API's cases: what a person must answer, with the conversation so far.

Routes on `web.api.blueprint`, so the same bearer tokens and JSON errors apply.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import select

from scheduler.lifecycle import CaseStatus
from scheduler.models import Case, Customer, Message
from web.api import blueprint, errors, timestamp
from web.api_paging import page, read_paging
from web.database import db_session

# Open before resolved (statuses are stored as their words), each by its deadline.
CASE_ORDER = (Case.status, Case.first_response_due_at, Case.id)


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
    """Cases, the most urgent first (open ones by deadline), with their conversation, a page at
    a time."""
    problems: list[tuple[str | None, str]] = []
    paging = read_paging(CASE_ORDER, problems)
    status = request.args.get("status", "").strip() or None
    if status is not None and status not in {member.value for member in CaseStatus}:
        known = ", ".join(CaseStatus)
        problems.append(("status", f"{status[:40]!r} is not a case status (one of: {known})"))
    if problems:
        return errors(400, problems)
    query = select(Case, Customer).join(Customer, Case.customer_id == Customer.id)
    if status is not None:
        query = query.where(Case.status == CaseStatus(status))
    rows, next_cursor = page(db_session(), query, paging)
    messages = _messages_by_case([case.id for case, _ in rows])
    cases = [case_json(case, customer, messages[case.id]) for case, customer in rows]
    return jsonify(cases=cases, next_cursor=next_cursor), 200

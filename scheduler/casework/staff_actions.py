"""What staff do with a case: answer the customer, take it, write notes, give a remedy.

Resolving and reopening are in `scheduler.casework.cases`. Every action is audited with who did it.
Replies are queued like the case's other messages and sent by the worker within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.casework.notices import notify_remedy_request
from scheduler.config import Config, RemediesConfig
from scheduler.lifecycle import CaseStatus, Channel, RemedyStatus, Role
from scheduler.models import Case, CaseNote, Customer, Remedy, User
from scheduler.sending.queueing import queue
from scheduler.sending.sandbox import WHATSAPP_MAX_CHARS
from scheduler.sending.whatsapp import in_window, last_whatsapp_from
from scheduler.typed_text import typed_text

MAX_REPLY = 1600  # Twilio's limit for one SMS body (ten segments)
MAX_EMAIL = 10_000  # an email reply, a note
MAX_SUBJECT = 200


class CaseworkError(ValueError):
    """An action that cannot be done as asked; the message says why, for the person."""


def written(text: str | None, *, empty: str, what: str, most: int) -> str:
    """What a person typed for a case, trimmed and within `most` characters."""
    return typed_text(text, empty=empty, what=what, most=most, error=CaseworkError)


class RemedyKind(StrEnum):
    DISCOUNT = "discount"  # value: a percentage
    REFUND = "refund"  # value: an amount in the sale's currency
    REPLACEMENT = "replacement"  # no value
    OTHER = "other"  # described in words; staff always ask the owner


def actor(user: User) -> str:
    return audit.by_user(user.id)


REFUSALS = {  # (opted out, no address), per channel
    Channel.SMS: (
        "the customer opted out of SMS: answer by email, or call them",
        "the customer has no phone number",
    ),
    Channel.EMAIL: ("the customer opted out of email", "the customer has no email address"),
    Channel.WHATSAPP: (
        "the customer opted out of WhatsApp: answer by SMS or email",
        "the customer has no phone number",
    ),
}
MOST = {Channel.SMS: MAX_REPLY, Channel.EMAIL: MAX_EMAIL, Channel.WHATSAPP: WHATSAPP_MAX_CHARS}
WHAT = {Channel.SMS: "an SMS", Channel.EMAIL: "an email", Channel.WHATSAPP: "a WhatsApp message"}


def reply_address(customer: Customer, channel: Channel) -> str:
    """Where a reply on `channel` goes, or why it cannot (no address, or the customer said no:
    an opt-out is obeyed by people as much as by the cadences)."""
    opted_out, no_address = REFUSALS[channel]
    if customer.opt_out_at(channel) is not None:
        raise CaseworkError(opted_out)
    address = customer.address(channel)
    if not address:
        raise CaseworkError(no_address)
    return address


def reply_to_customer(
    session: Session,
    case: Case,
    customer: Customer,
    *,
    user: User,
    channel: Channel,
    body: str,
    subject: str | None,
    now: datetime,
) -> None:
    """Queue a person's answer to the customer; the first one meets the case's deadline. On
    WhatsApp only inside the window the customer's last message there opened: after it, only
    an approved template may go, and a person's answer is not one."""
    body = written(body, empty="the reply is empty", what=WHAT[channel], most=MOST[channel])
    to = reply_address(customer, channel)
    if channel is Channel.EMAIL and customer.email_bounced_at is not None:
        raise CaseworkError("the customer's email address bounced: answer by SMS or WhatsApp")
    if channel is Channel.WHATSAPP:
        last = last_whatsapp_from(session, [customer]).get(to)
        if not in_window(last, now):
            raise CaseworkError(
                "WhatsApp's 24-hour window is closed (it opens when the customer writes there): "
                "answer by SMS or email"
            )
    if channel is Channel.EMAIL:
        subject = written(
            subject, empty="an email needs a subject", what="a subject", most=MAX_SUBJECT
        )
    reply = queue(
        session,
        case_id=case.id,
        channel=channel,
        to=to,
        now=now,
        customer_id=customer.id,
        subject=subject if channel is Channel.EMAIL else None,
        body=body,
    )
    reply.sent_by_id = user.id
    first = case.first_responded_at is None
    if first:
        case.first_responded_at = now
    audit.record(
        session,
        at=now,
        actor=actor(user),
        action="case.reply",
        entity_type="case",
        entity_id=case.id,
        channel=channel.value,
        first_response=first,
    )


def assign(session: Session, case: Case, assignee: User | None, *, by: User, now: datetime) -> None:
    """Give the case to a person (or to nobody), so that everyone knows whose it is."""
    if assignee is not None and not assignee.active:
        raise CaseworkError(f"{assignee.email} cannot log in any more")
    case.assignee_id = assignee.id if assignee else None
    audit.record(
        session,
        at=now,
        actor=actor(by),
        action="case.assign",
        entity_type="case",
        entity_id=case.id,
        assignee=assignee.email if assignee else None,
    )


def add_note(session: Session, case: Case, *, author: User, body: str, now: datetime) -> CaseNote:
    """An internal note: for the team, never sent to the customer."""
    body = written(body, empty="the note is empty", what="a note", most=MAX_EMAIL)
    note = CaseNote(case_id=case.id, author_id=author.id, body=body, created_at=now)
    session.add(note)
    audit.record(
        session,
        at=now,
        actor=actor(author),
        action="case.note",
        entity_type="case",
        entity_id=case.id,
    )
    return note


@dataclass(frozen=True)
class RemedyRequest:
    kind: RemedyKind
    description: str
    value: Decimal | None  # a percentage for a discount, an amount for a refund


MAX_VALUE = Decimal("9999999999.99")  # Numeric(12, 2)
CENT = Decimal("0.01")


def check_remedy(request: RemedyRequest) -> list[str]:
    """What is wrong with a remedy as entered (empty when nothing is)."""
    problems = []
    if not request.description.strip():
        problems.append("say what is given, in words the customer would understand")
    elif len(request.description.strip()) > 500:
        problems.append("describe it in at most 500 characters")
    value = request.value
    if request.kind in (RemedyKind.DISCOUNT, RemedyKind.REFUND):
        if value is None or not value.is_finite() or value.quantize(CENT) <= 0:
            problems.append(f"a {request.kind.value} needs a value of at least 0.01")
        elif request.kind is RemedyKind.DISCOUNT and value > 100:
            problems.append("a discount is a percentage: at most 100")
        elif value > MAX_VALUE:
            problems.append(f"at most {MAX_VALUE}")
    elif value is not None:
        problems.append(f"a {request.kind.value} takes no value: say what is given in words")
    return problems


def within_limit(
    request: RemedyRequest, role: Role, limits: RemediesConfig, already: Decimal = Decimal(0)
) -> bool:
    """Whether `role` may give this without asking: owners always; staff up to the limits the
    owner set, counting what staff already gave of the same kind on the case (five 10%
    discounts are not one)."""
    if role is Role.OWNER:
        return True
    total = float((request.value or 0) + already)
    if request.kind is RemedyKind.DISCOUNT:
        return total <= limits.staff_max_discount_percent
    if request.kind is RemedyKind.REFUND:
        return total <= limits.staff_max_refund
    if request.kind is RemedyKind.REPLACEMENT:
        return limits.staff_may_replace
    return False


def _given(session: Session, case: Case, kind: RemedyKind) -> Decimal:
    """What was already granted of `kind` on the case."""
    total = session.scalar(
        select(func.coalesce(func.sum(Remedy.value), 0)).where(
            Remedy.case_id == case.id,
            Remedy.kind == kind.value,
            Remedy.status == RemedyStatus.GRANTED,
        )
    )
    return Decimal(total or 0)


def record_remedy(
    session: Session,
    case: Case,
    request: RemedyRequest,
    *,
    user: User,
    config: Config,
    now: datetime,
) -> Remedy:
    """Record what was given; above the person's limit it is a request, and the owners are
    asked by email."""
    problems = check_remedy(request)
    if problems:
        raise CaseworkError("; ".join(problems))
    if case.status is not CaseStatus.OPEN:
        raise CaseworkError("the case is resolved: a remedy belongs to an open case")
    value = request.value.quantize(CENT) if request.value is not None else None
    request = RemedyRequest(request.kind, request.description, value)
    allowed = within_limit(request, user.role, config.remedies, _given(session, case, request.kind))
    remedy = Remedy(
        case_id=case.id,
        kind=request.kind.value,
        description=request.description.strip(),
        value=value,
        granted_by_id=user.id,
        approved_by_id=user.id if allowed and user.role is Role.OWNER else None,
        status=RemedyStatus.GRANTED if allowed else RemedyStatus.REQUESTED,
        created_at=now,
        decided_at=now if allowed else None,
    )
    session.add(remedy)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor(user),
        action=f"remedy.{remedy.status.value}",
        entity_type="case",
        entity_id=case.id,
        remedy_id=remedy.id,
        kind=remedy.kind,
        value=str(remedy.value) if remedy.value is not None else None,
    )
    if not allowed:
        notify_remedy_request(session, case, remedy, asked_by=user.email, config=config, now=now)
    return remedy


def withdraw_remedy(session: Session, remedy: Remedy, *, user: User, now: datetime) -> None:
    """The person who asked the owner takes the request back (to give something else, or to
    resolve the case without it); the audit log keeps what it was."""
    if remedy.status is not RemedyStatus.REQUESTED:
        raise CaseworkError(f"this remedy was already {remedy.status.value}")
    if remedy.granted_by_id != user.id:
        raise CaseworkError("only the person who asked can withdraw a request")
    audit.record(
        session,
        at=now,
        actor=actor(user),
        action="remedy.withdraw",
        entity_type="case",
        entity_id=remedy.case_id,
        remedy_id=remedy.id,
        kind=remedy.kind,
        value=str(remedy.value) if remedy.value is not None else None,
        description=remedy.description,
    )
    session.delete(remedy)


def decide_remedy(
    session: Session, remedy: Remedy, *, owner: User, approve: bool, now: datetime
) -> None:
    """The owner's answer to a remedy above a staff member's limit."""
    if owner.role is not Role.OWNER:
        raise CaseworkError("only an owner can approve a remedy above the staff limits")
    if remedy.status is not RemedyStatus.REQUESTED:
        raise CaseworkError(f"this remedy was already {remedy.status.value}")
    remedy.status = RemedyStatus.GRANTED if approve else RemedyStatus.DECLINED
    remedy.approved_by_id, remedy.decided_at = (owner.id if approve else None), now
    audit.record(
        session,
        at=now,
        actor=actor(owner),
        action=f"remedy.{remedy.status.value}",
        entity_type="case",
        entity_id=remedy.case_id,
        remedy_id=remedy.id,
    )

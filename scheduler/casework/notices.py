"""Telling people: staff at once when a case opens, the owner when one is past its deadline.

Notices are messages like any other (kept, with their case), queued in the request that opened
the case and sent by the worker, so a webhook answers Twilio at once. A case is escalated once
per level: at its deadline, then every `first_response_hours` of opening time after, up to
`cases.escalation_levels`, each level recorded. Each person reads a notice in their own
language (their log-in's); an address that is nobody's log-in, in the business's.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from babel.dates import format_datetime
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler import audit
from scheduler.casework.business_hours import add_opening_hours
from scheduler.casework.notice_texts import NoticeTexts, texts_for
from scheduler.casework.recipients import recipients
from scheduler.config import Config
from scheduler.lifecycle import CaseStatus, Channel, Direction, Role
from scheduler.models import Case, Customer, Message, Remedy, User
from scheduler.sending.delivery import MessageStatus
from scheduler.sending.transports import Failure, Outgoing, Transport, TransportError

log = logging.getLogger(__name__)

STALE = timedelta(minutes=10)  # a claim older than this belongs to a worker that died
GIVE_UP = timedelta(days=1)


def case_link(case: Case, config: Config) -> str:
    return f"{config.business.base_url}/cases/{case.id}"


def _when(moment: datetime, config: Config, locale: str) -> str:
    text = format_datetime(moment.astimezone(config.business.tz), "EEE d MMM HH:mm", locale=locale)
    return " ".join(text.split())


def _languages(session: Session, addresses: Sequence[str], config: Config) -> dict[str, str]:
    """Each address's language: that of the user who logs in with it, else the business's."""
    folded = {address.lower() for address in addresses}
    users = session.execute(
        select(func.lower(User.email), User.locale).where(func.lower(User.email).in_(folded))
    )
    known = {email: locale for email, locale in users}
    return {a: known.get(a.lower()) or config.business.locale for a in addresses}


def queue(
    session: Session,
    case: Case,
    *,
    channel: Channel,
    to: str,
    subject: str | None,
    body: str,
    now: datetime,
    customer_id: int | None = None,
) -> Message:
    """Queue a message about `case` for the worker to send: a notice to staff, or, with the
    customer's id, a message to the customer (then part of the case's conversation)."""
    message = Message(
        customer_id=customer_id,
        case_id=case.id,
        direction=Direction.OUTBOUND,
        channel=channel,
        from_address="",
        to_address=to,
        subject=subject,
        body=body,
        status=MessageStatus.NOTICE,
        created_at=now,
        status_updated_at=now,
    )
    session.add(message)
    return message


def notify_new_case(
    session: Session,
    case: Case,
    customer: Customer,
    message: Message,
    *,
    config: Config,
    now: datetime,
) -> int:
    """Queue the notices for a case just opened; returns how many."""
    link = case_link(case, config)

    def subject(texts: NoticeTexts, locale: str) -> str:
        return texts.new_subject.format(
            customer=customer.name,
            reason=texts.reasons.get(case.reason or "", case.reason),
            due=_when(case.first_response_due_at, config, locale),
        )

    told = recipients(session, config)
    for address, locale in _languages(session, told.new_case, config).items():
        texts = texts_for(locale, config.business.locale)
        body = texts.new_body.format(
            customer=customer.name,
            address=customer.phone or customer.email,
            message=message.body,
            link=link,
        )
        queue(
            session,
            case,
            channel=Channel.EMAIL,
            to=address,
            subject=subject(texts, locale),
            body=body,
            now=now,
        )
    locale = config.business.locale  # a phone number is nobody's log-in
    short = f"{subject(texts_for(locale, locale), locale)}. {message.body[:80]} {link}"
    for phone in told.new_case_sms:
        queue(session, case, channel=Channel.SMS, to=phone, subject=None, body=short, now=now)
    return len(told.new_case) + len(told.new_case_sms)


def notify_remedy_request(
    session: Session,
    case: Case,
    remedy: Remedy,
    *,
    asked_by: str,
    config: Config,
    now: datetime,
) -> int:
    """Ask every owner who can log in to approve a remedy above a staff member's limit."""
    value = f" {remedy.value}" if remedy.value is not None else ""
    owners = session.execute(
        select(User.email, User.locale).where(User.role == Role.OWNER, User.active)
    ).all()
    for address, locale in owners:
        texts = texts_for(locale, config.business.locale)
        what = f"{texts.kinds.get(remedy.kind, remedy.kind)}{value}: {remedy.description}"
        subject = texts.remedy_subject.format(what=what)[:200]
        body = texts.remedy_body.format(who=asked_by, what=what, link=case_link(case, config))
        queue(session, case, channel=Channel.EMAIL, to=address, subject=subject, body=body, now=now)
    return len(owners)


def escalate_overdue(session: Session, *, config: Config, now: datetime) -> int:
    """Raise each overdue, unanswered case one level (at most once per pass); returns how many."""
    levels = config.cases.escalation_levels
    overdue = recipients(session, config).overdue
    if not levels or not overdue:
        return 0  # nobody to tell: a level raised in silence would only look like action
    rows = session.execute(
        select(Case, Customer)
        .join(Customer, Case.customer_id == Customer.id)
        .where(
            Case.status == CaseStatus.OPEN,
            Case.first_responded_at.is_(None),
            Case.escalation_level < levels,
            Case.first_response_due_at <= now,
        )
        .with_for_update(of=Case, skip_locked=True)
    ).all()
    raised = 0
    languages = _languages(session, overdue, config) if rows else {}
    for case, customer in rows:
        threshold = case.first_response_due_at
        for _ in range(case.escalation_level):  # each level one more deadline's worth later
            threshold = add_opening_hours(
                threshold,
                config.cases.first_response_hours,
                config.cases.opening_hours,
                config.business.tz,
            )
        if now < threshold:
            continue
        case.escalation_level += 1
        for address, locale in languages.items():
            texts = texts_for(locale, config.business.locale)
            subject = texts.overdue_subject.format(customer=customer.name)
            body = texts.overdue_body.format(
                customer=customer.name,
                due=_when(case.first_response_due_at, config, locale),
                level=case.escalation_level,
                link=case_link(case, config),
            )
            queue(
                session,
                case,
                channel=Channel.EMAIL,
                to=address,
                subject=subject,
                body=body,
                now=now,
            )
        audit.record(
            session,
            at=now,
            actor="worker",
            action="case.escalate",
            entity_type="case",
            entity_id=case.id,
            level=case.escalation_level,
        )
        raised += 1
    return raised


OPTED_OUT = "not sent: the customer opted out of this channel after it was queued"


def _opted_out(session: Session, messages: Sequence[Message]) -> list[Message]:
    """Messages to customers who have since said no on that channel: a STOP that arrives while
    a reply waits for the worker is obeyed."""
    ids = {m.customer_id for m in messages if m.customer_id is not None}
    if not ids:
        return []
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    refused = []
    for message in messages:
        customer = customers.get(message.customer_id) if message.customer_id else None
        if customer is not None and customer.opt_out_at(message.channel) is not None:
            refused.append(message)
    return refused


def send_notices(
    sessions: sessionmaker[Session],
    transports: Mapping[Channel, Transport],
    *,
    now: datetime,
    limit: int = 100,
) -> Counter[str]:
    """Send queued notices: claimed first (so two workers never send one twice), then sent
    one by one; a failure is recorded on the notice, which is not retried."""
    counts: Counter[str] = Counter()
    with sessions.begin() as session:
        # A worker that died with notices claimed: let them go again (a notice to staff sent
        # twice is better than one never sent).
        session.execute(
            update(Message)
            .where(
                Message.status == MessageStatus.NOTICE_SENDING,
                Message.status_updated_at < now - STALE,
            )
            .values(status=MessageStatus.NOTICE),
            execution_options={"synchronize_session": False},
        )
        ids = list(
            session.scalars(
                select(Message.id)
                .where(Message.status == MessageStatus.NOTICE)
                .order_by(Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return counts
        session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == MessageStatus.NOTICE)
            .values(status=MessageStatus.NOTICE_SENDING, status_updated_at=now),
            execution_options={"synchronize_session": False},
        )
        rows = session.scalars(select(Message).where(Message.id.in_(ids))).all()
        refused = _opted_out(session, rows)
        for message in refused:
            message.status, message.error_message = MessageStatus.NOTICE_FAILED, OPTED_OUT
            counts["notices_failed"] += 1
        notices = [
            (m.id, Outgoing(f"notice:{m.id}", m.channel, m.to_address, m.body, m.subject))
            for m in rows
            if m not in refused
        ]
        created = {m.id: m.created_at for m in rows}
    for notice_id, outgoing in notices:
        transport = transports[outgoing.channel]
        values: dict[str, object] = {"status_updated_at": now}
        try:
            sent = transport.send(outgoing)
            values |= {
                "status": sent.status,
                "provider_id": sent.provider_id,
                "from_address": transport.sender,
            }
            counts["notices_sent"] += 1
        except TransportError as error:
            log.warning("notice %d not sent: %s", notice_id, error)
            # A passing failure waits for the next pass, for a day; then it is given up.
            again = error.failure is Failure.RETRY and now - created[notice_id] < GIVE_UP
            values |= {
                "status": MessageStatus.NOTICE if again else MessageStatus.NOTICE_FAILED,
                "error_code": error.code,
                "error_message": str(error),
            }
            counts["notices_retrying" if again else "notices_failed"] += 1
        except Exception as error:  # noqa: BLE001 - a transport bug must not strand the rest
            log.exception("notice %d not sent", notice_id)
            values |= {"status": MessageStatus.NOTICE_FAILED, "error_message": repr(error)}
            counts["notices_failed"] += 1
        with sessions.begin() as session:
            session.execute(update(Message).where(Message.id == notice_id).values(**values))
    return counts


def sweep(
    sessions: sessionmaker[Session],
    config: Config,
    transports: Mapping[Channel, Transport],
    *,
    now: datetime,
) -> Counter[str]:
    """The case side of a worker pass: escalate what is overdue, send what is queued."""
    with sessions.begin() as session:
        escalated = escalate_overdue(session, config=config, now=now)
    counts = send_notices(sessions, transports, now=now)
    counts["escalated"] = escalated
    return counts

"""Telling people: staff at once when a case opens, the owner when one is past its deadline.

Notices are messages like any other (kept, with their case), queued in the request that opened
the case (`sending.queued.queue`) and sent by the worker on the path every message takes, so a
webhook answers Twilio at once and a notice is never sent twice. A case is escalated once
per level: at its deadline, then every `first_response_hours` of opening time after, up to
`cases.escalation_levels`, each level recorded. Each person reads a notice in their own
language (their log-in's); an address that is nobody's log-in, in the business's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.casework.business_hours import add_opening_hours
from scheduler.casework.notice_texts import NoticeTexts, texts_for
from scheduler.casework.recipients import recipients
from scheduler.config import Config
from scheduler.lifecycle import CaseStatus, Channel, MessageStatus, Role
from scheduler.models import Case, Customer, Message, Remedy, User
from scheduler.sending.queueing import queue


def case_link(case: Case, config: Config) -> str:
    return f"{config.business.base_url}/cases/{case.id}"


def _when(moment: datetime, config: Config, locale: str) -> str:
    from babel.dates import format_datetime  # here: a dispatch pass needs no Babel

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


def _notice(
    session: Session,
    case: Case,
    channel: Channel,
    to: str,
    subject: str | None,
    body: str,
    now: datetime,
) -> None:
    """Queue a notice about `case` for the worker to send."""
    queue(session, case_id=case.id, channel=channel, to=to, subject=subject, body=body, now=now)


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
        _notice(session, case, Channel.EMAIL, address, subject(texts, locale), body, now)
    locale = config.business.locale  # a phone number is nobody's log-in
    short = f"{subject(texts_for(locale, locale), locale)}. {message.body[:80]} {link}"
    for phone in told.new_case_sms:
        _notice(session, case, Channel.SMS, phone, None, short, now)
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
        _notice(session, case, Channel.EMAIL, address, subject, body, now)
    return len(owners)


def past_deadline(now: datetime) -> ColumnElement[bool]:
    """A case open, unanswered and past its first-answer deadline."""
    return and_(
        Case.status == CaseStatus.OPEN,
        Case.first_responded_at.is_(None),
        Case.first_response_due_at <= now,
    )


def escalate_overdue(session: Session, *, config: Config, now: datetime) -> int:
    """Raise each overdue, unanswered case one level (at most once per pass); returns how many."""
    levels = config.cases.escalation_levels
    overdue = recipients(session, config).overdue
    if not levels or not overdue:
        return 0  # nobody to tell: a level raised in silence would only look like action
    rows = session.execute(
        select(Case, Customer)
        .join(Customer, Case.customer_id == Customer.id)
        .where(past_deadline(now), Case.escalation_level < levels)
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
            _notice(session, case, Channel.EMAIL, address, subject, body, now)
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


def unsent_notices(session: Session, case: Case) -> list[Message]:
    """The case's notices to staff that did not go out, or that nobody can tell went out (an
    SMTP connection that dropped mid-send): for the case page to say, since they are never
    sent twice."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.case_id == case.id,
                Message.customer_id.is_(None),
                Message.status.in_((MessageStatus.FAILED, MessageStatus.UNKNOWN)),
            )
            .order_by(Message.id)
        )
    )

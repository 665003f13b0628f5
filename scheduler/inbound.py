"""Replies by SMS: stored once, matched to their customer, and consent keywords acted on at once.

Twilio retries a webhook it did not see answered, so a message id is stored once and a retry
is answered the same way without acting twice. A sender we do not know is kept too, without a
customer, for a person to look at: nothing a customer writes is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.cases import open_case_for
from scheduler.classify import Reading, classify
from scheduler.composing import TemplateBook
from scheduler.config import Config
from scheduler.consent import Consent, Intent, read_consent
from scheduler.contacts import normalise_phone
from scheduler.customers import opt_in, opt_out
from scheduler.lifecycle import Channel, Direction
from scheduler.models import Customer, FollowUp, Message
from scheduler.rendering import RenderError, TemplateSource, render_part
from scheduler.scheduling import schedule_after_score

KEYWORD_TEMPLATES = {
    Intent.OPT_OUT: "keyword_opt_out",
    Intent.OPT_IN: "keyword_opt_in",
    Intent.HELP: "keyword_help",
}
RECEIVED = "received"


@dataclass(frozen=True)
class InboundSms:
    provider_id: str  # Twilio's MessageSid
    sender: str  # From, as Twilio sends it
    recipient: str  # To: our number
    body: str


@dataclass(frozen=True)
class Received:
    message: Message
    duplicate: bool  # a retry of a message already stored
    consent: Consent | None
    reply: str | None  # what to answer in the TwiML, if anything


def _customer_for(session: Session, sender: str, config: Config) -> Customer | None:
    try:
        phone = normalise_phone(sender, config.business.country)
    except ValueError:
        return None  # a short code or an alphanumeric sender: nobody we wrote to
    return session.scalars(
        select(Customer).where(Customer.phone == phone).order_by(Customer.id)
    ).first()


def _latest_follow_up(session: Session, customer: Customer) -> int | None:
    """The follow-up this is most likely a reply to: the latest one we texted them."""
    return session.scalar(
        select(Message.follow_up_id)
        .where(
            Message.customer_id == customer.id,
            Message.direction == Direction.OUTBOUND,
            Message.channel == Channel.SMS,
            Message.follow_up_id.isnot(None),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )


def receive_sms(session: Session, sms: InboundSms, *, config: Config, now: datetime) -> Received:
    """Store the reply (once) and act on a consent keyword; the caller commits."""
    existing = session.scalar(select(Message).where(Message.provider_id == sms.provider_id))
    if existing is not None:
        return Received(existing, True, None, None)
    customer = _customer_for(session, sms.sender, config)
    message = Message(
        customer_id=customer.id if customer else None,
        follow_up_id=_latest_follow_up(session, customer) if customer else None,
        direction=Direction.INBOUND,
        channel=Channel.SMS,
        from_address=sms.sender,
        to_address=sms.recipient,
        body=sms.body,
        provider_id=sms.provider_id,
        status=RECEIVED,
        created_at=now,
        status_updated_at=now,
    )
    try:
        with session.begin_nested():  # the same retry racing on another worker
            session.add(message)
    except IntegrityError:
        winner = session.scalar(select(Message).where(Message.provider_id == sms.provider_id))
        if winner is None:
            raise
        return Received(winner, True, None, None)
    consent = read_consent(sms.body)
    acted = customer is not None and consent is not None and _act(session, customer, consent, now)
    reply = _reply(session, customer, consent, config) if acted and consent else None
    reading = classify(sms.body)
    message.label, message.score = reading.label.value, reading.score
    message.needs_human = reading.needs_human
    if customer is not None:
        _route(session, customer, message, reading, config=config, now=now)
    return Received(message, False, consent, reply)


def _route(
    session: Session, customer: Customer, message: Message, reading: Reading, *, config: Config,
    now: datetime,
) -> None:  # fmt: skip
    """A reply that needs a person goes into the customer's case; a score plans the steps it
    enables for the sale the reply answers (the hand-off after a low one belongs to its case)."""
    case_facts: dict[str, int] = {}
    if reading.needs_human:
        case, _opened = open_case_for(
            session, customer, message, reason=reading.label.value, config=config, now=now
        )
        case_facts = {"case_id": case.id}
    if reading.score is not None and message.follow_up_id is not None:
        follow_up = session.get(FollowUp, message.follow_up_id)
        if follow_up is not None:
            schedule_after_score(
                session, follow_up.sale, score=reading.score, at=now, config=config, now=now,
                facts=case_facts,
            )  # fmt: skip


def _act(session: Session, customer: Customer, consent: Consent, now: datetime) -> bool:
    """Apply the consent; returns whether it meant anything (a bare "si" from a customer who
    never opted out is an answer, not an opt-in)."""
    wording = f"replied {consent.keyword!r} by SMS" if consent.keyword else "asked by SMS to stop"
    if consent.intent is Intent.OPT_OUT:
        opt_out(session, customer, channel=Channel.SMS, via=wording, now=now, actor="customer")
        return True
    if consent.intent is Intent.OPT_IN:
        return opt_in(
            session, customer, channel=Channel.SMS, via=wording, now=now, actor="customer"
        )
    return True  # help: always worth an answer


def _reply(
    session: Session, customer: Customer | None, consent: Consent, config: Config
) -> str | None:
    """The confirmation to send back, unless Twilio already answers this keyword itself."""
    policy = config.sms.keyword_replies
    if policy == "none" or (policy == "twilio-gaps" and consent.handled_by_twilio):
        return None
    locale = consent.language or (customer.locale if customer else None) or config.business.locale
    template = TemplateBook.load(session).find(
        KEYWORD_TEMPLATES[consent.intent], Channel.SMS, locale, config.business.locale
    )
    if template is None:
        return None
    source = TemplateSource(template.name, Channel.SMS, template.locale, template.body)
    context = {"business": {"name": config.business.name}}
    try:
        return render_part(source.body, context, escaped=False, label=source.label("body"))
    except RenderError:
        return None  # an owner's broken edit must not cost the customer their opt-out

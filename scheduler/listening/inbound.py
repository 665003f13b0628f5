"""Replies by SMS and WhatsApp: stored once, matched to their customer, and consent keywords
acted on at once (Twilio acts on none on WhatsApp: we do).

Twilio retries a webhook it did not see answered, so a message id is stored once and a retry
is answered the same way without acting twice. A sender we do not know is kept too, without a
customer, for a person to look at: nothing a customer writes is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, true
from sqlalchemy.orm import Session, sessionmaker

from scheduler import audit
from scheduler.addresses import normalise_phone, phone_of
from scheduler.casework.cases import deadline_words, open_case_for, reopen_case
from scheduler.casework.notices import notify_new_case
from scheduler.casework.recipients import recipients
from scheduler.config import Config
from scheduler.consent import opt_in, opt_out
from scheduler.erasure import remember_no
from scheduler.lifecycle import CaseStatus, Channel, ConsentSource, Direction
from scheduler.listening.classify import Label, Lexicon, Reading, classify
from scheduler.listening.keywords import ANSWERS, Consent, Intent, fold, read_consent
from scheduler.listening.owner_words import owner_lexicon
from scheduler.listening.reply_store import InboundMessage, insert_reply
from scheduler.listening.themes import stored, themes_of, vocabulary
from scheduler.logs import on_commit
from scheduler.models import Case, Customer, FollowUp, Message
from scheduler.sending.composing import TemplateBook, channel_name, customer_vars
from scheduler.sending.planning import schedule_after_score
from scheduler.sending.queueing import queue
from scheduler.sending.sandbox import (
    WHATSAPP_MAX_CHARS,
    RenderError,
    TemplateSource,
    render_part,
)

KEYWORD_TEMPLATES = {
    Intent.OPT_OUT: "keyword_opt_out",
    Intent.OPT_IN: "keyword_opt_in",
    Intent.HELP: "keyword_help",
}
USE_START_TEMPLATE = "keyword_use_start"  # after Twilio's STOP, only START lifts its block
ACK_TEMPLATE = "case_ack"
# Templates that answer a customer who wrote; never a cadence step's.
ANSWER_TEMPLATES = frozenset({*KEYWORD_TEMPLATES.values(), USE_START_TEMPLATE, ACK_TEMPLATE})
BY = {Channel.SMS: "by SMS", Channel.WHATSAPP: "by WhatsApp", Channel.EMAIL: "by email"}
SCORE_PAYLOAD = re.compile(r"score[:_ -]?(10|[0-9])", re.IGNORECASE)


def reading_of(message: Message, lexicon: Lexicon) -> Reading:
    """How a reply reads; a quick-reply button whose payload is a rating ("score:0" to
    "score:10", as the owner sets it in the Content template) is read as that rating,
    whatever its label says. Any other button is read by its text."""
    payload = SCORE_PAYLOAD.fullmatch((message.button_payload or "").strip())
    if payload is not None:
        return classify(payload.group(1), lexicon)
    return classify(message.body, lexicon)


def _customers_for(session: Session, sender: str, config: Config) -> list[Customer]:
    """Every customer record with the sender's number, oldest first."""
    try:
        phone = normalise_phone(phone_of(sender), config.business.country)
    except ValueError:
        return []  # a short code or an alphanumeric sender: nobody we wrote to
    return list(
        session.scalars(select(Customer).where(Customer.phone == phone).order_by(Customer.id))
    )


# A reply by phone answers what went to the phone; a mail, what went by email.
ANSWERED_ON = {
    Channel.SMS: (Channel.SMS, Channel.WHATSAPP),
    Channel.WHATSAPP: (Channel.SMS, Channel.WHATSAPP),
    Channel.EMAIL: (Channel.EMAIL,),
}


def latest_follow_up(
    session: Session, customer_id: int, channel: Channel, before: datetime | None = None
) -> int | None:
    """The follow-up a reply on `channel` most likely answers: the latest one we sent to that
    kind of address (before the reply was written, for one matched by a person days later)."""
    return session.scalar(
        select(Message.follow_up_id)
        .where(
            Message.customer_id == customer_id,
            Message.direction == Direction.OUTBOUND,
            Message.channel.in_(ANSWERED_ON[channel]),
            Message.follow_up_id.isnot(None),
            Message.created_at <= before if before is not None else true(),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )


def store_sms(session: Session, sms: InboundMessage, *, now: datetime) -> bool:
    """The webhook's first step, committed on its own before anything else: whatever happens
    next (a lock held elsewhere, a killed process), the reply is kept, and the worker's
    `triage` acts on it. False for a retry of a reply already stored."""
    stored = insert_reply(session.connection(), sms, now=now)
    if stored is not None:
        on_commit(session, "message.received", message_id=stored, channel=sms.channel.value)
    return stored is not None


def act_on_consent(
    session: Session, sms: InboundMessage, *, config: Config, now: datetime
) -> str | None:
    """The webhook's second step: a consent keyword honoured at once (the law wants it so).
    Returns what to answer in the TwiML, if anything. Reading the reply, cases and
    acknowledgements are the worker's (`triage`), seconds later. The caller commits."""
    consent = read_consent(sms.body)
    if consent is None:
        return None  # a reply for the worker to read
    # Linking the message to the customer and the follow-up waits for the worker.
    same_number = _customers_for(session, sms.sender, config)
    customer = same_number[0] if same_number else None
    channel = sms.channel
    acted = customer is not None and _act(session, same_number, consent, channel, config, now)
    if customer is None and consent.intent is Intent.OPT_OUT:  # an erased customer's number?
        remember_no(session, phone_of(sms.sender), channel)
    reply = None
    if acted:
        name = KEYWORD_TEMPLATES[consent.intent]
        reply = _reply(session, customer, consent, channel, config, name)
    elif customer and consent.intent is Intent.OPT_IN and consent.keyword:
        if customer.sms_opt_out_at is not None and _blocked_by_twilio(customer, channel, config):
            reply = _reply(session, customer, consent, channel, config, USE_START_TEMPLATE)
    return reply


def _match(session: Session, message: Message, config: Config) -> Customer | None:
    """The message's customer (found by number once) and the follow-up it answers."""
    if message.customer_id is not None:
        return session.get(Customer, message.customer_id)
    same_number = _customers_for(session, message.from_address, config)
    customer = same_number[0] if same_number else None
    if customer is not None:
        message.customer_id = customer.id
        message.follow_up_id = latest_follow_up(session, customer.id, message.channel)
    return customer


def triage(
    sessions: sessionmaker[Session], config: Config, *, now: datetime, limit: int = 200
) -> int:
    """Read the replies the webhook stored: classify them and note their themes, open or join
    cases (with notices and an acknowledgement), plan what a score enables. Replies already
    read are left alone; two workers never read the same one. Returns how many were read."""
    with sessions.begin() as session:
        pending = session.scalars(
            select(Message)
            .where(Message.direction == Direction.INBOUND, Message.needs_human.is_(None))
            .order_by(Message.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not pending:
            return 0  # every few seconds, mostly: the owner's words are not read for nothing
        lexicon, words = owner_lexicon(session), vocabulary(session)
        for message in pending:
            _unlink_erased(session, message)
            _consent_backstop(session, message, config=config, now=now)
            reading = reading_of(message, lexicon)
            message.label, message.score = reading.label.value, reading.score
            message.needs_human = reading.needs_human
            message.themes = stored(themes_of(message.body, words))
            message.themes_read_with = words.fingerprint
            customer = _match(session, message, config)
            if customer is None:
                continue  # a stranger: kept, unmatched, for a person to look at
            opened, handed_off = _route(session, customer, message, reading, config=config, now=now)
            consent = read_consent(message.body)
            if (
                opened
                and not handed_off
                and consent is None
                and _acknowledges(session, reading, config)
            ):
                _acknowledge(session, customer, message, config=config, now=now)
        return len(pending)


def _unlink_erased(session: Session, message: Message) -> None:
    """An email answering one of our old emails names its customer; one erased on request is
    nobody now: the reply waits, unmatched, for a person, like a stranger's."""
    if message.customer_id is None:
        return
    customer = session.get(Customer, message.customer_id)
    if customer is not None and customer.erased_at is not None:
        message.customer_id = message.follow_up_id = None


def _consent_backstop(session: Session, message: Message, *, config: Config, now: datetime) -> None:
    """Apply a consent keyword the webhook stored but may not have acted on (it could not lock
    the customer in time, or its process died): the latest such message from that number
    governs, and acting twice changes nothing. By email, where no webhook comes first, this is
    where "unsubscribe" or "no me escriban más" ends email."""
    consent = read_consent(message.body)
    if consent is None:
        return
    if message.channel is Channel.EMAIL:
        customer = session.get(Customer, message.customer_id) if message.customer_id else None
        if customer is not None:
            _act(session, [customer], consent, Channel.EMAIL, config, now)
        return
    later = session.scalars(
        select(Message.body).where(
            Message.direction == Direction.INBOUND,
            Message.from_address == message.from_address,
            Message.id > message.id,
        )
    )
    if any(read_consent(body) is not None for body in later):
        return  # a later STOP or START from this number says what they want now
    same_number = _customers_for(session, message.from_address, config)
    if same_number:
        _act(session, same_number, consent, message.channel, config, now)


def attend_linked(
    session: Session,
    customer: Customer,
    message: Message,
    *,
    open_case: bool,
    config: Config,
    now: datetime,
    actor: str,
) -> Case | None:
    """A reply that reached nobody, matched by a person to `customer`: read now as if it had
    come from their number (a stop opts them out, a complaint opens a case), or put in a case
    because the person says so. Returns the case it went into, if any."""
    message.customer_id = customer.id
    message.follow_up_id = latest_follow_up(
        session, customer.id, message.channel, before=message.created_at
    )
    reading = reading_of(message, owner_lexicon(session))
    consent = read_consent(message.body)
    if consent is not None and consent.intent is Intent.OPT_OUT:
        via = f"asked from {message.from_address} to stop, matched by {actor}"
        opt_out(
            session,
            customer,
            channel=message.channel,
            source=ConsentSource.MATCHED,
            via=via,
            now=now,
            actor=actor,
        )
    _route(session, customer, message, reading, config=config, now=now)  # a complaint too
    if open_case and message.case_id is None:
        case, opened = open_case_for(
            session, customer, message, reason=reading.label.value, config=config, now=now
        )
        if opened:
            notify_new_case(session, case, customer, message, config=config, now=now)
    return session.get(Case, message.case_id) if message.case_id is not None else None


def _answer_to_case_check(
    session: Session,
    customer: Customer,
    message: Message,
    reading: Reading,
    *,
    config: Config,
    now: datetime,
) -> bool | None:
    """A reply to "did we solve it?": a complaint reopens that case (True), anything else
    confirms it (False); None when the reply is not about a resolved case."""
    follow_up = session.get(FollowUp, message.follow_up_id) if message.follow_up_id else None
    case = session.get(Case, follow_up.case_id) if follow_up and follow_up.case_id else None
    if case is None or case.status is not CaseStatus.RESOLVED:
        return None
    if not reading.needs_human:
        message.case_id = case.id
        audit.record(
            session,
            at=now,
            actor="customer",
            action="case.confirm",
            entity_type="case",
            entity_id=case.id,
            label=reading.label.value,
        )
        return False
    other = session.scalar(
        select(Case.id).where(Case.customer_id == customer.id, Case.status == CaseStatus.OPEN)
    )
    if other is not None:
        return None  # another case is open: the reply joins it
    reopen_case(session, case, message, config=config, now=now)
    notify_new_case(session, case, customer, message, config=config, now=now)
    return True


def _acknowledges(session: Session, reading: Reading, config: Config) -> bool:
    """Whether a new case gets an acknowledgement: on, and not a question the owner marked as
    routine (opening hours, say), which a person answers without a promise."""
    cases = config.cases
    if not cases.acknowledge or recipients(session, config).nobody_of_new_cases:
        return False  # nobody would be told of the case: promise nothing
    words = set(fold(reading.text).split())
    routine = {fold(word) for word in config.cases.routine_words}
    return not (reading.label is Label.QUESTION and words & routine)


def _acknowledge(
    session: Session, customer: Customer, message: Message, *, config: Config, now: datetime
) -> None:
    """The honest answer to a complaint: a person will reply, and by when; on the channel the
    customer wrote from (on WhatsApp, inside the window their message just opened). Queued
    with the case, sent by the worker with the staff's notices."""
    case = session.get(Case, message.case_id) if message.case_id is not None else None
    if case is None:
        return
    tz = ZoneInfo(customer.timezone or config.business.timezone)
    text = _render_sms(
        session,
        ACK_TEMPLATE,
        customer.locale or config.business.locale,
        config,
        lambda locale: {
            "customer": customer_vars(customer),
            "deadline": deadline_words(case.first_response_due_at, now, tz, locale),
        },
    )
    if text is None:
        return  # an owner's broken edit: the case still reaches a person
    channel, to = message.channel, message.from_address
    if channel is Channel.WHATSAPP and (not config.whatsapp.on or len(text) > WHATSAPP_MAX_CHARS):
        if customer.phone is None:  # WhatsApp turned off, or its 63021: by SMS
            return
        channel, to = Channel.SMS, customer.phone
    if customer.opt_out_at(channel) is not None:
        return
    if channel is Channel.EMAIL and customer.email_bounced_at is not None:
        return
    queue(
        session,
        case_id=case.id,
        channel=channel,
        to=to,
        subject=reply_subject(message.subject) if channel is Channel.EMAIL else None,
        body=text,
        now=now,
        customer_id=customer.id,
    )


def reply_subject(subject: str | None) -> str:
    """ "Re: " and the customer's subject, once: the answer shows in their thread."""
    subject = " ".join((subject or "").split())[:200]
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()


def _route(
    session: Session,
    customer: Customer,
    message: Message,
    reading: Reading,
    *,
    config: Config,
    now: datetime,
) -> tuple[bool, bool]:
    """A reply that needs a person goes into the customer's case; a score plans the steps it
    enables for the sale the reply answers (the hand-off after a low one belongs to its case).
    Returns whether a case was opened, and whether a step was planned for it."""
    answered = _answer_to_case_check(session, customer, message, reading, config=config, now=now)
    if answered is not None:
        return answered, False
    case_facts: dict[str, int] = {}
    opened = False
    if reading.needs_human:
        case, opened = open_case_for(
            session, customer, message, reason=reading.label.value, config=config, now=now
        )
        case_facts = {"case_id": case.id}
        if opened:
            notify_new_case(session, case, customer, message, config=config, now=now)
    planned = 0
    if reading.score is not None and message.follow_up_id is not None:
        follow_up = session.get(FollowUp, message.follow_up_id)
        if follow_up is not None:
            planned = schedule_after_score(
                session,
                follow_up.sale,
                score=reading.score,
                at=now,
                config=config,
                now=now,
                facts=case_facts,
            )
    return opened, bool(case_facts and planned)


def _act(
    session: Session,
    same_number: list[Customer],
    consent: Consent,
    channel: Channel,
    config: Config,
    now: datetime,
) -> bool:
    """Apply the consent on the channel it came by; returns whether it meant anything (a bare
    "si" from a customer who never opted out is an answer, not an opt-in; "text me again" in
    words goes to a person). On WhatsApp a keyword START is also the yes WhatsApp needs."""
    by = BY[channel]
    wording = f"replied {consent.keyword!r} {by}" if consent.keyword else f"asked {by} to stop"
    customer = same_number[0]
    if consent.intent is Intent.OPT_OUT:  # every customer record with this number
        source = (
            ConsentSource.PROVIDER_KEYWORD
            if consent.handled_by_twilio and channel is Channel.SMS
            else ConsentSource.KEYWORD
            if consent.keyword
            else ConsentSource.WORDS
        )
        for same in same_number:
            opt_out(
                session,
                same,
                channel=channel,
                source=source,
                via=wording,
                now=now,
                actor="customer",
            )
        return True
    if consent.intent is Intent.OPT_IN:
        if consent.keyword is None or _blocked_by_twilio(customer, channel, config):
            return False
        first_yes = channel is Channel.WHATSAPP and customer.whatsapp_opt_in_at is None
        if first_yes and consent.keyword in ANSWERS:
            return False  # a bare "sí" answers a question: a first yes to WhatsApp says START
        return opt_in(session, customer, channel=channel, via=wording, now=now, actor="customer")
    return True  # help: always worth an answer


def _blocked_by_twilio(customer: Customer, channel: Channel, config: Config) -> bool:
    """Twilio itself blocks a number that sent it STOP by SMS until START, YES or UNSTOP: an
    ALTA cannot lift that, and saying it did would be false. (It does nothing on WhatsApp.)"""
    by_provider = (ConsentSource.PROVIDER_KEYWORD, ConsentSource.PROVIDER_REFUSAL)
    return (
        channel is Channel.SMS
        and config.sms.transport == "twilio"
        and customer.sms_opt_out_source in by_provider
    )


def _reply(
    session: Session,
    customer: Customer | None,
    consent: Consent,
    channel: Channel,
    config: Config,
    name: str,
) -> str | None:
    """The confirmation to send back, unless Twilio already answers this keyword itself (by
    SMS only: on WhatsApp it answers none)."""
    policy = config.sms.keyword_replies
    by_twilio = consent.handled_by_twilio and channel is Channel.SMS
    if policy == "none" or (policy == "twilio-gaps" and by_twilio):
        return None
    locale = consent.language or (customer.locale if customer else None) or config.business.locale
    # An owner's broken edit gives no answer; it must not cost the customer their opt-out.
    return _render_sms(
        session, name, locale, config, lambda found: {"channel": channel_name(channel, found)}
    )


def _render_sms(
    session: Session,
    name: str,
    locale: str,
    config: Config,
    variables: Callable[[str], dict[str, Any]],
) -> str | None:
    """An SMS from the template `name` in `locale` (else the business's), with the business's
    name and `variables(the template's locale)`; None when there is no such template or it
    fails to render."""
    book = TemplateBook.load(session, name)
    template = book.find(name, Channel.SMS, locale, config.business.locale)
    if template is None:
        return None
    source = TemplateSource(template.name, Channel.SMS, template.locale, template.body)
    context = {"business": {"name": config.business.name}, **variables(template.locale)}
    try:
        return render_part(source.body, context, escaped=False, label=source.label("body"))
    except RenderError:
        return None

"""Customers' email replies: read from the shop's IMAP folder every tick, stored once by their
Message-ID, and matched to the customer and to the message they answer (In-Reply-To, then
References, then the sender's address). From there `inbound.triage` reads them as it reads an
SMS: the classifier, cases, acknowledgements, and the words that stop email.

Automatic mail (out-of-office, delivery reports) is kept but never read as a reply, so it never
opens a case; a delivery failure marks the address as bouncing, and nothing more goes there.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from scheduler import audit
from scheduler.config import InboundEmailConfig
from scheduler.lifecycle import CaseStatus, Channel, Direction, MessageStatus
from scheduler.listening.classify import Label
from scheduler.listening.inbound import latest_follow_up
from scheduler.listening.mail_reading import IncomingMail, read_mail
from scheduler.listening.mailbox import Mailbox, MailboxError, MailboxState
from scheduler.models import Case, Customer, MailboxCursor, Message

log = logging.getLogger(__name__)

MAX_PROVIDER_ID = 100  # messages.provider_id
FETCH_LIMIT = 50  # mails stored per transaction; the rest come at the next tick
MAX_REASON = 500


def provider_id_of(message_id: str) -> str:
    """A Message-ID as stored: they have no length limit, our column has; a long one is kept
    as its hash, which a reply's In-Reply-To finds the same way."""
    if len(message_id) <= MAX_PROVIDER_ID:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()


def answered_message(session: Session, mail: IncomingMail) -> Message | None:
    """The email of ours this mail answers: In-Reply-To, else the newest of its References."""
    wanted = [mail.in_reply_to, *reversed(mail.references)]
    ids = [provider_id_of(ref) for ref in wanted if ref]
    if not ids:
        return None
    found = {
        m.provider_id: m
        for m in session.scalars(
            select(Message).where(
                Message.provider_id.in_(ids),
                Message.direction == Direction.OUTBOUND,
                Message.channel == Channel.EMAIL,
            )
        )
    }
    return next((found[i] for i in ids if i in found), None)


def _text(mail: IncomingMail) -> str:
    """What the customer wrote, and the names of what they attached (the case shows it)."""
    text = mail.text.strip()
    if mail.attachments:
        text = f"{text}\n\n[{', '.join(mail.attachments)}]".strip()
    return text or "(empty)"


def store_mail(
    session: Session, mail: IncomingMail, *, mailbox: str, now: datetime
) -> Message | None:
    """Store one mail unless its Message-ID is stored already (read again after a crash, or by
    another worker); returns the new message. The caller commits."""
    provider_id = provider_id_of(mail.message_id)
    if session.scalar(select(Message.id).where(Message.provider_id == provider_id)):
        return None
    answered = answered_message(session, mail)
    customer_id = answered.customer_id if answered else None
    if customer_id is None:
        customer_id = session.scalar(select(Customer.id).where(Customer.email == mail.sender))
    message = Message(
        direction=Direction.INBOUND,
        channel=Channel.EMAIL,
        customer_id=customer_id,
        follow_up_id=(
            answered.follow_up_id
            if answered and answered.follow_up_id
            else latest_follow_up(session, customer_id, Channel.EMAIL)
            if customer_id
            else None
        ),
        case_id=_open_case(session, answered),
        from_address=mail.sender[:254] or "(no sender)",
        to_address=mailbox[:254],
        subject=mail.subject,
        body=_text(mail),
        provider_id=provider_id,
        status=MessageStatus.RECEIVED,
        created_at=now,
        status_updated_at=now,
    )
    if mail.automatic:  # kept, never read as a reply: it opens no case
        message.label, message.needs_human = Label.AUTOMATIC.value, False
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:  # another worker stored it a moment ago
        return None
    if mail.bounce is not None:
        _bounced(session, mail, answered, now=now)
    return message


def _open_case(session: Session, answered: Message | None) -> int | None:
    """The case of the message answered, while it is open: the reply shows in its conversation."""
    if answered is None or answered.case_id is None:
        return None
    case = session.get(Case, answered.case_id)
    return case.id if case is not None and case.status is CaseStatus.OPEN else None


def _bounced(
    session: Session, mail: IncomingMail, answered: Message | None, *, now: datetime
) -> None:
    """A permanent delivery failure (status 5.x.x) marks the address as bouncing."""
    assert mail.bounce is not None
    bounce = mail.bounce
    if not bounce.status.startswith("5"):
        return
    address = bounce.recipient or (answered.to_address if answered else None)
    if not address:
        return
    reason = f"{bounce.status} {bounce.diagnostic}".strip()[:MAX_REASON]
    for customer in session.scalars(select(Customer).where(Customer.email == address)):
        if customer.email_bounced_at is None:
            customer.email_bounced_at, customer.email_bounce_reason = now, reason
            audit.record(
                session,
                at=now,
                actor="mailbox",
                action="customer.email_bounced",
                entity_type="customer",
                entity_id=customer.id,
                address=address,
                reason=reason,
            )


def mailbox_of(config: InboundEmailConfig) -> Mailbox:
    return Mailbox(
        config.imap_host,
        config.imap_port,
        security="starttls" if config.imap_security == "starttls" else "ssl",
        username=config.username,
        password=config.password,
        folder=config.folder,
    )


def mailbox_key(config: InboundEmailConfig) -> str:
    return f"{config.username}@{config.imap_host}:{config.imap_port}/{config.folder}"[:400]


def fetch_mail(
    sessions: sessionmaker[Session],
    mailbox: Mailbox,
    *,
    key: str,
    address: str,
    now: datetime,
    limit: int = FETCH_LIMIT,
) -> int:
    """Store what is new in the folder and move its cursor, in one transaction: a crash stores
    neither, and the next tick reads the same mail again. Returns how many mails were new;
    a mailbox that cannot be read now is logged and tried again at the next tick."""
    with sessions() as session:
        cursor = session.get(MailboxCursor, key)
        state = MailboxState(cursor.uidvalidity, cursor.last_uid) if cursor else None
    try:
        mails, state = mailbox.fetch_new(state, limit)
    except MailboxError as error:
        log.warning("the mailbox %s cannot be read now: %s", key, error)
        return 0
    stored = 0
    with sessions.begin() as session:
        for _uid, raw in mails:
            if store_mail(session, read_mail(raw), mailbox=address, now=now) is not None:
                stored += 1
        cursor = session.get(MailboxCursor, key, with_for_update=True)
        if cursor is None:
            session.add(
                MailboxCursor(
                    mailbox=key,
                    uidvalidity=state.uidvalidity,
                    last_uid=state.last_uid,
                    updated_at=now,
                )
            )
        elif cursor.uidvalidity != state.uidvalidity or state.last_uid > cursor.last_uid:
            cursor.uidvalidity, cursor.last_uid, cursor.updated_at = (
                state.uidvalidity,
                state.last_uid,
                now,
            )
    return stored

"""Erasing a customer on request (GDPR article 17 in Spain; Ley 29733's cancellation in Peru).

What goes: who they are (name, phone, email, language, time zone), every word they wrote or we
wrote to them or about them (message bodies and subjects both ways, the notices to staff about
their cases, the outbox's copies, the reasons written on their follow-ups and consent, case
notes and outcomes, remedies' descriptions, their sales' details, what the audit log noted about
them, the shops' deliveries of their orders). What stays: what the shop counts (that a sale of
this product for this amount happened, that a follow-up went and was answered with a 9, that a
case opened and was answered in time), with nobody's name on it. The shop's order numbers stay
too, so that the same order imported again does not bring the person back.

Nothing more can be sent: every channel is closed, what was planned is cancelled, what was
queued is withdrawn. Their phone and email are kept only as keyed hashes (`address_hash`) with
the no's they had said: a new customer with the same number later still has those no's, and an
order dated before the erasure (an old export imported again) is never followed up; a STOP from
that number after the erasure is remembered the same way (`remember_no`). The key lives in the
database with the hashes: this is pseudonymisation (whoever holds a copy of the database and
tries every phone number can find one), which is why nothing else is kept with them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Executable, case, or_, select, update
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.consent import WITHDRAWN, opt_out, withdrawal
from scheduler.db import chunked, insert_or_else
from scheduler.lifecycle import (
    PENDING,
    WAITING,
    CaseStatus,
    Channel,
    ConsentSource,
    FollowUpStatus,
)
from scheduler.models import (
    AuditEntry,
    Case,
    CaseNote,
    Customer,
    Erasure,
    FollowUp,
    InstallationSecret,
    Message,
    OutboxEntry,
    Remedy,
    Sale,
    ShopDelivery,
    nothing_in_flight,
)

ERASED = "[erased]"  # what stands where a person's words or name were
HASH_KEY = "address-hash-key"
VIA = "erased on request"
EARLIER_NO = "said no before their data was erased"
BEFORE_ERASURE = "an order from before their data was erased"
PHONE_CHANNELS = (Channel.SMS, Channel.WHATSAPP)
# What a message, and an outbox's copy of one, keeps once its words are gone (here, and in
# `scheduler.retention`).
MESSAGE_WITHOUT_WORDS: dict[str, object] = {
    "body": ERASED,
    "subject": None,
    "html_body": None,
    "content_variables": None,
    "button_payload": None,
}
COPY_WITHOUT_WORDS: dict[str, object] = {
    "body": ERASED,
    "subject": None,
    "html_body": None,
    "headers": {},
}


class ErasureError(ValueError):
    """An erasure refused: the message says why."""


def _key(session: Session) -> bytes:
    """The installation's key for address hashes, made on first use (two at once: one wins)."""
    session.execute(
        insert_or_else(session, InstallationSecret)
        .values(name=HASH_KEY, value=secrets.token_hex(32))
        .on_conflict_do_nothing()
    )
    value = session.scalar(
        select(InstallationSecret.value).where(InstallationSecret.name == HASH_KEY)
    )
    assert value is not None
    return bytes.fromhex(value)


def address_hash(key: bytes, kind: str, address: str) -> str:
    """A keyed hash of a phone (E.164) or an email (normalised): equal addresses, equal hashes."""
    return hmac.new(key, f"{kind}:{address}".encode(), hashlib.sha256).hexdigest()


def addresses_of(customer: Customer) -> list[str]:
    """Every address a message to or from the customer carries."""
    found = [a for a in (customer.phone, customer.email) if a]
    if customer.phone:
        found.append(f"whatsapp:{customer.phone}")
    return found


def their_messages(customer: Customer) -> ColumnElement[bool]:
    """Their messages both ways (a reply nobody matched to them yet included), and the notices
    to staff about their cases, which name and quote them."""
    addresses = addresses_of(customer)
    return or_(
        Message.customer_id == customer.id,
        Message.from_address.in_(addresses),
        Message.to_address.in_(addresses),
        Message.case_id.in_(select(Case.id).where(Case.customer_id == customer.id)),
    )


@dataclass(frozen=True)
class Erased:
    customer_id: int
    messages: int
    cases: int
    follow_ups_cancelled: int


def erase(
    session: Session, customer: Customer, *, actor: str, reason: str, now: datetime
) -> Erased:
    """Erase the customer, in the caller's transaction; ErasureError if done already. The
    customer's row is locked first, as every consent change locks it: a STOP arriving at the
    same moment waits, and two erasures at once are one and a refusal."""
    session.execute(
        select(Customer)
        .where(Customer.id == customer.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if customer.erased_at is not None:
        raise ErasureError(f"customer {customer.id} was erased already")
    said_no = {channel: customer.opt_out_at(channel) is not None for channel in Channel}
    addresses = addresses_of(customer)
    cancelled = _cancel_plans(session, customer.id, now)
    for channel in Channel:  # closes every channel; withdraws what was queued to them
        opt_out(
            session,
            customer,
            channel=channel,
            source=ConsentSource.STAFF,
            via=VIA,
            now=now,
            actor=actor,
        )
    key = _key(session)
    session.add(
        Erasure(
            customer_id=customer.id,
            erased_at=now,
            erased_by=actor,
            phone_hash=address_hash(key, "phone", customer.phone) if customer.phone else None,
            email_hash=address_hash(key, "email", customer.email) if customer.email else None,
            **{f"{channel.value}_opt_out": no for channel, no in said_no.items()},
        )
    )
    sales = list(session.scalars(select(Sale.id).where(Sale.customer_id == customer.id)))
    follow_ups = list(
        session.scalars(select(FollowUp.id).where(FollowUp.customer_id == customer.id))
    )
    messages = _erase_messages(session, customer, addresses, follow_ups, now)
    cases = _erase_cases(session, customer.id, now)
    _erase_history(
        session,
        [
            ("customer", [customer.id]),
            ("sale", sales),
            ("case", cases),
            ("follow_up", follow_ups),
            ("message", messages),
        ],
    )
    _quiet(
        session,
        update(FollowUp)
        .where(FollowUp.customer_id == customer.id)
        .values(
            status_reason=case((FollowUp.status_reason.is_(None), None), else_=ERASED),
            last_error=case((FollowUp.last_error.is_(None), None), else_=ERASED),
        ),
    )
    _quiet(session, update(Sale).where(Sale.customer_id == customer.id).values(attributes={}))
    _erase_deliveries(session, sales, addresses)
    customer.name, customer.phone, customer.email = ERASED, None, None
    customer.locale = customer.timezone = None
    customer.email_bounce_reason = None
    customer.unsubscribe_token = None
    customer.whatsapp_opt_in_at = customer.whatsapp_opt_in_via = None
    customer.whatsapp_opt_out_via = customer.sms_opt_out_via = VIA  # how they had said no
    customer.email_opt_out_via = VIA  # may have quoted them, or named who wrote it down
    customer.erased_at = now
    audit.record(
        session,
        at=now,
        actor=actor,
        action="customer.erase",
        entity_type="customer",
        entity_id=customer.id,
        reason=reason,
        sales=len(sales),
        messages=len(messages),
        cases=len(cases),
        follow_ups_cancelled=cancelled,
    )
    return Erased(customer.id, len(messages), len(cases), cancelled)


def _quiet(session: Session, statement: Executable) -> None:
    """A bulk UPDATE; the session's objects are not looked up (none of these is loaded)."""
    session.execute(statement, execution_options={"synchronize_session": False})


def _cancel_plans(session: Session, customer_id: int, now: datetime) -> int:
    rows = session.scalars(
        select(FollowUp)
        .where(
            FollowUp.customer_id == customer_id,
            FollowUp.status.in_(PENDING),
            nothing_in_flight(),
        )
        .with_for_update()
    ).all()
    for row in rows:
        row.move_to(FollowUpStatus.CANCELLED, "the customer was erased", now)
    return len(rows)


def _erase_messages(
    session: Session,
    customer: Customer,
    addresses: Sequence[str],
    follow_ups: Sequence[int],
    now: datetime,
) -> list[int]:
    """Their messages, and the outbox's copies, lose their words and the customer's side of
    the address; what counts stays (when, which channel, its status, how it was read and
    rated). A notice about them still queued for staff is withdrawn: it quotes them."""
    ids = list(session.scalars(select(Message.id).where(their_messages(customer))))
    for chunk in chunked(ids):
        _quiet(
            session,
            update(Message)
            .where(Message.id.in_(chunk), Message.due_at.is_not(None), Message.status.in_(WAITING))
            .values(withdrawal(now)),
        )
        _quiet(
            session,
            update(Message)
            .where(Message.id.in_(chunk))
            .values(
                **MESSAGE_WITHOUT_WORDS,
                error_message=case(
                    (Message.error_message == WITHDRAWN, WITHDRAWN),
                    (Message.error_message.is_(None), None),
                    else_=ERASED,
                ),
                from_address=case(
                    (Message.from_address.in_(addresses), ERASED), else_=Message.from_address
                ),
                to_address=case(
                    (Message.to_address.in_(addresses), ERASED), else_=Message.to_address
                ),
            ),
        )
        copies = [f"message:{i}" for i in chunk]
        _quiet(
            session,
            update(OutboxEntry)
            .where(OutboxEntry.reference.in_(copies))
            .values(to_address=ERASED, **COPY_WITHOUT_WORDS),
        )
    references = [f"follow-up:{f}" for f in follow_ups]
    outbox = [OutboxEntry.to_address.in_(addresses)] if addresses else []
    for part in chunked(references):
        outbox.append(OutboxEntry.reference.in_(part))
    if outbox:
        _quiet(
            session,
            update(OutboxEntry).where(or_(*outbox)).values(to_address=ERASED, **COPY_WITHOUT_WORDS),
        )
    return ids


def _erase_cases(session: Session, customer_id: int, now: datetime) -> list[int]:
    """Their cases keep their times (how fast people answered counts); the words go. One
    still open is closed: nobody is left to answer. Returns their ids."""
    cases = session.scalars(
        select(Case).where(Case.customer_id == customer_id).with_for_update()
    ).all()
    for row in cases:
        if row.status is CaseStatus.OPEN:
            row.status, row.resolved_at = CaseStatus.RESOLVED, now
        row.outcome = ERASED
    ids = [row.id for row in cases]
    for chunk in chunked(ids):
        _quiet(session, update(CaseNote).where(CaseNote.case_id.in_(chunk)).values(body=ERASED))
        _quiet(session, update(Remedy).where(Remedy.case_id.in_(chunk)).values(description=ERASED))
    return ids


def _erase_history(session: Session, about: Sequence[tuple[str, Sequence[int]]]) -> None:
    """What the audit log noted about them, their sales, cases, follow-ups and messages (each
    kind of entity with its ids): the entries stay (who did what, when), their details go."""
    for kind, ids in about:
        for chunk in chunked(ids):
            _quiet(
                session,
                update(AuditEntry)
                .where(AuditEntry.entity_type == kind, AuditEntry.entity_id.in_(chunk))
                .values(details={"erased": True}),
            )


def _erase_deliveries(session: Session, sales: Sequence[int], addresses: Iterable[str]) -> None:
    """What the shops sent about their orders (kept for a person to read): the deliveries of
    their sales, and any other naming one of their addresses, lose their text."""
    naming = [ShopDelivery.body.icontains(a, autoescape=True) for a in addresses]
    for chunk in chunked(list(sales)):
        naming.append(ShopDelivery.sale_id.in_(chunk))
    if naming:
        _quiet(session, update(ShopDelivery).where(or_(*naming)).values(body=None, reason=None))


# --- a no said before, or after, the erasure ---------------------------------------------------


def honour_earlier_no(
    session: Session, new: Iterable[tuple[Customer, datetime]], *, now: datetime, actor: str
) -> int:
    """New customers (with the date of the sale that brings them) whose phone or email an
    erased customer had: the no's said with that address hold for them; an order dated before
    the erasure is someone's old data coming back, and nothing about it is sent. Returns how
    many opt-outs that made; one cheap query when nobody was ever erased."""
    if session.scalar(select(Erasure.id).limit(1)) is None:
        return 0
    key = _key(session)
    wanted: dict[tuple[str, str], list[tuple[Customer, datetime]]] = {}
    for customer, sold_at in new:
        for kind in ("phone", "email"):
            if address := getattr(customer, kind):
                digest = address_hash(key, kind, address)
                wanted.setdefault((kind, digest), []).append((customer, sold_at))
    made = 0
    for chunk in chunked(sorted(wanted)):
        phones = [digest for kind, digest in chunk if kind == "phone"]
        emails = [digest for kind, digest in chunk if kind == "email"]
        found = session.scalars(
            select(Erasure).where(
                or_(Erasure.phone_hash.in_(phones), Erasure.email_hash.in_(emails))
            )
        )
        for erasure in found:
            for kind, hashed, channels in (
                ("phone", erasure.phone_hash, PHONE_CHANNELS),
                ("email", erasure.email_hash, (Channel.EMAIL,)),
            ):
                for customer, sold_at in wanted.get((kind, hashed or ""), []):
                    old = sold_at <= erasure.erased_at
                    for channel in channels:
                        if old or _said_no(erasure, channel):
                            made += _no(session, customer, channel, old, now=now, actor=actor)
    return made


def _no(
    session: Session, customer: Customer, channel: Channel, old: bool, *, now: datetime, actor: str
) -> int:
    if customer.opt_out_at(channel) is not None:
        return 0
    via = BEFORE_ERASURE if old else EARLIER_NO
    opt_out(
        session,
        customer,
        channel=channel,
        source=ConsentSource.STAFF,
        via=via,
        now=now,
        actor=actor,
    )
    return 1


def _said_no(erasure: Erasure, channel: Channel) -> bool:
    said: bool = getattr(erasure, f"{channel.value}_opt_out")
    return said


def remember_no(session: Session, phone: str, channel: Channel) -> bool:
    """A STOP from a number whose customer was erased: nobody is left to opt out, but a later
    customer with that number must not be written to. Returns whether an erasure had it."""
    if session.scalar(select(Erasure.id).limit(1)) is None:
        return False
    digest = address_hash(_key(session), "phone", phone)
    done = session.execute(
        update(Erasure)
        .where(Erasure.phone_hash == digest)
        .values({f"{channel.value}_opt_out": True}),
        execution_options={"synchronize_session": False},
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]

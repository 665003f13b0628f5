"""One dispatch pass: claim what is due, check it again, write it down, send it, record the result.

Exactly-once rests on three habits:
- a claim is one atomic statement (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: a single
  UPDATE under its write lock), with a lease, so two workers never hold the same follow-up;
- the message row is committed as `prepared` with the batch, then, just before the transport is
  called, a short transaction renews the lease (only if it is still ours) and marks it
  `handed_over`; a worker that dies mid-send leaves that trace, and one too slow sends nothing;
  a transport whose send is itself a write to our database (the outbox) sends within the
  batch's own transaction instead, with the follow-ups locked: all of it commits, or none;
- a message that may have gone out (`handed_over` left by a dead worker, a timeout, a 5xx) is
  looked up with the provider before anything is sent again; if the provider cannot say, the
  follow-up becomes `unknown` for a person, never resent blindly.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from scheduler import audit
from scheduler.bulk_writes import insert_ids
from scheduler.clock import utcnow
from scheduler.collector import collections_paused
from scheduler.config import Config
from scheduler.db import Among, begin_reading
from scheduler.lifecycle import (
    MAYBE_SENT,
    CaseStatus,
    Channel,
    Direction,
    FollowUpStatus,
    MessageStatus,
    SaleStatus,
)
from scheduler.models import CadenceStep, Case, Customer, FollowUp, Message, Product, Sale
from scheduler.sending import leases
from scheduler.sending.composing import (
    Composed,
    TemplateBook,
    compose,
    locale_of,
    unsubscribe_url,
)
from scheduler.sending.courier import (
    LOOKUP_MARGIN,
    Courier,
    Job,
    Outcome,
    Result,
    log_results,
    one_message_per_provider_id,
    record_all,
)
from scheduler.sending.delivery import (
    DELIVERED,
    UNDELIVERED,
    stopped_by_provider,
)
from scheduler.sending.due_times import fit_to_window, window_closes
from scheduler.sending.leases import MESSAGES
from scheduler.sending.outcomes import Tally, judge
from scheduler.sending.pacing import SenderRateLimit
from scheduler.sending.planning import send_rules
from scheduler.sending.presend import Action, Situation, decide
from scheduler.sending.queued import QueuedSender
from scheduler.sending.sandbox import RenderError
from scheduler.sending.transports import Outgoing, Sent, Transport
from scheduler.sending.transports.base import StoresInTransaction
from scheduler.sending.whatsapp import (
    REFUSED_OUTSIDE_WINDOW,
    Facts,
    Reach,
    by_sms_instead,
    in_window,
    last_whatsapp_from,
    reach,
    sms_allowed,
)

log = logging.getLogger(__name__)

WINDOW_CLOSED = "not sent: WhatsApp's 24-hour window closed before it could go"
# A follow-up's rendered message, or why it could not be rendered, or why it has no channel.
Draft = Composed | str | Reach


class Sold(NamedTuple):
    """A follow-up's sale as composing reads it (`composing.SaleRead`)."""

    customer: Customer
    product: Product | None
    sold_at: datetime
    external_id: str
    amount: Decimal | None
    currency: str | None


class Drafting(NamedTuple):
    """A claimed follow-up as composing reads it (`composing.FollowUpRead`): plain values, with
    the batch's customers, products and steps as objects (a customer each, a few of the rest),
    for the same reason as `Held`. Tuples: a frozen dataclass took longer to build than the
    statement that read it."""

    id: int
    channel: Channel
    facts: dict[str, Any]
    sale: Sold
    step: CadenceStep


_DRAFTING = select(
    FollowUp.id,
    FollowUp.channel,
    FollowUp.facts,
    FollowUp.step_id,
    Sale.customer_id,
    Sale.product_id,
    Sale.sold_at,
    Sale.external_id,
    Sale.amount,
    Sale.currency,
).join(Sale, Sale.id == FollowUp.sale_id)
# The objects a batch's Drafting rows point to, each read once by id.
Pointed = TypeVar("Pointed", Customer, Product, CadenceStep)


class Held(NamedTuple):
    """A claimed follow-up as read again under lock: what the checks before sending read of it.
    Plain values: the ORM objects of a batch (follow-up, sale) cost more to build than every
    check made of them; one is loaded only where a follow-up is written other than by a send."""

    id: int
    status: FollowUpStatus
    lease_owner: str | None
    lease_expires_at: datetime | None
    due_at: datetime
    customer_id: int
    channel: Channel
    facts: dict[str, Any]
    sale_status: SaleStatus
    sale_customer_id: int  # whose it is: the customer the message goes to


_HELD = select(
    FollowUp.id,
    FollowUp.status,
    FollowUp.lease_owner,
    FollowUp.lease_expires_at,
    FollowUp.due_at,
    FollowUp.customer_id,
    FollowUp.channel,
    FollowUp.facts,
    Sale.status,
    Sale.customer_id,
).join(Sale, Sale.id == FollowUp.sale_id)

_STATUS_OF = {
    Action.CANCEL: FollowUpStatus.CANCELLED,
    Action.SKIP: FollowUpStatus.SKIPPED,
    Action.HOLD: FollowUpStatus.HELD,
    Action.POSTPONE: FollowUpStatus.SCHEDULED,
}
_COUNTER_OF = {
    Action.CANCEL: Tally.CANCELLED,
    Action.SKIP: Tally.SKIPPED,
    Action.HOLD: Tally.HELD,
    Action.POSTPONE: Tally.POSTPONED,
}


def _by_id(session: Session, model: type[Pointed], ids: set[Any]) -> dict[int, Pointed]:
    """The rows `ids` of `model`, by id, in one statement."""
    return {row.id: row for row in session.scalars(select(model).where(Among(model.id, ids)))}


def _opt_out(customer: Customer, channel: Channel) -> str | None:
    at = customer.opt_out_at(channel)
    via = customer.opt_out_via(channel)
    return None if at is None else f"{via or 'opted out'}, {at:%Y-%m-%d %H:%M} UTC"


def _current(mine: Iterable[Message]) -> Message | None:
    """A follow-up's message, of `mine` (all of its messages): the latest that did not fail.
    One that failed while the follow-up went on (WhatsApp refused it, so it goes by SMS; free
    text whose window closed before it could go) stays as it was, beside the next."""
    return max(
        (m for m in mine if m.status != MessageStatus.FAILED), key=lambda m: m.id, default=None
    )


def _refused(mine: Iterable[Message]) -> bool:
    """Whether WhatsApp refused the follow-up as free text outside the window (63016): it is
    never tried blindly again."""
    return any(
        m.channel is Channel.WHATSAPP and m.error_code == REFUSED_OUTSIDE_WINDOW for m in mine
    )


def _sendable(message: Message) -> dict[str, Any]:
    """What a send or a lookup reads of a message written down before."""
    return {
        column: getattr(message, column)
        for column in (
            "id",
            "channel",
            "to_address",
            "subject",
            "body",
            "html_body",
            "content_sid",
            "content_variables",
            "segments",
            "created_at",
        )
    }


def _channel_of(row: Held, draft: Draft | None) -> Channel:
    return draft.channel if isinstance(draft, Composed) else row.channel


class Dispatcher:
    """Runs passes for one worker; safe to run in many processes against one database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: Config,
        transports: Mapping[Channel, Transport],
        *,
        worker_id: str,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
        rate_limit: SenderRateLimit | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.transports = transports
        self.in_place = {
            channel: transport
            for channel, transport in transports.items()
            if isinstance(transport, StoresInTransaction)
        }
        self.worker_id = worker_id
        self.clock = clock
        self.jitter = jitter
        worker = config.worker
        self.lease = timedelta(seconds=worker.lease_seconds)
        self.courier = Courier(
            transports,
            concurrency=worker.concurrency,
            clock=clock,
            rate_limit=rate_limit or SenderRateLimit(),
            lease=self.lease,
        )
        self.grace = timedelta(hours=config.cadences.late_grace_hours)
        self.min_gap = timedelta(hours=config.cadences.min_gap_hours)
        # A claim must be sendable well within its lease, whatever the senders' rate limits.
        rates = [t.max_per_second for t in transports.values() if t.max_per_second > 0]
        affordable = int(min(rates) * worker.lease_seconds / 2) if rates else worker.batch_size
        self.claim_size = max(1, min(worker.batch_size, affordable))
        # Replies, acknowledgements and notices: the same path, the same senders' budgets.
        self.queued = QueuedSender(
            sessions,
            self.courier,
            worker_id=worker_id,
            claim_size=self.claim_size,
            max_attempts=worker.max_attempts,
            reply_to=config.email_inbound.reply_to,
            jitter=jitter,
        )

    # --- the pass ------------------------------------------------------------------------------

    def run_pass(self, stop: threading.Event | None = None) -> dict[str, int]:
        """Send everything due now, batch after batch; `stop` ends it between batches."""
        summary: Counter[str] = Counter({key: 0 for key in Tally})
        summary[Tally.RECOVERED] = self.recover_expired()
        while stop is None or not stop.is_set():
            ids = self.claim()
            if not ids:
                break
            summary[Tally.CLAIMED] += len(ids)
            with collections_paused(len(ids)):  # not while it is sent: that may take minutes
                jobs = self.prepare(ids, summary, stop)
            self.record(self.deliver_batch(jobs, stop), summary)
        return dict(summary)

    def recover_expired(self) -> int:
        """Take back follow-ups whose worker's lease ran out, and those an earlier pass of this
        worker left claimed when it broke off (its database connection was cut, say: passes of
        one worker never overlap, so none of them is in flight). What may have been sent is
        marked uncertain, so it is looked up before any resend."""
        with self.sessions.begin() as session:
            stale = leases.take_back(session, worker_id=self.worker_id, now=self.clock())
        if stale:
            log.warning("took back %d follow-ups left mid-send", stale)
        return stale

    def claim(self) -> list[int]:
        """Atomically mark up to `claim_size` due follow-ups as ours; others skip them."""
        with self.sessions.begin() as session:
            return leases.claim(
                session,
                worker_id=self.worker_id,
                now=self.clock(),
                lease=self.lease,
                size=self.claim_size,
            )

    # --- before sending: one transaction for the whole batch -----------------------------------

    def prepare(
        self, ids: list[int], summary: Counter[str], stop: threading.Event | None = None
    ) -> list[Job]:
        """Compose each claimed follow-up, then re-check it and commit its message as
        `prepared`; the jobs left for the transports (`deliver_batch`).

        Composing comes first, with no lock held: an owner's template may take up to
        RENDER_SECONDS, and neither a customer's STOP nor another worker may wait on it. A send
        through a transport that writes to our own database (the outbox) is made and recorded
        in the same transaction: a crash leaves all of it or none, nothing to look up. One
        statement per table for the batch; if the database refuses it, again row by row in
        savepoints, each send then on its own, so one message it cannot store fails alone
        instead of blocking the batch for good.
        """
        drafts = self._drafts(ids, stop)
        counts: Counter[str] = Counter()
        try:
            jobs, stored = self._prepare(ids, drafts, counts, careful=False)
        except DBAPIError:
            log.exception("a batch could not be prepared at once; preparing it row by row")
            counts = Counter()
            jobs, stored = self._prepare(ids, drafts, counts, careful=True)
        summary.update(counts)
        self.record([], summary, stored)
        return jobs

    def _drafts(self, ids: list[int], stop: threading.Event | None) -> dict[int, Draft]:
        """Each follow-up's message, rendered in a read that locks nothing (on SQLite, without
        the write lock), on the channel it will take (`whatsapp.reach`). A worker told to stop
        renders no more: what it did not render is put back for the next pass."""
        drafts: dict[int, Draft] = {}
        now = self.clock()
        with self.sessions() as session:
            begin_reading(session)
            rows = self._drafting(session, ids)
            messages = self._messages_of(session, ids)
            last_inbound = self._last_inbound(
                session, ((row.channel, row.sale.customer) for row in rows)
            )
            book = TemplateBook.load(session)
            for row in rows:
                if stop is not None and stop.is_set():
                    break
                if _current(messages.get(row.id, ())) is not None:
                    continue  # written down already: resent as it was, never re-rendered
                try:
                    refused = _refused(messages.get(row.id, ()))
                    way = self._reach(row, last_inbound, now, refused=refused, book=book)
                    drafts[row.id] = self._compose(row, book, way)
                except RenderError as error:
                    drafts[row.id] = str(error)
                except Exception as error:  # noqa: BLE001 - one bad row must not stall the batch
                    log.exception("follow-up %d could not be composed", row.id)
                    drafts[row.id] = f"could not be prepared: {error!r}"
        return drafts

    @staticmethod
    def _drafting(session: Session, ids: list[int]) -> list[Drafting]:
        """The follow-ups `ids` as composing reads them, in the order they are composed."""
        found = session.execute(
            _DRAFTING.where(Among(FollowUp.id, ids)).order_by(
                FollowUp.due_at,
                FollowUp.id,  # two for one customer: the older first
            )
        ).all()
        customers = _by_id(session, Customer, {row.customer_id for row in found})
        products = _by_id(session, Product, {row.product_id for row in found} - {None})
        steps = _by_id(session, CadenceStep, {row.step_id for row in found})
        return [
            Drafting(
                row.id,
                row.channel,
                row.facts,
                Sold(
                    customers[row.customer_id],
                    None if row.product_id is None else products[row.product_id],
                    row.sold_at,
                    row.external_id,
                    row.amount,
                    row.currency,
                ),
                steps[row.step_id],
            )
            for row in found
        ]

    def _last_inbound(
        self, session: Session, customers_by: Iterable[tuple[Channel, Customer]]
    ) -> dict[str, datetime]:
        """When each customer (by the channel planned for them) last wrote us on WhatsApp."""
        if not self.config.whatsapp.on:
            return {}
        customers = (customer for channel, customer in customers_by if channel is not Channel.EMAIL)
        return last_whatsapp_from(session, customers)

    def _reach(
        self,
        row: Drafting,
        last_inbound: Mapping[str, datetime],
        now: datetime,
        *,
        refused: bool,
        book: TemplateBook,
    ) -> Reach:
        """The channel the follow-up takes; the Content template is the one of the language
        its text is rendered in (the customer's, else the business's)."""
        customer = row.sale.customer
        wanted, fallback = locale_of(customer, self.config), self.config.business.locale
        template = book.find(row.step.template_name, Channel.SMS, wanted, fallback)
        address = customer.address(Channel.WHATSAPP)
        facts = Facts(
            whatsapp_opt_in=customer.whatsapp_opt_in,
            sms_allowed=sms_allowed(customer),
            last_inbound=last_inbound.get(address) if address else None,
            refused=refused,
        )
        return reach(
            row.channel,
            facts,
            whatsapp=self.config.whatsapp,
            template=row.step.template_name,
            locale=template.locale if template else wanted,
            now=now,
        )

    def _compose(self, row: Drafting, book: TemplateBook, way: Reach) -> Composed | Reach:
        """The message on the channel chosen; one too long for WhatsApp (63021) goes by SMS
        where SMS is allowed."""
        if way.channel is None:
            return way
        try:
            composed = compose(row, self.config, book, way.channel, way.content_sid)
        except RenderError as error:
            if way.channel is not Channel.WHATSAPP or not sms_allowed(row.sale.customer):
                raise
            way = Reach(Channel.SMS, note=f"by SMS: not by WhatsApp, {error}")
            composed = compose(row, self.config, book, Channel.SMS)
        return composed if way.note is None else replace(composed, note=way.note)

    def _prepare(
        self, ids: list[int], drafts: Mapping[int, Draft], summary: Counter[str], *, careful: bool
    ) -> tuple[list[Job], list[Result]]:
        now = self.clock()
        jobs: list[Job] = []
        with self.sessions.begin() as session:
            owners = session.execute(
                select(FollowUp.customer_id, Sale.customer_id)
                .join(Sale, Sale.id == FollowUp.sale_id)
                .where(Among(FollowUp.id, ids))
            )
            # One worker at a time per customer, so two batches cannot both pass the gap check;
            # locked first, so that what is read of them next is what holds until the commit.
            customers = {
                customer.id: customer
                for customer in session.scalars(
                    select(Customer)
                    .where(Among(Customer.id, {id_ for pair in owners for id_ in pair}))
                    .order_by(Customer.id)
                    .with_for_update()
                )
            }
            rows = [
                Held(*row)
                for row in session.execute(
                    _HELD.where(Among(FollowUp.id, ids))
                    .order_by(FollowUp.due_at, FollowUp.id)  # two for one customer: older first
                    .with_for_update(of=FollowUp)
                )
            ]
            open_cases = {
                customer_id: case_id
                for customer_id, case_id in session.execute(
                    select(Case.customer_id, Case.id).where(
                        Case.status == CaseStatus.OPEN, Among(Case.customer_id, customers)
                    )
                )
            }
            messages = self._messages_of(session, ids)
            recent = self._recent_messages(session, set(customers), now)
            last_inbound = self._last_inbound(
                session, ((row.channel, customers[row.sale_customer_id]) for row in rows)
            )

            def follow_up_of(row: Held) -> FollowUp:
                """The follow-up as an ORM object, for a change other than a send."""
                follow_up = session.get(FollowUp, row.id)
                assert follow_up is not None  # locked since it was read
                return follow_up

            prepared: list[tuple[Held, dict[str, Any], datetime | None]] = []
            for row in rows:
                customer = customers[row.sale_customer_id]
                if not self._holds(row, now):
                    log.error("lease on follow-up %d lost before it was prepared", row.id)
                    summary[Tally.LEASE_LOST] += 1
                    continue
                earlier = _current(messages.get(row.id, ()))
                draft = drafts.get(row.id)
                if earlier is None and draft is None:
                    reason = "put back: the worker was stopping"
                    follow_up_of(row).move_to(FollowUpStatus.SCHEDULED, reason, now)
                    summary[Tally.RELEASED] += 1
                    continue
                if earlier is None and not self._still_allowed(customer, draft, last_inbound, now):
                    reason = "put back: WhatsApp consent or window changed while it was prepared"
                    follow_up_of(row).move_to(FollowUpStatus.SCHEDULED, reason, now)
                    summary[Tally.RELEASED] += 1
                    continue
                if earlier is not None and earlier.status in MAYBE_SENT:
                    # Looked up before anything else.
                    prepared.append((row, _sendable(earlier), None))
                    continue
                if earlier is not None and self._window_closed_on(earlier, last_inbound, now):
                    earlier.status, earlier.error_message = MessageStatus.FAILED, WINDOW_CLOSED
                    earlier.status_updated_at = now
                    follow_up = follow_up_of(row)
                    follow_up.due_at = now
                    follow_up.move_to(FollowUpStatus.SCHEDULED, f"put back: {WINDOW_CLOSED}", now)
                    summary[Tally.RELEASED] += 1
                    continue
                if earlier is not None and earlier.provider_id is not None:
                    # It reached the provider (a result recorded after the lease was lost).
                    summary[self._settle_from(follow_up_of(row), earlier, now)] += 1
                    continue
                try:  # everything that may fail, before anything is written
                    rules = send_rules(self.config, customer)
                    last = max(
                        (at for fu_id, at in recent.get(row.customer_id, []) if fu_id != row.id),
                        default=None,
                    )
                    # The case's own message (the hand-off after a low score) answers the
                    # customer: neither the open case nor the minimum gap holds it back.
                    case_id = open_cases.get(row.customer_id)
                    own = case_id is not None and row.facts.get("case_id") == case_id
                    held = case_id is not None and not own
                    channel = earlier.channel if earlier else _channel_of(row, draft)
                    situation = self._situation(row, customer, channel, held, None if own else last)
                    if isinstance(draft, Reach):
                        situation = replace(situation, unreachable=draft.note)
                    decision = decide(
                        situation, now=now, rules=rules, grace=self.grace, min_gap=self.min_gap
                    )
                    if decision.action is Action.SEND and earlier is None:
                        message = self._message(row.id, customer, draft, now)
                except RenderError as error:
                    self._fail(follow_up_of(row), str(error), now, summary)
                    continue
                except Exception as error:  # noqa: BLE001 - one bad row must not stall the batch
                    log.exception("follow-up %d could not be prepared", row.id)
                    self._fail(follow_up_of(row), f"could not be prepared: {error!r}", now, summary)
                    continue
                if decision.action is not Action.SEND:
                    follow_up = follow_up_of(row)
                    follow_up.move_to(_STATUS_OF[decision.action], decision.reason, now)
                    if decision.due_at is not None:
                        follow_up.due_at = decision.due_at
                    summary[_COUNTER_OF[decision.action]] += 1
                    continue
                if earlier is not None:
                    earlier.status, earlier.status_updated_at = MessageStatus.PREPARED, now
                    message = _sendable(earlier)
                if isinstance(draft, Composed):
                    self._take_channel(session, row, draft, now)
                if careful and earlier is None:
                    try:
                        with session.begin_nested():
                            [message["id"]] = insert_ids(session, MESSAGES, [message])
                    except DBAPIError as error:
                        reason = f"the message cannot be stored: {error.orig}"
                        self._fail(follow_up_of(row), reason, now, summary)
                        continue
                prepared.append((row, message, window_closes(now, rules)))
                # A second follow-up for the same customer in this batch waits its turn.
                recent.setdefault(row.customer_id, []).append((row.id, now))
            outgoing = {
                row.id: self._outgoing(row.id, customers[row.sale_customer_id], message)
                for row, message, _ in prepared
            }
            here = [] if careful else self._in_place(prepared, now)
            stored = self._store(session, here, outgoing)
            new = [message for _, message, _ in prepared if "id" not in message]
            for message, message_id in zip(new, insert_ids(session, MESSAGES, new), strict=True):
                message["id"] = message_id  # one statement for the batch's new messages
            leases.sent_in_place(session, {key: sent for key, (sent, _) in stored.items()}, now=now)
            results: list[Result] = []
            for row, message, not_after in prepared:
                out = outgoing[row.id]
                if row.id in stored:
                    sent, seconds = stored[row.id]
                    job = Job(row.id, message["id"], out)
                    results.append((Outcome(job, sent=sent, seconds=seconds), Tally.SENT))
                elif not_after is None:
                    since = message["created_at"] - LOOKUP_MARGIN
                    jobs.append(Job(row.id, message["id"], out, look_since=since))
                else:
                    cost = message["segments"] or 1
                    jobs.append(Job(row.id, message["id"], out, not_after=not_after, cost=cost))
        return jobs, results

    def _holds(self, row: Held, now: datetime) -> bool:
        """Whether the follow-up is still this worker's to send (its row is locked now)."""
        return (
            row.status is FollowUpStatus.SENDING
            and row.lease_owner == self.worker_id
            and row.lease_expires_at is not None
            and row.lease_expires_at > now
        )

    def _in_place(
        self, prepared: list[tuple[Held, dict[str, Any], datetime | None]], now: datetime
    ) -> list[tuple[Held, dict[str, Any]]]:
        """The new messages whose transport writes to our own database, in their window."""
        return [
            (row, message)
            for row, message, not_after in prepared
            if "id" not in message
            and message["channel"] in self.in_place
            and not_after is not None
            and now < not_after
        ]

    def _store(
        self,
        session: Session,
        here: list[tuple[Held, dict[str, Any]]],
        outgoing: Mapping[int, Outgoing],
    ) -> dict[int, tuple[Sent, float]]:
        """Send `here` through their transports within `session`, each message written down as
        the transport left it; by follow-up, what the transport said and the send's share of
        its channel's store, in seconds."""
        by_channel: dict[Channel, list[tuple[Held, dict[str, Any]]]] = {}
        for row, message in here:
            by_channel.setdefault(message["channel"], []).append((row, message))
        stored: dict[int, tuple[Sent, float]] = {}
        for channel, mine in by_channel.items():
            began = time.perf_counter()
            sent = self.in_place[channel].store(session, [outgoing[row.id] for row, _ in mine])
            share = (time.perf_counter() - began) / len(mine)
            for (row, message), one in zip(mine, sent, strict=True):
                message.update(provider_id=one.provider_id, status=one.status)
                stored[row.id] = (one, share)
        return stored

    @staticmethod
    def _settle_from(row: FollowUp, message: Message, now: datetime) -> Tally:
        status = FollowUpStatus.FAILED if message.status in UNDELIVERED else FollowUpStatus.SENT
        row.provider_id = message.provider_id
        row.move_to(status, "an earlier attempt reached the provider", now)
        if status is FollowUpStatus.SENT and message.status in DELIVERED:
            row.move_to(FollowUpStatus.DELIVERED, None, now)
        return Tally.RECONCILED

    @staticmethod
    def _fail(row: FollowUp, reason: str, now: datetime, summary: Counter[str]) -> None:
        row.move_to(FollowUpStatus.FAILED, reason, now)
        summary[Tally.FAILED] += 1

    @staticmethod
    def _messages_of(session: Session, ids: Iterable[int]) -> dict[int, list[Message]]:
        """The follow-ups' messages, each follow-up's together (read once for the batch)."""
        mine: dict[int, list[Message]] = {}
        for message in session.scalars(
            select(Message).where(
                Among(Message.follow_up_id, ids), Message.direction == Direction.OUTBOUND
            )
        ):
            if message.follow_up_id is not None:
                mine.setdefault(message.follow_up_id, []).append(message)
        return mine

    def _recent_messages(
        self, session: Session, customers: set[int], now: datetime
    ) -> dict[int, list[tuple[int | None, datetime]]]:
        recent: dict[int, list[tuple[int | None, datetime]]] = {}
        if not self.min_gap:
            return recent
        rows = session.execute(
            select(Message.customer_id, Message.follow_up_id, Message.created_at).where(
                Among(Message.customer_id, customers),
                Message.direction == Direction.OUTBOUND,
                Message.created_at > now - self.min_gap,
                Message.status.not_in((MessageStatus.NOT_SENT, MessageStatus.FAILED)),
            )
        )
        for customer_id, follow_up_id, at in rows:
            if customer_id is not None:
                recent.setdefault(customer_id, []).append((follow_up_id, at))
        return recent

    @staticmethod
    def _situation(
        row: Held, customer: Customer, channel: Channel, open_case: bool, last: datetime | None
    ) -> Situation:
        bounced = channel is Channel.EMAIL and customer.email_bounced_at is not None
        return Situation(
            due_at=row.due_at,
            sale_cancelled=row.sale_status is SaleStatus.CANCELLED,
            opted_out=_opt_out(customer, channel),
            has_address=customer.address(channel) is not None,
            open_case=open_case,
            last_message_at=last,
            unreachable=f"the email address bounced ({customer.email_bounce_reason})"
            if bounced
            else None,
        )

    def _still_allowed(
        self,
        customer: Customer,
        draft: Draft | None,
        last_inbound: Mapping[str, datetime],
        now: datetime,
    ) -> bool:
        """Whether a WhatsApp draft may still go, seen with the customer locked: consent
        taken back, or free text whose window closed meanwhile, goes back to be chosen anew."""
        if not isinstance(draft, Composed) or draft.channel is not Channel.WHATSAPP:
            return True
        address = customer.address(Channel.WHATSAPP)
        return customer.whatsapp_opt_in and (
            draft.content_sid is not None
            or in_window(last_inbound.get(address) if address else None, now)
        )

    @staticmethod
    def _window_closed_on(
        message: Message, last_inbound: Mapping[str, datetime], now: datetime
    ) -> bool:
        """WhatsApp free text written down in the window, not sent when it closed (a retry, a
        postponement): WhatsApp would refuse it, so it is drafted anew (a Content template, or
        SMS)."""
        return (
            message.channel is Channel.WHATSAPP
            and message.content_sid is None
            and message.provider_id is None
            and message.status in (MessageStatus.PREPARED, MessageStatus.NOT_SENT)
            and not in_window(last_inbound.get(message.to_address), now)
        )

    @staticmethod
    def _take_channel(session: Session, row: Held, draft: Composed, now: datetime) -> None:
        """A channel other than the one the follow-up was planned on (which it keeps: its
        message says how it went), or a reason to note, is written down."""
        if draft.channel is row.channel and draft.note is None:
            return
        audit.record(
            session,
            at=now,
            actor="worker",
            action="follow_up.channel",
            entity_type="follow_up",
            entity_id=row.id,
            planned=row.channel.value,
            sent_by=draft.channel.value,
            content_sid=draft.content_sid,
            reason=draft.note,
        )

    def _message(
        self, follow_up_id: int, customer: Customer, draft: Draft | None, now: datetime
    ) -> dict[str, Any]:
        """The message as it will be sent (its columns), written down before any attempt; a
        retry resends exactly this, even if the template changed meanwhile. A draft that
        failed is raised."""
        if not isinstance(draft, Composed):
            raise RenderError(draft if isinstance(draft, str) else "nothing was composed")
        composed, channel = draft, draft.channel
        return {
            "customer_id": customer.id,
            "follow_up_id": follow_up_id,
            "direction": Direction.OUTBOUND,
            "channel": channel,
            "from_address": self.transports[channel].sender,
            "to_address": customer.address(channel) or "",
            "subject": composed.rendered.subject,
            "body": composed.rendered.text,
            "html_body": composed.rendered.html,
            "segments": composed.size.segments if composed.size else None,
            "encoding": composed.size.encoding if composed.size else None,
            "content_sid": composed.content_sid,
            "content_variables": composed.content_variables,
            "status": MessageStatus.PREPARED,
            "provider_id": None,
            "created_at": now,
            "status_updated_at": now,
        }

    def _outgoing(
        self, follow_up_id: int, customer: Customer, message: Mapping[str, Any]
    ) -> Outgoing:
        public = self.config.business.base_url
        if message["channel"] is Channel.EMAIL:
            link = unsubscribe_url(customer, self.config)
            headers = {
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
            if reply_to := self.config.email_inbound.reply_to:
                headers["Reply-To"] = reply_to
            return Outgoing(
                f"follow-up:{follow_up_id}",
                message["channel"],
                message["to_address"],
                message["body"],
                message["subject"],
                message["html_body"],
                headers,
            )
        callback = f"{public}/webhooks/twilio/status?follow_up={follow_up_id}"
        return Outgoing(
            f"follow-up:{follow_up_id}",
            message["channel"],
            message["to_address"],
            message["body"],
            status_callback=callback,
            content_sid=message["content_sid"],
            content_variables=message["content_variables"],
        )

    # --- the I/O, in the thread pool -----------------------------------------------------------

    def deliver_batch(self, jobs: list[Job], stop: threading.Event | None = None) -> list[Outcome]:
        """Run the batch's lookups and sends (`Courier.deliver_batch`), handing sends over a
        chunk at a time."""
        return self.courier.deliver_batch(jobs, self._hand_over, stop)

    def _hand_over(self, chunk: list[Job]) -> set[int]:
        """Renew the leases still ours and mark their messages `handed_over`, in one commit: after
        this a crash leaves messages to look up; without it, nothing is sent. A customer who
        opted out since the batch was prepared (a STOP seconds ago) is not handed over either.
        Returns the ids of the follow-ups that may be sent."""
        with self.sessions.begin() as session:
            return leases.hand_over(
                session,
                {job.key: job.message_id for job in chunk},
                worker_id=self.worker_id,
                now=self.clock(),
                lease=self.lease,
            )

    # --- after sending: one transaction for the whole batch ------------------------------------

    def record(
        self, outcomes: Iterable[Outcome], summary: Counter[str], recorded: Iterable[Result] = ()
    ) -> None:
        """Write down what happened to a batch, in one transaction, then log each result, with
        those `recorded` already (the outbox's sends, by `_prepare`)."""
        results = [*recorded, *record_all(self._record, list(outcomes), self.clock(), "follow-up")]
        summary.update(tally for _, tally in results)
        log_results(log, "follow_up", results, self.worker_id)

    def _record(self, outcomes: list[Outcome], now: datetime) -> list[Result]:
        plain = [o for o in outcomes if o.sent is not None and o.job.look_since is None]
        others = [o for o in outcomes if o.sent is None or o.job.look_since is not None]
        with self.sessions.begin() as session:
            results = self._record_sent(session, plain, now) if plain else []
            if others:
                results += self._record_others(session, others, now)
        return results

    def _record_sent(
        self, session: Session, outcomes: list[Outcome], now: datetime
    ) -> list[Result]:
        """The common case, sends that worked, in two statements whatever the batch size."""
        sent = {o.job.key: (o.job.message_id, o.sent) for o in outcomes if o.sent}
        ours = leases.record_sent(session, sent, worker_id=self.worker_id, now=now)
        if len(ours) < len(sent):
            log.error("%d leases lost before their results were recorded", len(sent) - len(ours))
        return [(o, Tally.SENT if o.job.key in ours else Tally.LEASE_LOST) for o in outcomes]

    def _record_others(
        self, session: Session, outcomes: list[Outcome], now: datetime
    ) -> list[Result]:
        """Failures, lookups and held-back sends: rarer, and each needs its own decision."""
        ids = [o.job.key for o in outcomes]
        rows = {
            row.id: row
            for row in session.scalars(
                select(FollowUp)
                .where(Among(FollowUp.id, ids))
                .options(joinedload(FollowUp.sale).joinedload(Sale.customer))
            )
        }
        messages = {m.id: m for mine in self._messages_of(session, ids).values() for m in mine}
        return [
            (
                outcome,
                self._apply(
                    session, rows[outcome.job.key], messages[outcome.job.message_id], outcome, now
                ),
            )
            for outcome in one_message_per_provider_id(session, outcomes)
        ]

    def _apply(
        self, session: Session, row: FollowUp, message: Message, outcome: Outcome, now: datetime
    ) -> Tally:
        """Write down what one outcome means (`outcomes.judge`); returns its summary key."""
        mine = row.status is FollowUpStatus.SENDING and row.lease_owner == self.worker_id
        verdict = judge(
            outcome.attempt(still_ours=mine, attempts=row.attempts, message=message),
            max_attempts=self.config.worker.max_attempts,
            jitter=self.jitter,
        )
        message.status_updated_at = now
        if outcome.sent is not None:  # whoever holds the follow-up now, the message left
            message.provider_id = outcome.sent.provider_id
        if verdict.message_status is not None:
            message.status = verdict.message_status
        if verdict.tally is Tally.LEASE_LOST:
            log.error("lease on follow-up %d lost before its result was recorded", row.id)
            return verdict.tally
        if outcome.error is not None:
            message.error_code, message.error_message = outcome.error.code, str(outcome.error)
            row.last_error = str(outcome.error)
        if outcome.sent is not None:
            row.provider_id, row.sent_at = outcome.sent.provider_id, now
        if verdict.opt_out:
            stopped_by_provider(
                session, row.sale.customer, now=now, actor=f"worker:{self.worker_id}"
            )
        if verdict.refund_attempt:
            row.attempts -= 1
        if verdict.at_window:
            row.due_at = fit_to_window(now, send_rules(self.config, row.sale.customer))
        if verdict.retry_in is not None:
            rules = send_rules(self.config, row.sale.customer)
            row.due_at = fit_to_window(now + verdict.retry_in, rules)
        assert verdict.follow_up is not None  # only a lost lease leaves it as it is
        if verdict.follow_up is FollowUpStatus.FAILED and by_sms_instead(
            message, row.sale.customer
        ):
            row.due_at = now
            reason = f"WhatsApp refused it ({outcome.error}): it goes by SMS instead"
            row.move_to(FollowUpStatus.SCHEDULED, reason, now)
            return Tally.RETRYING
        row.move_to(verdict.follow_up, verdict.reason, now)
        if verdict.delivered:
            row.move_to(FollowUpStatus.DELIVERED, None, now)
        return verdict.tally

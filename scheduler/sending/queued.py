"""Messages queued on their own: a person's reply, an acknowledgement, a notice to staff.

They take the follow-ups' path (dispatch.py): written down before anything is sent
(`queueing.queue`),
claimed with a lease, handed over a chunk at a time in a transaction that renews the lease only
while it is ours, sent at the sender's rate limit (`Courier`), looked up with the provider
before any resend when they may have left, and judged by `outcomes.judge`. A customer who has
opted out of the channel since gets nothing; a message nobody can tell went out ends `unknown`
for a person, never resent blindly.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.consent import WITHDRAWN
from scheduler.db import Among
from scheduler.lifecycle import (
    WAITING,
    Channel,
    Direction,
    FollowUpStatus,
    MessageStatus,
    ProviderStatus,
)
from scheduler.models import Customer, Message
from scheduler.sending import leases
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
from scheduler.sending.delivery import OURS, stopped_by_provider
from scheduler.sending.outcomes import Tally, judge
from scheduler.sending.transports import Outgoing

log = logging.getLogger(__name__)
# One pass at a time per worker in this process: a pass takes back what its worker left
# claimed, which must never be a claim another of its passes is sending.
_PASSES: dict[str, threading.Lock] = {}
_PASSES_LOCK = threading.Lock()

# A queued message has no follow-up: what a verdict says of one, it says of the message.
_ENDS = {FollowUpStatus.FAILED: MessageStatus.FAILED, FollowUpStatus.UNKNOWN: MessageStatus.UNKNOWN}


def summary_key(tally: Tally) -> str:
    """A queued-message pass counts under its own names beside the follow-ups'."""
    return f"queued_{tally.value}"


class QueuedSender:
    """Runs passes over queued messages for one worker, sharing its courier (and so its
    senders' rate limits) with the follow-ups."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        courier: Courier,
        *,
        worker_id: str,
        claim_size: int,
        max_attempts: int,
        reply_to: str = "",
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.sessions = sessions
        self.courier = courier
        self.worker_id = worker_id
        self.claim_size = claim_size
        self.max_attempts = max_attempts
        self.reply_to = reply_to  # where a customer's answer to an email of ours comes back
        self.jitter = jitter

    def run_pass(self, stop: threading.Event | None = None) -> dict[str, int]:
        """Send every queued message that is due, batch after batch; returns the counts that
        are not zero. A pass of this worker already under way makes this one return at once."""
        with _PASSES_LOCK:
            passes = _PASSES.setdefault(self.worker_id, threading.Lock())
        if not passes.acquire(blocking=False):
            return {}
        try:
            summary: Counter[Tally] = Counter()
            summary[Tally.RECOVERED] = self.recover_expired()
            while stop is None or not stop.is_set():
                ids = self.claim()
                if not ids:
                    break
                summary[Tally.CLAIMED] += len(ids)
                jobs = self.prepare(ids, summary)
                self.record(self.deliver_batch(jobs, stop), summary)
        finally:
            passes.release()
        return {summary_key(tally): count for tally, count in summary.items() if count}

    def recover_expired(self) -> int:
        with self.sessions.begin() as session:
            return leases.take_back_queued(
                session, worker_id=self.worker_id, now=self.courier.clock()
            )

    def claim(self) -> list[int]:
        with self.sessions.begin() as session:
            return leases.claim_queued(
                session,
                worker_id=self.worker_id,
                now=self.courier.clock(),
                lease=self.courier.lease,
                size=self.claim_size,
            )

    def deliver_batch(self, jobs: list[Job], stop: threading.Event | None = None) -> list[Outcome]:
        return self.courier.deliver_batch(jobs, self._hand_over, stop)

    def prepare(self, ids: list[int], summary: Counter[Tally]) -> list[Job]:
        """A job per claimed message: a lookup for one that may have left, else a send; a
        message to a customer who has opted out of its channel is settled as not sent."""
        now = self.courier.clock()
        jobs: list[Job] = []
        with self.sessions.begin() as session:
            messages = session.scalars(
                select(Message).where(Among(Message.id, ids)).order_by(Message.id)
            ).all()
            opted_out = self._opted_out(session, messages)
            for message in messages:
                if message.lease_owner != self.worker_id or message.status not in WAITING:
                    continue  # settled since the claim (an opt-out withdrew it)
                if message.provider_id is not None:  # a late result of an earlier attempt
                    self._reached(message, now)
                    summary[Tally.RECONCILED] += 1
                    continue
                outgoing = Outgoing(
                    f"message:{message.id}",
                    message.channel,
                    message.to_address,
                    message.body,
                    message.subject,
                    headers=self._headers(session, message),
                )
                if message.status == MessageStatus.UNCERTAIN:
                    since = message.created_at - LOOKUP_MARGIN
                    jobs.append(Job(message.id, message.id, outgoing, look_since=since))
                elif message.id in opted_out:
                    message.status, message.error_message = MessageStatus.FAILED, WITHDRAWN
                    message.status_updated_at = now
                    message.lease_owner = message.lease_expires_at = None
                    summary[Tally.SKIPPED] += 1
                else:
                    cost = message.segments or 1
                    jobs.append(Job(message.id, message.id, outgoing, cost=cost))
        return jobs

    def _headers(self, session: Session, message: Message) -> dict[str, str]:
        """An email to a customer asks for the answer at `reply_to` and joins the thread of
        their latest email (a notice to staff does neither)."""
        if message.channel is not Channel.EMAIL or message.customer_id is None:
            return {}
        headers = {"Reply-To": self.reply_to} if self.reply_to else {}
        theirs = session.scalar(
            select(Message.provider_id)
            .where(
                Message.customer_id == message.customer_id,
                Message.direction == Direction.INBOUND,
                Message.channel == Channel.EMAIL,
                Message.provider_id.like("<%"),
                Message.created_at <= message.created_at,
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(1)
        )
        if theirs is not None:
            headers |= {"In-Reply-To": theirs, "References": theirs}
        return headers

    @staticmethod
    def _opted_out(session: Session, messages: Iterable[Message]) -> set[int]:
        """The messages whose customer has since said no on that channel."""
        ids = {m.customer_id for m in messages if m.customer_id is not None}
        if not ids:
            return set()
        customers = {
            c.id: c for c in session.scalars(select(Customer).where(Among(Customer.id, ids)))
        }
        return {
            m.id
            for m in messages
            if m.customer_id is not None
            and customers[m.customer_id].opt_out_at(m.channel) is not None
        }

    def _hand_over(self, chunk: list[Job]) -> set[int]:
        with self.sessions.begin() as session:
            return leases.hand_over_queued(
                session,
                [job.key for job in chunk],
                worker_id=self.worker_id,
                now=self.courier.clock(),
                lease=self.courier.lease,
            )

    def record(self, outcomes: list[Outcome], summary: Counter[Tally]) -> None:
        """Write down what happened to a batch, in one transaction, then log each result."""
        results = record_all(self._record, outcomes, self.courier.clock(), "queued message")
        summary.update(tally for _, tally in results)
        log_results(log, "message", results, self.worker_id)

    def _record(self, outcomes: list[Outcome], now: datetime) -> list[Result]:
        with self.sessions.begin() as session:
            ids = [outcome.job.message_id for outcome in outcomes]
            messages = {
                m.id: m
                for m in session.scalars(
                    select(Message)
                    .where(Among(Message.id, ids))
                    .order_by(Message.id)
                    .with_for_update()
                )
            }
            return [
                (outcome, self._apply(session, messages[outcome.job.message_id], outcome, now))
                for outcome in one_message_per_provider_id(session, outcomes)
            ]

    @staticmethod
    def _reached(message: Message, now: datetime) -> None:
        """It reached the provider: whatever our own status says, it is sent."""
        if message.status in OURS:
            message.status, message.status_updated_at = ProviderStatus.SENT, now
        message.lease_owner = message.lease_expires_at = None

    def _apply(self, session: Session, message: Message, outcome: Outcome, now: datetime) -> Tally:
        """Write down what one outcome means (`outcomes.judge`); returns its summary key."""
        mine = message.lease_owner == self.worker_id
        if mine and outcome.sent is None and message.provider_id is not None:
            # Nothing found, or not sent this time, but an earlier attempt's late result says
            # it left (a slow worker's send, recorded after its lease): never send it again.
            self._reached(message, now)
            return Tally.RECONCILED
        verdict = judge(
            outcome.attempt(still_ours=mine, attempts=message.attempts, message=message),
            max_attempts=self.max_attempts,
            jitter=self.jitter,
        )
        if outcome.sent is not None:  # whoever holds it now, it left
            message.provider_id = outcome.sent.provider_id
            message.from_address = self.courier.transports[message.channel].sender
        end = _ENDS.get(verdict.follow_up) if verdict.follow_up is not None else None
        status = end or verdict.message_status
        if status is not None:
            message.status, message.status_updated_at = status, now
        if verdict.tally is Tally.LEASE_LOST:
            log.error("lease on queued message %d lost before its result was recorded", message.id)
            return verdict.tally
        if outcome.sent is not None:
            self._reached(message, now)  # a status the provider names that we do not rank
        message.lease_owner = message.lease_expires_at = None
        if outcome.error is not None:
            message.error_code, message.error_message = outcome.error.code, str(outcome.error)
        if end is not None:  # for a person: why it ended so, in words
            message.error_message = verdict.reason
        if verdict.opt_out and message.customer_id is not None:
            customer = session.get(Customer, message.customer_id)
            if customer is not None:
                stopped_by_provider(session, customer, now=now, actor=f"worker:{self.worker_id}")
        if verdict.refund_attempt:
            message.attempts -= 1
        if verdict.retry_in is not None:
            message.due_at = now + verdict.retry_in
        return verdict.tally

"""The hand-over to transports, the same for every message we send: a follow-up's, a person's
reply, an acknowledgement, a notice to staff.

Sends are handed over a chunk at a time: one short transaction (the caller's `HandOver`) renews
the chunk's leases, only where they are still ours, and marks its messages `handed_over`; only
then is a transport called, at the sender's rate limit. Lookups of earlier attempts need no
hand-over. Nothing here writes a result: the caller judges each outcome (`outcomes.judge`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from scheduler.lifecycle import Channel
from scheduler.logs import event
from scheduler.models import Message
from scheduler.sending.outcomes import Attempt, HeldBack, Tally
from scheduler.sending.pacing import SenderRateLimit
from scheduler.sending.transports import Failure, Outgoing, Sent, Transport, TransportError

log = logging.getLogger(__name__)
LOOKUP_MARGIN = timedelta(minutes=5)  # clock skew between us and the provider


@dataclass(frozen=True)
class Job:
    """A send (or, with `look_since`, a lookup of an earlier attempt) for the thread pool.
    `key` is the row whose lease covers it: the follow-up, or the queued message itself."""

    key: int
    message_id: int
    outgoing: Outgoing
    look_since: datetime | None = None
    not_after: datetime | None = None  # the send window closes then
    cost: int = 1  # SMS segments: what the sender's rate limit counts


@dataclass(frozen=True)
class Outcome:
    job: Job
    sent: Sent | None = None
    error: TransportError | None = None
    held_back: HeldBack | None = None  # not handed to the transport, and why
    detail: str | None = None  # what went wrong, with HAND_OVER_FAILED
    # How long the transport took to answer (stored in place: its share of the batch's store).
    seconds: float | None = None

    def attempt(self, *, still_ours: bool, attempts: int, message: Message) -> Attempt:
        """What `outcomes.judge` reads: this outcome, and where its message stood."""
        return Attempt(
            self.sent,
            self.error,
            self.held_back,
            self.detail,
            looked_up=self.job.look_since is not None,
            still_ours=still_ours,
            attempts=attempts,
            channel=message.channel,
            message_status=message.status,
        )


# Renews the leases of a chunk of sends still ours, in one commit; returns the keys that may go.
HandOver = Callable[[list[Job]], set[int]]


class Courier:
    """Runs lookups and sends, `concurrency` at a time, each sender at its rate limit."""

    def __init__(
        self,
        transports: Mapping[Channel, Transport],
        *,
        concurrency: int,
        clock: Callable[[], datetime],
        rate_limit: SenderRateLimit,
        lease: timedelta,
    ) -> None:
        self.transports = transports
        self.concurrency = concurrency
        self.clock = clock
        self.rate_limit = rate_limit
        self.lease = lease

    def deliver_batch(
        self, jobs: list[Job], hand_over: HandOver, stop: threading.Event | None = None
    ) -> list[Outcome]:
        """Run a batch's lookups and sends.

        Sends through a local transport run in this thread; the others in the pool. Sends are
        handed over a chunk of `concurrency` at a time, the next as soon as no more than one
        chunk is left in flight: the pool always has a chunk queued behind the one it runs, a
        hand-over is one transaction for `concurrency` sends, and at most two chunks are ever
        `handed_over` without a result: that bounds what a crash leaves to look up.
        """
        size = self.concurrency
        outcomes = [
            self._no_transport(job) for job in jobs if job.outgoing.channel not in self.transports
        ]
        jobs = [job for job in jobs if job.outgoing.channel in self.transports]
        waiting = deque(job for job in jobs if job.look_since is None)
        with ThreadPoolExecutor(size, "send") as pool:
            running = {pool.submit(self.deliver, job) for job in jobs if job.look_since}
            while waiting or running:
                if waiting and len(running) <= size:
                    chunk = [waiting.popleft() for _ in range(min(size, len(waiting)))]
                    if stop is not None and stop.is_set():
                        chunk.extend(waiting)
                        waiting.clear()
                        outcomes += [Outcome(j, held_back=HeldBack.STOPPING) for j in chunk]
                        continue
                    try:
                        handed = hand_over(chunk)
                    except DBAPIError as error:  # keep what was sent; send no more this batch
                        log.exception("hand-over failed")
                        chunk.extend(waiting)
                        waiting.clear()
                        held = HeldBack.HAND_OVER_FAILED
                        outcomes += [
                            Outcome(j, held_back=held, detail=str(error.orig)) for j in chunk
                        ]
                        continue
                    # A send still waiting for its sender's rate by then is put back, well
                    # before its lease could pass to a worker that would look it up and send it.
                    start_by = self.clock() + self.lease / 2
                    for job in chunk:
                        if job.key not in handed:
                            outcomes.append(Outcome(job, held_back=HeldBack.NOT_HANDED_OVER))
                        elif self.transports[job.outgoing.channel].parallel:
                            running.add(pool.submit(self.deliver, job, start_by))
                        else:
                            outcomes.append(self.deliver(job, start_by))
                    continue
                done, running = wait(running, return_when=FIRST_COMPLETED)
                outcomes += [future.result() for future in done]
        return outcomes

    @staticmethod
    def _no_transport(job: Job) -> Outcome:
        """A message on a channel turned off since it was written (WhatsApp, say): nothing
        was sent, nothing can look it up; a person sees why."""
        channel = job.outgoing.channel
        why = f"{channel} is off ({channel}.transport): nothing sends or finds it"
        failure = Failure.UNCERTAIN if job.look_since is not None else Failure.PERMANENT
        return Outcome(job, error=TransportError(why, failure=failure))

    def deliver(self, job: Job, start_by: datetime | None = None) -> Outcome:
        """Look up an earlier attempt, or send (unless the sender's rate kept it past
        `start_by`); never raises (a bug is an uncertain send)."""
        transport = self.transports[job.outgoing.channel]
        began: float | None = None
        try:
            if job.look_since is None:
                self.rate_limit.wait(transport.sender, transport.max_per_second, job.cost)
                if job.not_after is not None and self.clock() >= job.not_after:
                    return Outcome(job, held_back=HeldBack.WINDOW_CLOSED)
                if start_by is not None and self.clock() >= start_by:
                    return Outcome(job, held_back=HeldBack.RATE_WAIT_TOO_LONG)
            began = time.perf_counter()
            if job.look_since is not None:
                found = transport.find(job.outgoing, job.look_since)
                return Outcome(job, sent=found, seconds=time.perf_counter() - began)
            sent = transport.send(job.outgoing)
            return Outcome(job, sent=sent, seconds=time.perf_counter() - began)
        except TransportError as error:
            return Outcome(job, error=error, seconds=_since(began))
        except Exception as error:  # noqa: BLE001 - a transport bug must not lose the batch
            log.exception("transport %s failed unexpectedly", type(transport).__name__)
            uncertain = TransportError(repr(error), failure=Failure.UNCERTAIN)
            return Outcome(job, error=uncertain, seconds=_since(began))


def _since(began: float | None) -> float | None:
    return None if began is None else time.perf_counter() - began


# What one outcome came to, once recorded.
Result = tuple[Outcome, Tally]


def record_all(
    record: Callable[[list[Outcome], datetime], list[Result]],
    outcomes: list[Outcome],
    now: datetime,
    what: str,
) -> list[Result]:
    """Record a batch's outcomes in one transaction (`record`); if the database refuses it,
    one by one, so one result it cannot store does not lose the others (that one stays
    claimed: taken back and looked up after its lease)."""
    if not outcomes:
        return []
    try:
        return record(outcomes, now)
    except DBAPIError:
        log.exception("%s results could not be recorded at once; recording them one by one", what)
    results: list[Result] = []
    for outcome in outcomes:
        try:
            results += record([outcome], now)
        except DBAPIError:
            log.exception("result for %s %d not recorded", what, outcome.job.key)
            results.append((outcome, Tally.LEASE_LOST))
    return results


class SendCounts:
    """Every result this process has recorded since it started, by channel and outcome
    ("sms/sent"): the worker writes them into its heartbeat, for `/metrics`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, channel: str, outcome: str) -> None:
        with self._lock:
            self._counts[f"{channel}/{outcome}"] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


SENDS = SendCounts()


def log_results(logger: logging.Logger, kind: str, results: list[Result], worker_id: str) -> None:
    """One event per result: `follow_up.sent`, `message.retrying`... with the ids, the channel,
    the outcome and how long the transport took; an error's words when there was one. Each is
    counted in SENDS; the fields are put together only where the log will say them (a pass
    of thousands with the log at warnings builds none)."""
    for outcome, tally in results:
        job = outcome.job
        SENDS.add(job.outgoing.channel.value, tally.value)
        level = logging.WARNING if tally in (Tally.FAILED, Tally.UNKNOWN) else logging.INFO
        if not logger.isEnabledFor(level):
            continue
        fields: dict[str, object] = {
            f"{kind}_id": job.key,
            "message_id": job.message_id,
            "worker_id": worker_id,
            "channel": job.outgoing.channel.value,
            "outcome": tally.value,
        }
        if outcome.seconds is not None:
            fields["duration_ms"] = round(outcome.seconds * 1000, 1)
        if outcome.error is not None:
            fields["error"] = str(outcome.error)
        elif outcome.held_back is not None:
            fields["error"] = outcome.detail or outcome.held_back.value
        event(logger, f"{kind}.{tally.value}", level, **fields)


def one_message_per_provider_id(session: Session, outcomes: Iterable[Outcome]) -> list[Outcome]:
    """The outcomes, where a provider id that another message already holds becomes an
    uncertain error: a lookup may find a message like ours that was another's (the same words
    to the same number), and two of our messages never share one provider id."""
    outcomes = list(outcomes)
    found = [o.sent.provider_id for o in outcomes if o.sent]
    query = select(Message.provider_id, Message.id).where(Message.provider_id.in_(found))
    taken = {pid: mid for pid, mid in session.execute(query)} if found else {}
    checked = []
    for outcome in outcomes:
        mine = outcome.job.message_id
        if outcome.sent and taken.get(outcome.sent.provider_id, mine) != mine:
            error = TransportError(
                f"the provider's {outcome.sent.provider_id} belongs to another message",
                failure=Failure.UNCERTAIN,
            )
            outcome = Outcome(outcome.job, error=error)
        elif outcome.sent:
            taken[outcome.sent.provider_id] = mine  # twice in one batch: the second is unknown
        checked.append(outcome)
    return checked

"""The worker: APScheduler 3 as a ticker that runs a dispatch pass every `worker.tick_seconds`.

APScheduler only ticks. The follow-ups are rows in our own table, claimed in batches, because
its job stores must not be shared between processes and drop `date` jobs that run late. Its
in-memory store holds one interval job, so a restart loses nothing: the work is in the database.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from types import FrameType
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from scheduler import heartbeats, retention
from scheduler.casework import case_products
from scheduler.casework.notices import escalate_overdue
from scheduler.clock import utcnow
from scheduler.collector import freeze_loaded
from scheduler.db import STATISTICS_SECONDS, make_session_factory, refresh_statistics
from scheduler.figures import objections
from scheduler.figures.first_answers import MEASURE, MEASURE_SECONDS, measure
from scheduler.figures.tallies import FOLD_SECONDS, compact
from scheduler.listening.inbound import triage
from scheduler.listening.themes import REREAD, REREAD_SECONDS, reread, vocabulary
from scheduler.logs import event
from scheduler.retention import RETENTION_SECONDS
from scheduler.sending import sent_texts
from scheduler.sending.composing import load_composer
from scheduler.sending.courier import SENDS
from scheduler.sending.dispatch import Dispatcher
from scheduler.sending.transports import make_transports
from scheduler.settings import LiveSettings

if TYPE_CHECKING:  # APScheduler is loaded by the worker, not by `dispatch --once`
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.base import BaseScheduler
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

DISPATCH_JOB = "dispatch"
REPLIES_JOB = "replies"
MAIL_JOB = "mail"
STATISTICS_JOB = "statistics"
TALLIES_JOB = "tallies"
THEMES_JOB = "themes"
FIRST_ANSWERS_JOB = "first-answers"
RETENTION_JOB = "retention"
TEXTS_JOB = "sent-texts"
CASE_PRODUCTS_JOB = "case-products"
OBJECTED_JOB = "objected"
REPLIES_SECONDS = 5
TEXTS_SECONDS = 10  # how long a text sent waits to be copied for the outbox's search, at most
SIGNAL_CHECK_SECONDS = 0.2  # how soon a SIGTERM is seen, whichever thread it reached


@cache
def worker_id() -> str:
    """Names the lease owner: which machine and process holds a claim. The random part keeps
    containers apart that share a host name and run as pid 1."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def make_dispatcher(engine: Engine, settings: LiveSettings) -> Dispatcher:
    sessions = make_session_factory(engine, writer=True)
    config = settings.current()
    transports = make_transports(config, sessions, utcnow)
    return Dispatcher(sessions, config, transports, worker_id=worker_id())


def read_replies(dispatcher: Dispatcher, stop: threading.Event | None = None) -> dict[str, int]:
    """Read new replies (cases, acknowledgements), escalate overdue cases, then send what is
    queued (people's replies, acknowledgements, notices): what must happen within seconds, not
    at the next dispatch tick."""
    config, sessions = dispatcher.config, dispatcher.sessions
    read = triage(sessions, config, now=utcnow())
    with sessions.begin() as session:
        escalated = escalate_overdue(session, config=config, now=utcnow())
    sent = dispatcher.queued.run_pass(stop)
    return {"replies_read": read, "escalated": escalated} | sent


def read_mailbox(dispatcher: Dispatcher) -> dict[str, int]:
    """Store the customers' new email replies from the IMAP folder (`[email.inbound]`); the
    replies job reads them within seconds, as it reads an SMS. The mailbox's modules load only
    where there is one."""
    inbound = dispatcher.config.email_inbound
    if inbound.transport != "imap":
        return {}
    from scheduler.listening.email_replies import fetch_mail, mailbox_key, mailbox_of

    stored = fetch_mail(
        dispatcher.sessions,
        mailbox_of(inbound),
        key=mailbox_key(inbound),
        address=inbound.reply_to,
        now=utcnow(),
    )
    return {"mail_stored": stored}


def in_batches(
    sessions: sessionmaker[Session],
    batch: Callable[[Session, int], int],
    size: int,
    stop: threading.Event | None = None,
) -> int:
    """`batch(session, size)` a transaction at a time (a stop between two loses nothing),
    until it does fewer than `size` or `stop` is set; how many in all."""
    done = 0
    while stop is None or not stop.is_set():
        with sessions.begin() as session:
            did = batch(session, size)
        done += did
        if did < size:
            break
    return done


def copy_sent_texts(sessions: sessionmaker[Session], stop: threading.Event | None = None) -> int:
    """On PostgreSQL, copy the texts sent since into the outbox's search (`sent_texts`)."""
    return in_batches(sessions, sent_texts.copy_waiting, sent_texts.COPIED_AT_ONCE, stop)


def run_pass(dispatcher: Dispatcher, stop: threading.Event | None = None) -> dict[str, int]:
    """One pass of every job, one after the other (`postventa dispatch`): fetch new mail, read
    new replies and send what is queued, send the due follow-ups, then copy what was sent
    for the outbox's search and write whether the follow-ups noted were objected to."""
    mail = read_mailbox(dispatcher)
    replies = read_replies(dispatcher, stop)
    sent = dispatcher.run_pass(stop)
    after = {
        "texts_copied": copy_sent_texts(dispatcher.sessions, stop),
        "objections_read": objections.recheck(dispatcher.sessions, stop),
    }
    return sent | replies | mail | after


class Worker:
    """Owns the scheduler and the stop signal; a pass in progress ends at its next batch."""

    def __init__(self, engine: Engine, settings: LiveSettings) -> None:
        self.config = settings.base  # the worker's timing and transports: not editable
        self.settings = settings
        self.engine = engine
        self.dispatcher = make_dispatcher(engine, self.settings)
        self.stopping = threading.Event()

    def _current(self) -> Dispatcher:
        """The dispatcher, renewed when the owner has edited a setting since the last pass
        (transports and timing stay as the process started: they are not editable)."""
        config = self.settings.current()
        if config is not self.dispatcher.config:
            old = self.dispatcher
            self.dispatcher = Dispatcher(
                old.sessions,
                config,
                old.transports,
                worker_id=old.worker_id,
                rate_limit=old.courier.rate_limit,  # the senders' budgets carry over
            )
        return self.dispatcher

    def _heartbeat(self, write: Callable[..., None], **values: object) -> None:
        """Write the heartbeat in a transaction of its own; a database that refuses it costs
        the heartbeat, never a pass (the health check will say no worker is passing)."""
        try:
            with self.dispatcher.sessions.begin() as session:
                write(session, worker_id(), now=utcnow(), **values)
        except DBAPIError as error:
            log.warning("heartbeat not written: %s", error.orig)

    def tick(self) -> dict[str, int]:
        """The due follow-ups; replies and queued messages are the `read` job's. A pass that
        found nothing to do is logged at DEBUG: at INFO, a line every tick says nothing."""
        began = time.perf_counter()
        self._heartbeat(heartbeats.pass_began)
        summary = self._current().run_pass(self.stopping)
        seconds = time.perf_counter() - began
        self._heartbeat(
            heartbeats.pass_ended,
            seconds=seconds,
            sent=summary.get("sent", 0),
            sends=SENDS.snapshot(),
        )
        busy = {key: value for key, value in summary.items() if value}
        event(
            log,
            "worker.pass",
            logging.INFO if busy else logging.DEBUG,
            worker_id=worker_id(),
            duration_ms=round(seconds * 1000, 1),
            **busy,
        )
        return summary

    def schedule(self, scheduler: BaseScheduler) -> None:
        """Interval jobs, each coalesced, never two at once, run however late, first now: the
        dispatch pass every `worker.tick_seconds`, reading replies every few seconds (a
        complaint reaches a person fast even while a long pass is sending), the database's
        statistics hourly (SQLite's planner has none otherwise), folding the follow-ups'
        tallies every few minutes (the dashboard's sums stay short), reading again each minute
        the themes of replies read with other words than the owner's now and the opening-hours
        minutes of the cases answered since (the dashboard's first answers), and, with an IMAP
        mailbox, fetching new mail every tick; with `[privacy] retention_months`, erasing
        hourly the words older than that; on PostgreSQL, copying the texts sent for the
        outbox's search every few seconds (off the send path: `sent_texts`), reading the
        product of the cases opened lately again each minute (`case_products`) and writing
        every few seconds whether the follow-ups the triggers noted were objected to
        (`objections`)."""
        tick = self.config.worker.tick_seconds
        jobs = [
            (self.tick, tick, DISPATCH_JOB),
            (self.read, min(REPLIES_SECONDS, tick), REPLIES_JOB),
            (self.refresh_statistics, STATISTICS_SECONDS, STATISTICS_JOB),
            (self.fold_tallies, FOLD_SECONDS, TALLIES_JOB),
            (self.reread_themes, REREAD_SECONDS, THEMES_JOB),
            (self.measure_first_answers, MEASURE_SECONDS, FIRST_ANSWERS_JOB),
        ]
        if self.config.email_inbound.transport == "imap":
            jobs.append((self.fetch_mail, tick, MAIL_JOB))
        if self.config.privacy.retention_months:
            jobs.append((self.keep_words_no_longer, RETENTION_SECONDS, RETENTION_JOB))
        if self.engine.dialect.name == "postgresql":
            jobs.append((self.copy_sent_texts, TEXTS_SECONDS, TEXTS_JOB))
            jobs.append(
                (self.recheck_case_products, case_products.RECHECK_SECONDS, CASE_PRODUCTS_JOB)
            )
            jobs.append((self.recheck_objected, objections.RECHECK_SECONDS, OBJECTED_JOB))
        for job, seconds, job_id in jobs:
            scheduler.add_job(
                job,
                "interval",
                seconds=seconds,
                id=job_id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )

    def refresh_statistics(self) -> None:
        refresh_statistics(self.engine)

    def keep_words_no_longer(self) -> int:
        """`[privacy] retention_months`: erase the words older than that, a batch at a time."""
        swept = retention.sweep_all(
            self.dispatcher.sessions,
            months=self.config.privacy.retention_months,
            now=utcnow(),
            actor=f"worker:{worker_id()}",
            stop=self.stopping,
        )
        if swept:
            event(
                log,
                "worker.retention",
                worker_id=worker_id(),
                messages=swept.messages,
                outbox=swept.outbox,
                cases=swept.cases,
            )
        return swept.messages + swept.outbox + swept.cases

    def fold_tallies(self) -> int:
        with self.dispatcher.sessions.begin() as session:
            return compact(session)

    def reread_themes(self) -> int:
        """Every reply read with other words, read again."""
        return self._in_batches(
            lambda session, limit: reread(session, vocabulary(session), limit=limit), REREAD
        )

    def measure_first_answers(self) -> int:
        """The opening-hours minutes of every case answered since, or counted in hours the
        owner has since changed."""
        config = self._current().config
        opening, tz = config.cases.opening_hours, config.business.tz
        return self._in_batches(
            lambda session, limit: measure(session, opening, tz, limit=limit), MEASURE
        )

    def recheck_case_products(self) -> int:
        with self.dispatcher.sessions.begin() as session:
            return case_products.recheck(session, now=utcnow())

    def recheck_objected(self) -> int:
        return objections.recheck(self.dispatcher.sessions, self.stopping)

    def _in_batches(self, batch: Callable[[Session, int], int], size: int) -> int:
        return in_batches(self.dispatcher.sessions, batch, size, self.stopping)

    def copy_sent_texts(self) -> int:
        return copy_sent_texts(self.dispatcher.sessions, self.stopping)

    def read(self) -> dict[str, int]:
        """Every few seconds, also the sign that this process is alive."""
        self._heartbeat(heartbeats.alive)
        summary = read_replies(self._current(), self.stopping)
        if busy := {key: value for key, value in summary.items() if value}:
            event(log, "worker.replies", worker_id=worker_id(), **busy)
        return summary

    def fetch_mail(self) -> dict[str, int]:
        summary = read_mailbox(self._current())
        if busy := {key: value for key, value in summary.items() if value}:
            event(log, "worker.mail", worker_id=worker_id(), **busy)
        return summary

    def _scheduler_options(self) -> dict[str, object]:
        from apscheduler.executors.pool import ThreadPoolExecutor

        return {"timezone": UTC, "executors": {"default": ThreadPoolExecutor(3)}}

    def _started(self) -> None:
        self._heartbeat(heartbeats.started, tick_seconds=self.config.worker.tick_seconds)

    def start_in_background(self) -> BackgroundScheduler:
        """For `postventa run`: the web server owns the main thread."""
        from apscheduler.schedulers.background import BackgroundScheduler

        self._started()
        scheduler = BackgroundScheduler(**self._scheduler_options())
        self.schedule(scheduler)
        scheduler.start()
        return scheduler

    def stop(self, scheduler: BaseScheduler) -> None:
        self.stopping.set()
        if scheduler.running:
            scheduler.shutdown(wait=True)
            log.info("scheduler shut down: no pass is running")
        self._heartbeat(heartbeats.stopped)

    def run_forever(self) -> None:
        """For `postventa worker`: until SIGTERM or SIGINT, then finish the batch in hand. A
        signal that comes while the scheduler is still starting is kept, not lost."""
        from apscheduler.schedulers.background import BackgroundScheduler

        self._started()
        scheduler = BackgroundScheduler(**self._scheduler_options())
        self.schedule(scheduler)
        # The handler only notes the signal: no lock, no logging. It runs in the main thread
        # between two of its steps, and one that held the same lock (the Event's, a stream's)
        # would wait on itself for good.
        received: list[int] = []

        def on_signal(number: int, _frame: FrameType | None) -> None:
            received.append(number)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info("worker %s: a pass every %d s", worker_id(), self.config.worker.tick_seconds)
        load_composer()
        freeze_loaded()
        scheduler.start()
        # Woken often, never blocked for good: the kernel may hand the signal to one of the
        # scheduler's threads, and Python runs the handler only when the main thread next runs.
        while not received and not self.stopping.wait(SIGNAL_CHECK_SECONDS):
            pass
        if received:
            log.info("%s: stopping after the batch in hand", signal.Signals(received[0]).name)
        self.stop(scheduler)
        log.info("worker stopped")

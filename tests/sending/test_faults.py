"""The fault suite: real worker processes and the web server on PostgreSQL, against the
Twilio-compatible fake and an SMTP server that stops answering. Workers are killed at random
moments, the provider fails, the database cuts connections: nothing may be lost, nothing sent
twice. Each test adds its counts to the figures printed at the end of the run.

Processes cannot be frozen in time, and two waits would make these tests minutes long: the
backoff before a retry (30 s at least) and the lease of a killed worker (30 s at least).
`FastForward` skips exactly those two, in the database, as if that time had passed; their
lengths are tested with a frozen clock in test_dispatch.py.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from scheduler.addresses import phone_of
from scheduler.clock import utcnow
from scheduler.config import Config, defaults
from scheduler.db import make_session_factory
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import CadenceStep, Customer, FollowUp, Message
from tests.conftest import REPORT, TESTS_APPLICATION
from tests.dispatching import setup_sales
from tests.factories import sale_input
from tests.processes import (
    ANY_TIME,
    DAY1,
    POSTVENTA,
    FastForward,
    Workers,
    day1,
    due_backlog,
    free_port,
    process_config,
    twilio_sections,
    wait_for,
    whatsapp_section,
)
from tests.twilio_fake import AUTH_TOKEN, FakeTwilio, Faults

pytestmark = [pytest.mark.slow, pytest.mark.timed]

SEED = 20261128  # the random moments are the same on every run
BROKEN_OFF = "raised an exception"  # APScheduler's log line for a pass (or a read) that failed
SETTLED = {
    FollowUpStatus.SENT,
    FollowUpStatus.DELIVERED,
    FollowUpStatus.SKIPPED,
    FollowUpStatus.CANCELLED,
}


@pytest.fixture
def config(pg_engine: Engine) -> Config:
    return defaults().replace(database={"url": pg_engine.url.render_as_string(False)})


def settled(sessions: sessionmaker[Session]) -> Counter[FollowUpStatus]:
    """How many day-1 follow-ups are in each status (counted by the database: it is polled)."""
    query = (
        select(FollowUp.status, func.count())
        .join(CadenceStep)
        .where(CadenceStep.key == DAY1)
        .group_by(FollowUp.status)
    )
    with sessions() as session:
        return Counter({status: count for status, count in session.execute(query)})


def wait_until_settled(sessions: sessionmaker[Session], seconds: float = 180) -> None:
    """Until no day-1 follow-up is waiting or being sent (however it ended: asserted after)."""
    busy = {FollowUpStatus.SCHEDULED, FollowUpStatus.SENDING}
    wait_for(lambda: not busy & set(settled(sessions)), "every follow-up to settle", seconds)


def sent_once_each(sessions: sessionmaker[Session], fake: FakeTwilio) -> Counter[str]:
    """What the provider holds agrees with what we recorded: one message per follow-up sent,
    under the provider id we wrote down, and none for a follow-up not sent."""
    per_number = Counter(phone_of(message["to"]) for message in fake.messages)
    sids = {phone_of(message["to"]): message["sid"] for message in fake.messages}
    assert set(per_number.values()) <= {1}, [n for n, count in per_number.items() if count > 1]
    with sessions() as session:
        rows = day1(session)
        for row in rows:
            number = row.sale.customer.phone
            if row.status in (FollowUpStatus.SENT, FollowUpStatus.DELIVERED):
                assert row.provider_id == sids.get(number or ""), (row.id, row.status_reason)
            else:
                assert number not in sids, (row.id, row.status, row.status_reason)
    return per_number


def report(name: str, **counts: object) -> None:
    REPORT.append(f"faults, {name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# --- 3 workers, 2 000 follow-ups, 20 SIGKILLs, STOPs through the web server -------------------


class WebServer:
    """`postventa web` on a free port, taking signed Twilio webhooks."""

    def __init__(self, tmp_path: Path, config_path: Path, port: int) -> None:
        self.port = port
        self.public = f"http://127.0.0.1:{port}"
        command = [POSTVENTA, "--config", str(config_path), "web", "--port", str(port)]
        self.process = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(self._healthy, "the web server to answer", 30)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.public}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop_request(self, number: str, n: int) -> tuple[int, float]:
        """A customer's STOP, signed as Twilio signs it; its answer and how long it took."""
        path = "/webhooks/twilio/sms"
        params = {"MessageSid": f"SM{n:032x}", "From": number, "To": "+15005550006", "Body": "STOP"}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(self.public + path, params)
        request = urllib.request.Request(
            self.public + path,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature},
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status), time.monotonic() - started

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def test_three_workers_killed_twenty_times_send_two_thousand_once_each(
    pg_engine: Engine, config: Config, tmp_path: Path
) -> None:
    due, kills, stops = 2000, 20, 40
    rng = random.Random(SEED)
    sessions = due_backlog(pg_engine, config, due, whatsapp_every=3)  # a third by WhatsApp
    stoppers = [f"+519{n:08d}" for n in rng.sample(range(due), stops)]
    port = free_port()
    with FakeTwilio(latency=0.1) as fake:
        sections = twilio_sections(fake, concurrency=4)
        sections["business"] = ANY_TIME["business"] | {"public_url": f"http://127.0.0.1:{port}"}
        sections["worker"] |= {"tick_seconds": 1, "batch_size": 40}
        sections["whatsapp"] = whatsapp_section(fake)
        path = process_config(tmp_path, pg_engine, **sections)
        web = WebServer(tmp_path, path, port)
        answers: list[tuple[int, float]] = []

        def customers_say_stop() -> None:
            pauses = random.Random(SEED + 1)  # its own: the kills' moments stay repeatable
            for n, number in enumerate(stoppers):
                time.sleep(pauses.uniform(0, 0.2))
                answers.append(web.stop_request(number, n))

        try:
            with Workers(path, 3) as workers, FastForward(sessions, workers.killed):
                wait_for(lambda: len(fake.posts()) >= 50, "the workers to start sending")
                started = time.monotonic()
                stopping = threading.Thread(target=customers_say_stop)
                stopping.start()
                for _ in range(kills):  # at random moments while they send
                    time.sleep(rng.uniform(0.05, 0.4))
                    workers.kill_one(rng)
                posts_at_last_kill = len(fake.posts())
                killing = time.monotonic() - started
                stopping.join(timeout=60)
                wait_until_settled(sessions)
                sending = time.monotonic() - started
                codes = workers.stop()
        finally:
            web.close()
        per_number = sent_once_each(sessions, fake)
        by_whatsapp = sum(message["to"].startswith("whatsapp:") for message in fake.messages)
    assert posts_at_last_kill < due  # the kills came mid-sending
    assert by_whatsapp >= due // 3 - stops  # the customers who said yes, as Content templates
    assert codes == [0, 0, 0], workers.log()[-3000:]
    statuses = settled(sessions)
    with sessions() as session:
        opted_out = set(
            session.scalars(select(Customer.phone).where(Customer.sms_opt_out_at.isnot(None)))
        )
        attempts = max(row.attempts for row in day1(session))
    assert opted_out == set(stoppers)  # every STOP kept
    assert [status for status, _ in answers] == [200] * stops
    slowest = max(seconds for _, seconds in answers)
    assert slowest < 5  # a STOP never waits on a worker
    # Everyone else got their one message; a customer who said STOP, one at most.
    lost = {f"+519{n:08d}" for n in range(due)} - set(stoppers) - set(per_number)
    assert not lost
    assert set(statuses) <= SETTLED, statuses
    assert attempts <= config.worker.max_attempts
    report(
        "3 workers, 20 SIGKILLs",
        due=due,
        kills=len(workers.killed),
        messages=len(fake.messages),
        by_whatsapp=by_whatsapp,
        doubled=len(fake.messages) - len(per_number),
        lost=len(lost),
        stops=stops,
        slowest_stop=f"{slowest:.2f} s",
        stopped_in_time=len(set(stoppers) - set(per_number)),
        most_attempts=attempts,
        seconds_killing=f"{killing:.1f}",
        seconds_sending=f"{sending:.1f}",
    )


# --- the provider failing 30% of the time -------------------------------------------------------


def test_a_provider_failing_thirty_percent_of_the_time_gets_everything_once(
    pg_engine: Engine, config: Config, tmp_path: Path
) -> None:
    due = 400
    sessions = due_backlog(pg_engine, config, due)
    faults = Faults(rate=0.3, seed=SEED, most_per_number=2, late_seconds=2.0)
    with FakeTwilio(latency=0.02, faults=faults) as fake:
        sections = twilio_sections(fake, concurrency=8)
        sections["worker"] |= {"tick_seconds": 1, "batch_size": 40, "send_timeout_seconds": 0.5}
        path = process_config(tmp_path, pg_engine, **sections)
        with Workers(path, 3) as workers, FastForward(sessions, workers.killed):
            wait_until_settled(sessions)
            codes = workers.stop()
        per_number = sent_once_each(sessions, fake)
        attempts = len(fake.posts())
    statuses = settled(sessions)
    assert codes == [0, 0, 0], workers.log()[-3000:]
    assert statuses == Counter({FollowUpStatus.SENT: due}), statuses
    assert len(per_number) == due
    served = sum(fake.faults_served.values())
    assert 0.2 * due < served and set(fake.faults_served) == set(faults.kinds())
    with sessions() as session:
        most = max(row.attempts for row in day1(session))
    assert most <= config.worker.max_attempts
    report(
        "provider failing 30%",
        due=due,
        messages=len(fake.messages),
        doubled=len(fake.messages) - len(per_number),
        requests=attempts,
        faults=served,
        most_attempts=most,
    )
    REPORT.append(
        "  " + ", ".join(f"{kind}: {n}" for kind, n in sorted(fake.faults_served.items()))
    )


# --- PostgreSQL cutting the workers' connections ------------------------------------------------


def test_workers_recover_by_themselves_when_postgresql_cuts_their_connections(
    pg_engine: Engine, config: Config, tmp_path: Path
) -> None:
    due = 400
    rng = random.Random(SEED)
    sessions = due_backlog(pg_engine, config, due)
    terminate = text(  # the workers' sessions in the middle of something, not idle in a pool
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND application_name <> :tests AND state <> 'idle'"
    )
    cut = 0
    with FakeTwilio(latency=0.05) as fake:
        sections = twilio_sections(fake, concurrency=4)
        sections["worker"] |= {"tick_seconds": 1, "batch_size": 40}
        path = process_config(tmp_path, pg_engine, **sections)
        with Workers(path, 2) as workers:
            wait_for(lambda: len(fake.posts()) >= 20, "the workers to start sending")
            # Cut at random moments until two passes broke off, or most was sent.
            while workers.log().count(BROKEN_OFF) < 2 and len(fake.posts()) < due * 0.8:
                time.sleep(rng.uniform(0.005, 0.03))  # passes are short: cut often
                with pg_engine.begin() as connection:
                    cut += connection.scalar(terminate, {"tests": TESTS_APPLICATION}) or 0
            posts_at_last_cut = len(fake.posts())
            # Sooner than a lease runs out: each worker takes back what its broken pass left.
            wait_until_settled(sessions, config.worker.lease_seconds - 5)
            codes = workers.stop()
        per_number = sent_once_each(sessions, fake)
    log = workers.log()
    assert posts_at_last_cut < due and log.count(BROKEN_OFF) >= 1  # cut mid-pass
    assert "terminating connection due to administrator command" in log
    assert codes == [0, 0], log[-3000:]
    assert settled(sessions) == Counter({FollowUpStatus.SENT: due})
    assert len(per_number) == due
    with sessions() as session:
        uncertain = session.scalars(select(Message.id).where(Message.status == "uncertain")).all()
    assert not uncertain  # every send the cuts made uncertain was looked up and settled
    report(
        "PostgreSQL connections cut",
        due=due,
        connections_cut=cut,
        messages=len(fake.messages),
        doubled=len(fake.messages) - len(per_number),
        passes_broken_off=log.count(BROKEN_OFF),
    )


# --- an SMTP server that hangs after DATA -------------------------------------------------------


class Hanging:
    """Takes the message, then never answers DATA: did it go out? Nobody can tell."""

    def __init__(self) -> None:
        self.data = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data += 1
        await asyncio.sleep(3600)
        return "250 OK"


@pytest.fixture
def hanging_smtp() -> Iterator[tuple[Hanging, int]]:
    handler = Hanging()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop(no_assert=True)


def test_an_email_whose_data_got_no_answer_becomes_unknown_and_is_never_resent(
    pg_engine: Engine, config: Config, tmp_path: Path, hanging_smtp: tuple[Hanging, int]
) -> None:
    handler, port = hanging_smtp
    sold = utcnow() - timedelta(days=1, minutes=5)
    sale = sale_input("S-1", phone=None, email="rosa@example.pe", sold_at=sold)
    sessions = setup_sales(pg_engine, config.replace(**ANY_TIME), sale, now=sold)
    email = {
        "transport": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "starttls": False,
        "from_address": "Mi Tienda <postventa@example.pe>",
    }
    worker: dict[str, object] = {"tick_seconds": 1, "send_timeout_seconds": 1}
    path = process_config(tmp_path, pg_engine, email=email, worker=worker)
    with Workers(path, 1) as workers, FastForward(sessions, workers.killed):
        wait_for(
            lambda: settled(sessions) == Counter({FollowUpStatus.UNKNOWN: 1}),
            "the worker to give the email up as unknown",
            30,
        )
        codes = workers.stop()
    again = subprocess.run(  # one more pass, from another process: nothing to resend
        [POSTVENTA, "--config", str(path), "dispatch", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert codes == [0], workers.log()
    assert again.stdout.startswith("recovered 0, claimed 0, sent 0"), again.stdout
    with sessions() as session:
        [row] = day1(session)
        [message] = session.scalars(select(Message).where(Message.follow_up_id == row.id))
    assert handler.data == 1
    assert message.status == "uncertain" and "check with the provider" in (row.status_reason or "")
    report("SMTP hanging after DATA", data_commands=handler.data, status=row.status.value)


def test_fast_forward_reaches_only_retries_and_dead_leases(
    pg_engine: Engine, config: Config
) -> None:
    """The one shortcut of this suite touches nothing it should not."""
    sessions = make_session_factory(pg_engine, writer=True)
    setup_sales(pg_engine, config, sale_input("S-1"), sale_input("S-2", phone="+51911111111"))
    later = utcnow() + timedelta(hours=1)
    with sessions.begin() as session:
        first, second = day1(session)
        first.attempts, first.due_at = 1, later  # a retry, waiting on its backoff
        second.due_at = later  # a first attempt, not due yet
    FastForward(sessions, killed=[]).step()
    with sessions() as session:
        first, second = day1(session)
        assert first.due_at < later and second.due_at == later

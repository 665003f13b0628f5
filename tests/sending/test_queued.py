"""A person's reply, an acknowledgement, a notice to staff: queued on their own, sent on the
follow-ups' path (written down first, leased, handed over, paced, looked up before a resend)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.consent import WITHDRAWN, opt_out
from scheduler.lifecycle import Channel, ConsentSource, MessageStatus
from scheduler.models import AuditEntry, Customer, Message
from scheduler.sending.courier import Outcome, Result
from scheduler.sending.outcomes import Tally
from scheduler.sending.pacing import SenderRateLimit
from scheduler.sending.queueing import queue
from scheduler.sending.transports import Failure, Outgoing, Sent, TransportError
from scheduler.sending.transports.outbox import OutboxTransport
from tests.dispatching import Clock, Scripted, dispatcher, outbox, scripted, setup_sales
from tests.factories import NOW, sale_input

ROSA = "+51987654321"


def queued_reply(sessions: sessionmaker[Session], body: str = "Le llamamos hoy.") -> int:
    """A reply to Rosa, queued at NOW as the inbox queues it."""
    with sessions.begin() as session:
        customer = session.scalars(select(Customer)).one()
        message = queue(
            session,
            channel=Channel.SMS,
            to=ROSA,
            subject=None,
            body=body,
            now=NOW,
            customer_id=customer.id,
        )
        session.flush()
        return message.id


@pytest.fixture
def sessions(engine: Engine, config: Config) -> sessionmaker[Session]:
    """Rosa, who bought something (her follow-ups are not due yet)."""
    return setup_sales(engine, config, sale_input("S-1"))


def kept(sessions: sessionmaker[Session]) -> int:
    """How many messages the outbox holds: what was sent."""
    with sessions() as session:
        return len(outbox(session))


def message(sessions: sessionmaker[Session], message_id: int) -> Message:
    with sessions() as session:
        return session.get_one(Message, message_id)


def test_a_queued_reply_is_written_down_then_sent_once(
    sessions: sessionmaker[Session], config: Config
) -> None:
    reply = queued_reply(sessions, "Hola Rosa, ¿cómo está?")
    before = message(sessions, reply)
    assert (before.status, before.segments, before.encoding) == ("prepared", 1, "UCS-2")
    work = dispatcher(sessions, config, Clock(NOW))
    assert work.queued.run_pass() == {"queued_claimed": 1, "queued_sent": 1}
    assert work.queued.run_pass() == {}
    after = message(sessions, reply)
    assert (after.status, after.attempts, after.lease_owner) == ("stored", 1, None)
    with sessions() as session:
        [sent] = outbox(session)
    assert (sent.reference, sent.to_address) == (f"message:{reply}", ROSA)
    assert after.provider_id == f"outbox-{sent.id}"


def test_queued_replies_wait_for_the_senders_rate_limit(
    sessions: sessionmaker[Session], config: Config
) -> None:
    for n in range(3):
        queued_reply(sessions, f"Respuesta {n}")
    waited: list[float] = []
    pacing = SenderRateLimit(clock=lambda: 0.0, sleep=waited.append)  # time stands still
    transports = scripted(sessions, Clock(NOW))
    transports[Channel.SMS].max_per_second = 2
    work = dispatcher(sessions, config, Clock(NOW), transports)
    work.courier.rate_limit = work.queued.courier.rate_limit = pacing
    assert work.queued.run_pass()["queued_sent"] == 3
    assert sorted(waited) == [0.5, 1.0]  # the first goes at once, then one each half second


def test_an_uncertain_reply_is_looked_up_before_it_is_sent_again(
    sessions: sessionmaker[Session], config: Config
) -> None:
    reply = queued_reply(sessions)
    clock = Clock(NOW)
    timeout = TransportError("read timed out", failure=Failure.UNCERTAIN)
    transports = scripted(sessions, clock, timeout)
    work = dispatcher(sessions, config, clock, transports)
    assert work.queued.run_pass()["queued_retrying"] == 1
    assert message(sessions, reply).status == "uncertain"
    clock.advance(minutes=1)
    summary = work.queued.run_pass()
    assert (summary["queued_reconciled"], summary["queued_sent"]) == (1, 1)
    sms = transports[Channel.SMS]
    assert (len(sms.lookups), len(sms.sends)) == (1, 2)  # looked up, found nothing, sent
    assert kept(sessions) == 1


def test_a_reply_nobody_can_confirm_ends_unknown_for_a_person(
    sessions: sessionmaker[Session], config: Config
) -> None:
    reply = queued_reply(sessions)
    clock = Clock(NOW)
    timeout = TransportError("read timed out", failure=Failure.UNCERTAIN)
    transports = scripted(sessions, clock, timeout)
    transports[Channel.SMS].find_error = TransportError("lookup failed", failure=Failure.UNCERTAIN)
    work = dispatcher(sessions, config, clock, transports)
    work.queued.run_pass()
    clock.advance(minutes=1)
    assert work.queued.run_pass()["queued_unknown"] == 1
    clock.advance(days=1)
    assert work.queued.run_pass() == {}  # never resent blindly
    ended = message(sessions, reply)
    assert ended.status == MessageStatus.UNKNOWN
    assert "could not tell whether it was sent" in (ended.error_message or "")
    assert len(transports[Channel.SMS].sends) == 1


def test_a_worker_whose_lease_ran_out_hands_nothing_over(
    sessions: sessionmaker[Session], config: Config
) -> None:
    queued_reply(sessions)
    clock = Clock(NOW)
    slow = dispatcher(sessions, config, clock, worker_id="slow").queued
    jobs = slow.prepare(slow.claim(), Counter())
    clock.advance(seconds=config.worker.lease_seconds + 1)
    other = dispatcher(sessions, config, clock, worker_id="other").queued
    assert other.run_pass()["queued_sent"] == 1  # took it back and sent it
    outcomes = slow.deliver_batch(jobs)
    slow.record(outcomes, Counter())
    assert [o.held_back for o in outcomes] == [
        "not handed over: the lease ran out, or the customer opted out meanwhile"
    ]
    assert kept(sessions) == 1


def test_an_unsubscribed_recipient_error_on_a_reply_records_the_opt_out(
    sessions: sessionmaker[Session], config: Config
) -> None:
    reply = queued_reply(sessions)
    stopped = TransportError("replied STOP", failure=Failure.UNSUBSCRIBED, code="21610")
    transports = scripted(sessions, Clock(NOW), stopped)
    work = dispatcher(sessions, config, Clock(NOW), transports)
    second = queued_reply(sessions, "¿Sigue ahí?")
    with sessions.begin() as session:  # queued later than the first
        session.get_one(Message, second).due_at = NOW + timedelta(minutes=1)
    assert work.queued.run_pass() == {"queued_claimed": 1, "queued_failed": 1}
    assert message(sessions, reply).status == "failed"
    later = message(sessions, second)  # not sent: the opt-out settled it at once
    assert (later.status, later.error_message) == ("failed", WITHDRAWN)
    with sessions() as session:
        customer = session.scalars(select(Customer)).one()
        assert customer.sms_opt_out_source is ConsentSource.PROVIDER_REFUSAL
    assert len(transports[Channel.SMS].sends) == 1


def test_an_opt_out_withdraws_the_customers_queued_messages_at_once(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1", email="rosa@example.pe"))
    reply = queued_reply(sessions)
    with sessions.begin() as session:
        customer = session.scalars(select(Customer)).one()
        email = queue(
            session,
            channel=Channel.EMAIL,
            to="rosa@example.pe",
            subject="Su caso",
            body="Hola",
            now=NOW,
            customer_id=customer.id,
        )
        staff = queue(
            session, channel=Channel.SMS, to="+51911222333", subject=None, body="Caso", now=NOW
        )
        session.flush()
        email_id, staff_id = email.id, staff.id
        opt_out(
            session,
            customer,
            channel=Channel.SMS,
            source=ConsentSource.KEYWORD,
            via="replied 'BAJA' by SMS",
            now=NOW + timedelta(seconds=1),
            actor="customer",
        )
    assert (message(sessions, reply).status, message(sessions, reply).error_message) == (
        "failed",
        WITHDRAWN,
    )
    assert message(sessions, email_id).status == "prepared"  # another channel
    assert message(sessions, staff_id).status == "prepared"  # staff are told all the same
    with sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.opt_out")
        ).one()
    assert entry.details["messages_withdrawn"] == 1
    summary = dispatcher(sessions, config, Clock(NOW + timedelta(seconds=2))).queued.run_pass()
    assert summary["queued_sent"] == 2


class Blind(Scripted):
    """A provider whose lookup cannot see a message that is still on its way to it."""

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        self.lookups.append(message)
        return None


def test_a_slow_workers_late_send_is_never_sent_again(
    sessions: sessionmaker[Session], config: Config
) -> None:
    """Worker A hands a reply over, then is slow; its lease runs out and B looks the reply up
    before A's send reaches the provider, finding nothing. A's result, recorded late, says it
    left: B must not send it again."""
    reply = queued_reply(sessions)
    clock = Clock(NOW)
    slow = dispatcher(sessions, config, clock, worker_id="slow").queued
    late = slow.deliver_batch(slow.prepare(slow.claim(), Counter()))  # sent, not yet recorded
    clock.advance(seconds=config.worker.lease_seconds + 1)
    blind = {Channel.SMS: Blind(OutboxTransport(Channel.SMS, sessions, clock))}
    other = dispatcher(sessions, config, clock, blind, worker_id="other").queued
    assert other.recover_expired() == 1
    looked_up = other.deliver_batch(other.prepare(other.claim(), Counter()))
    slow.record(late, Counter())  # A's result arrives first ...
    summary: Counter[Tally] = Counter()
    other.record(looked_up, summary)  # ... then B's "not found"
    assert summary == Counter({Tally.RECONCILED: 1})
    assert other.run_pass() == {}
    assert kept(sessions) == 1
    assert (message(sessions, reply).status, message(sessions, reply).lease_owner) == (
        "stored",
        None,
    )


def test_a_send_kept_too_long_by_the_rate_limit_is_put_back_not_sent(
    sessions: sessionmaker[Session], config: Config
) -> None:
    first, second = queued_reply(sessions, "Uno"), queued_reply(sessions, "Dos")
    clock = Clock(NOW)
    transports = scripted(sessions, clock)
    transports[Channel.SMS].max_per_second = 1 / 400  # one every 400 s: past half the lease
    work = dispatcher(sessions, config, clock, transports)
    pacing = SenderRateLimit(
        clock=lambda: clock().timestamp(), sleep=lambda seconds: clock.advance(seconds=seconds)
    )
    work.courier.rate_limit = pacing
    summary = work.queued.run_pass()
    assert (summary["queued_sent"], summary["queued_released"]) == (1, 1)
    assert kept(sessions) == 1
    waiting = message(sessions, second if message(sessions, first).provider_id else first)
    assert (waiting.status, waiting.attempts) == ("not_sent", 0)  # not an attempt
    assert waiting.due_at is not None and waiting.due_at > clock()  # back in a while


def test_one_result_the_database_refuses_does_not_lose_the_others(
    sessions: sessionmaker[Session], config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        queued_reply(sessions, f"Respuesta {n}")
    work = dispatcher(sessions, config, Clock(NOW)).queued
    real = work._record

    def refuses_batches(outcomes: list[Outcome], now: datetime) -> list[Result]:
        if len(outcomes) > 1:
            raise OperationalError("UPDATE messages", {}, Exception("deadlock detected"))
        return real(outcomes, now)

    monkeypatch.setattr(work, "_record", refuses_batches)
    assert work.run_pass()["queued_sent"] == 3
    assert kept(sessions) == 3

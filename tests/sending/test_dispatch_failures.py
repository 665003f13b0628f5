"""Dispatch when things go wrong mid-batch: the database refuses, a lease is lost, a lookup
finds the same message twice, the window closes while waiting. Nothing is sent twice, nothing
is left claimed, no batch is blocked for good."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.consent import opt_out
from scheduler.db import make_session_factory
from scheduler.lifecycle import Channel, ConsentSource, FollowUpStatus
from scheduler.models import Customer, Message, MessageTemplate, OutboxEntry
from scheduler.sending.courier import Job
from scheduler.sending.sales import record_sale, record_sales
from scheduler.sending.transports import Failure, Outgoing, Sent, TransportError
from scheduler.sending.transports.outbox import OutboxTransport
from tests.dispatching import DAY1, Clock, dispatcher, follow_up, outbox, scripted, setup_sales
from tests.factories import NOW, sale_input


def test_a_message_the_database_cannot_store_fails_alone(engine: Engine, config: Config) -> None:
    luis = sale_input("S-2", phone="+51911111111", customer_name="Luis", locale="en")
    sessions = setup_sales(engine, config, sale_input("S-1"), luis)
    with sessions.begin() as session:
        session.execute(  # PostgreSQL cannot store a NUL in text
            update(MessageTemplate)
            .where(
                MessageTemplate.name == "thanks",
                MessageTemplate.channel == Channel.SMS,
                MessageTemplate.locale == "en",
            )
            .values(body='Hi {{ customer.name }}{{ "%c" % 0 }}')
        )
    summary = dispatcher(sessions, config, Clock(DAY1)).run_pass()
    assert (summary["sent"], summary["failed"]) == (1, 1)
    with sessions() as session:
        assert follow_up(session, "day1-thanks", "S-1").status is FollowUpStatus.SENT
        broken = follow_up(session, "day1-thanks", "S-2")
        assert broken.status_reason == (
            "template 'thanks' (sms/en) body: renders a control character '\\x00'"
        )


def test_a_failed_hand_over_keeps_what_was_sent_and_sends_the_rest_once(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider's sends are handed over a chunk at a time (one send a chunk here)."""
    config = config.replace(worker={"concurrency": 1})
    other = sale_input("S-2", phone="+51911111111", customer_name="Luis")
    sessions = setup_sales(engine, config, sale_input("S-1"), other)
    clock = Clock(DAY1)
    work = dispatcher(sessions, config, clock, scripted(sessions, clock))
    real, calls = work._hand_over, []

    def locked_once(chunk: list[Job]) -> set[int]:  # a passing "database is locked"
        calls.append(chunk)
        if len(calls) == 2:
            raise OperationalError("UPDATE follow_ups", {}, Exception("database is locked"))
        return real(chunk)

    monkeypatch.setattr(work, "_hand_over", locked_once)
    summary = work.run_pass()
    assert (summary["sent"], summary["released"]) == (2, 1)
    with sessions() as session:
        assert sorted(e.to_address for e in outbox(session)) == ["+51911111111", "+51987654321"]
        for sale in ("S-1", "S-2"):
            assert follow_up(session, "day1-thanks", sale).status is FollowUpStatus.SENT
            assert follow_up(session, "day1-thanks", sale).attempts == 1


def test_a_batch_stored_in_place_is_all_or_nothing(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox's sends share one transaction with their hand-over and their result: when it
    fails after the hand-over was written, none of it stays, and the batch goes one by one."""
    others = [sale_input(f"S-{n}", phone=f"+5191111111{n}") for n in range(2, 5)]
    sessions = setup_sales(engine, config, sale_input("S-1"), *others)
    work = dispatcher(sessions, config, Clock(DAY1))
    sms = work.transports[Channel.SMS]
    assert isinstance(sms, OutboxTransport)
    real_store, stored = sms.store, []

    def fails_once(session: Session, messages: list[Outgoing]) -> list[Sent]:
        stored.append(len(messages))
        if len(stored) == 1:
            real_store(session, messages)  # written, then the transaction breaks
            raise OperationalError("INSERT INTO outbox", {}, Exception("disk I/O error"))
        return real_store(session, messages)

    monkeypatch.setattr(sms, "store", fails_once)
    summary = work.run_pass()
    assert summary["sent"] == 4 and stored == [4, 1, 1, 1, 1]
    with sessions() as session:
        assert len(outbox(session)) == 4
        for sale in ("S-1", "S-2", "S-3", "S-4"):
            assert follow_up(session, "day1-thanks", sale).status is FollowUpStatus.SENT
            assert follow_up(session, "day1-thanks", sale).attempts == 1


def test_a_stop_said_while_a_batch_was_composed_holds_its_send_in_place(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A STOP that lands after the batch was composed, before it is written and stored in
    place: the outbox keeps nothing for that customer, the others go."""
    luis = sale_input("S-2", phone="+51911111111", customer_name="Luis")
    sessions = setup_sales(engine, config, sale_input("S-1"), luis)
    work = dispatcher(sessions, config, Clock(DAY1))
    real_drafts = work._drafts

    def then_stop(*args: Any) -> Any:
        drafts = real_drafts(*args)
        with sessions.begin() as session:
            says_stop(session, DAY1, "Luis")
        return drafts

    monkeypatch.setattr(work, "_drafts", then_stop)
    summary = work.run_pass()
    assert (summary["sent"], summary["skipped"]) == (1, 1)
    with sessions() as session:
        assert [e.to_address for e in outbox(session)] == ["+51987654321"]
        assert follow_up(session, "day1-thanks", "S-2").status is FollowUpStatus.SKIPPED


def test_a_batch_whose_lease_ran_out_before_it_was_written_stores_nothing(
    engine: Engine, config: Config
) -> None:
    """Worker A claimed, then stalled past its lease before writing its batch; B took the work
    over and sent it. A's batch, stored in place, writes and sends nothing."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    slow = dispatcher(sessions, config, clock, worker_id="slow")
    claimed = slow.claim()
    clock.advance(seconds=config.worker.lease_seconds + 1)
    assert dispatcher(sessions, config, clock, worker_id="other").run_pass()["sent"] == 1
    late = Counter[str]()
    assert slow.prepare(claimed, late) == []
    assert late["lease_lost"] == 1 and late["sent"] == 0
    with sessions() as session:
        assert len(outbox(session)) == 1
        assert len(session.scalars(select(Message)).all()) == 1
        sent = follow_up(session, "day1-thanks")
        assert sent.status is FollowUpStatus.SENT and sent.attempts == 1


class TimesOutAfterAccepting:
    """Accepts each message, then times out twice; its lookup matches number and body."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, channel: Channel) -> None:
        self.outbox = OutboxTransport(channel, sessions, clock)
        self.channel, self.sender = channel, self.outbox.sender
        self.max_per_second, self.parallel = 0.0, True
        self.sessions, self.timeouts = sessions, 2

    def send(self, message: Outgoing) -> Sent:
        sent = self.outbox.send(message)
        if self.timeouts:
            self.timeouts -= 1
            raise TransportError("ReadTimeout", failure=Failure.UNCERTAIN)
        return sent

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        with self.sessions() as session:
            found = session.scalar(
                select(OutboxEntry.id)
                .where(
                    OutboxEntry.to_address == message.to,
                    OutboxEntry.body == message.text,
                    OutboxEntry.created_at >= since,
                )
                .order_by(OutboxEntry.id.desc())
                .limit(1)
            )
        return None if found is None else Sent(f"outbox-{found}", "delivered")


def test_two_lookups_finding_one_message_leave_one_for_a_person(
    engine: Engine, config: Config
) -> None:
    """Two sales, one customer, the same text: both time out; the lookup cannot tell which
    message is which, so one is settled and the other goes to a person, every pass after."""
    config = config.replace(cadences={"min_gap_hours": 0})
    sessions = setup_sales(engine, config, sale_input("S-1"), sale_input("S-2"))
    clock = Clock(DAY1)
    transports: Any = {c: TimesOutAfterAccepting(sessions, clock, c) for c in Channel}
    work = dispatcher(sessions, config, clock, transports)
    assert work.run_pass()["retrying"] == 2
    for _ in range(3):
        clock.advance(seconds=config.worker.lease_seconds + 1)
        work.run_pass()
    with sessions() as session:
        statuses = sorted(str(follow_up(session, "day1-thanks", s).status) for s in ("S-1", "S-2"))
        assert statuses == ["delivered", "unknown"]
        assert len(outbox(session)) == 2  # the two timed-out sends; nothing resent


def test_a_result_recorded_after_a_take_back_is_not_sent_again(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    slow = dispatcher(sessions, config, clock, scripted(sessions, clock), worker_id="slow")
    outcomes = slow.deliver_batch(slow.prepare(slow.claim(), Counter()))  # it went out
    clock.advance(seconds=config.worker.lease_seconds + 1)
    other = dispatcher(sessions, config, clock, scripted(sessions, clock), worker_id="other")
    assert other.recover_expired() == 1
    late = Counter[str]()
    slow.record(outcomes, late)  # the slow worker's result lands after the take-back
    assert late["lease_lost"] == 1
    assert other.run_pass()["reconciled"] == 1
    with sessions() as session:
        assert len(outbox(session)) == 1
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SENT


def test_a_send_held_back_by_the_window_is_not_an_attempt(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(datetime(2026, 11, 25, 0, 59, 59, tzinfo=UTC))  # 19:59:59 in Lima
    work = dispatcher(sessions, config, clock, scripted(sessions, clock))
    jobs = work.prepare(work.claim(), Counter())
    clock.advance(seconds=2)
    work.record(work.deliver_batch(jobs), Counter())
    with sessions() as session:
        assert follow_up(session, "day1-thanks").attempts == 0


def _grouping(results: list[tuple[Any, bool]]) -> list[list[str]]:
    groups: dict[int, set[str]] = {}
    for row, _ in results:
        groups.setdefault(row.customer_id, set()).add(row.external_id)
    return sorted(sorted(group) for group in groups.values())


@pytest.mark.parametrize("seed", range(10))
def test_a_batch_records_what_sale_by_sale_would(engine: Engine, config: Config, seed: int) -> None:
    """Random batches with repeated ids, shared phones and emails: the same customers, flags
    and order as recording the sales one at a time."""
    rnd = random.Random(seed)
    phones = [None, "+51900000001", "+51900000002", "+51900000003"]
    emails = [None, "a@x.pe", "b@x.pe", "c@x.pe"]

    def contact() -> dict[str, str | None]:
        phone, email = rnd.choice(phones), rnd.choice(emails)
        return {"phone": phone, "email": email if phone or email else "z@x.pe"}

    before = [sale_input(f"P-{n}", **contact()) for n in range(2)]
    batch = [
        sale_input(f"S-{rnd.randrange(8)}", customer_name=f"N{n}", **contact()) for n in range(8)
    ] + [sale_input("P-0")]
    outcomes = []
    for by_batch in (False, True):
        with make_session_factory(engine)() as session:
            for sale in before:
                record_sale(session, sale, config=config, now=NOW, actor="t")
            if by_batch:
                results = record_sales(session, batch, config=config, now=NOW, actor="t")
            else:
                results = [
                    record_sale(session, s, config=config, now=NOW, actor="t") for s in batch
                ]
            customers = sorted(
                (c.name, c.phone or "", c.email or "") for c in session.scalars(select(Customer))
            )
            outcomes.append(
                (
                    _grouping(results),
                    [created for _, created in results],
                    customers,
                    [row.external_id for row, _ in results],
                )
            )
            session.rollback()
    assert outcomes[0] == outcomes[1]


def says_stop(session: Session, now: datetime, name: str | None = None) -> None:
    """The one customer (or the one called `name`) replies STOP by SMS (Twilio's keyword)."""
    query = select(Customer) if name is None else select(Customer).where(Customer.name == name)
    customer = session.scalars(query).one()
    opt_out(
        session,
        customer,
        channel=Channel.SMS,
        source=ConsentSource.PROVIDER_KEYWORD,
        via="replied 'stop' by SMS",
        now=now,
        actor="customer",
    )


def test_a_stop_between_prepare_and_send_is_honoured(engine: Engine, config: Config) -> None:
    """The customer replies STOP while their message waits in a prepared batch."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    work = dispatcher(sessions, config, clock, scripted(sessions, clock))
    jobs = work.prepare(work.claim(), Counter())
    with sessions.begin() as session:
        says_stop(session, DAY1)
    summary = Counter[str]()
    work.record(work.deliver_batch(jobs), summary)
    assert summary["released"] == 1
    assert work.run_pass()["skipped"] == 1
    with sessions() as session:
        assert outbox(session) == []
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SKIPPED
        assert follow_up(session, "day1-thanks").attempts == 0


@pytest.mark.parametrize(("reached", "ends"), [(True, "sent"), (False, "skipped")])
def test_a_stop_after_a_worker_died_mid_send_waits_for_the_lookup(
    engine: Engine, config: Config, reached: bool, ends: str
) -> None:
    """The customer says STOP after a dead worker's follow-up was taken back: its message may
    have left, so the opt-out leaves it to the lookup instead of recording it as never sent."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    lost = TransportError("read timed out", failure=Failure.UNCERTAIN)
    transports = scripted(sessions, clock) if reached else scripted(sessions, clock, lost)
    dead = dispatcher(sessions, config, clock, transports, worker_id="dead")
    dead.deliver_batch(dead.prepare(dead.claim(), Counter()))  # then killed: nothing recorded
    clock.advance(seconds=config.worker.lease_seconds + 1)
    alive = dispatcher(sessions, config, clock, worker_id="alive")
    assert alive.recover_expired() == 1
    with sessions.begin() as session:
        says_stop(session, clock())
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SCHEDULED  # to look up
    summary = alive.run_pass()
    assert summary["reconciled"] == 1
    with sessions() as session:
        row = follow_up(session, "day1-thanks")
        assert (row.status, len(outbox(session))) == (ends, 1 if reached else 0)

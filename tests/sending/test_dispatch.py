"""A dispatch pass: what is due goes out once; the checks made at sending time; failures."""

from __future__ import annotations

import gc
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.casework.cases import resolve_case
from scheduler.casework.staff_actions import CaseworkError
from scheduler.clock import utcnow
from scheduler.collector import PAUSE_FROM
from scheduler.config import Config
from scheduler.lifecycle import CaseStatus, Channel, FollowUpStatus, SaleStatus
from scheduler.models import (
    CadenceStep,
    Case,
    Customer,
    FollowUp,
    Message,
    MessageTemplate,
    Sale,
)
from scheduler.sending import dispatch as dispatch_module
from scheduler.sending.composing import Composed, compose
from scheduler.sending.dispatch import Dispatcher
from scheduler.sending.replanning import cancel_sale
from scheduler.sending.sales import record_sale
from scheduler.sending.transports import Failure, Outgoing, Sent, TransportError
from tests.dispatching import (
    DAY1,
    Clock,
    Scripted,
    dispatcher,
    follow_up,
    outbox,
    scripted,
    setup_sales,
)
from tests.factories import NOW, sale_input


def test_a_due_follow_up_is_sent_once_and_recorded(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    summary = dispatcher(sessions, config, clock).run_pass()
    assert summary["claimed"] == 1 and summary["sent"] == 1
    again = dispatcher(sessions, config, clock).run_pass()
    assert again["claimed"] == 0
    with sessions() as session:
        [entry] = outbox(session)
        assert entry.to_address == "+51987654321" and entry.reference.startswith("follow-up:")
        assert entry.body.startswith("Hola Rosa, gracias por comprar Lavadora en Mi Tienda.")
        sent = follow_up(session, "day1-thanks")
        assert sent.status is FollowUpStatus.SENT and sent.sent_at == DAY1
        assert sent.attempts == 1 and sent.lease_owner is None
        message = session.scalars(select(Message)).one()
        assert (message.status, message.provider_id) == ("stored", f"outbox-{entry.id}")
        assert (message.encoding, message.segments) == ("GSM-7", 1)
        later = follow_up(session, "day7-check-in")
        assert later.status is FollowUpStatus.SCHEDULED  # not due yet


def test_email_has_html_and_one_click_unsubscribe(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1", phone=None, email="rosa@example.pe"))
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions() as session:
        [entry] = outbox(session)
        customer = session.scalars(select(Customer)).one()
    assert entry.channel is Channel.EMAIL and entry.subject
    assert entry.html_body and "<p" in entry.html_body and "Rosa" in entry.html_body
    link = f"http://127.0.0.1:5000/unsubscribe/{customer.unsubscribe_token}"
    assert entry.headers == {
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_html_email_escapes_what_customers_typed(engine: Engine, config: Config) -> None:
    name = "<script>alert(1)</script> Rosa"
    sale = sale_input("S-1", phone=None, email="r@example.pe", customer_name=name)
    sessions = setup_sales(engine, config, sale)
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions() as session:
        [entry] = outbox(session)
    assert entry.html_body and "<script>" not in entry.html_body
    assert "&lt;script&gt;" in entry.html_body


def test_opted_out_customer_is_skipped(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    with sessions.begin() as session:
        session.execute(update(Customer).values(sms_opt_out_at=NOW, sms_opt_out_via="replied BAJA"))
    summary = dispatcher(sessions, config, Clock(DAY1)).run_pass()
    assert summary["skipped"] == 1 and summary["sent"] == 0
    with sessions() as session:
        skipped = follow_up(session, "day1-thanks")
        assert skipped.status is FollowUpStatus.SKIPPED
        assert skipped.status_reason and "replied BAJA" in skipped.status_reason
        assert outbox(session) == []


def test_open_case_holds_and_cancelled_sale_cancels(engine: Engine, config: Config) -> None:
    other = sale_input("S-2", phone="+51911111111", customer_name="Luis")
    sessions = setup_sales(engine, config, sale_input("S-1"), other)
    with sessions.begin() as session:
        rosa = session.scalars(select(Customer).where(Customer.name == "Rosa Quispe")).one()
        session.add(
            Case(
                customer_id=rosa.id,
                status=CaseStatus.OPEN,
                opened_at=NOW,
                first_response_due_at=NOW,
            )
        )
        session.execute(
            update(Sale).where(Sale.external_id == "S-2").values(status=SaleStatus.CANCELLED)
        )
    summary = dispatcher(sessions, config, Clock(DAY1)).run_pass()
    assert (summary["held"], summary["cancelled"], summary["sent"]) == (1, 1, 0)
    with sessions() as session:
        assert follow_up(session, "day1-thanks", "S-1").status is FollowUpStatus.HELD
        assert follow_up(session, "day1-thanks", "S-2").status is FollowUpStatus.CANCELLED


def test_second_message_too_soon_is_postponed(engine: Engine, config: Config) -> None:
    # Two sales to the same customer: both thank-yous are due at once; one waits min_gap_hours.
    sessions = setup_sales(engine, config, sale_input("S-1"), sale_input("S-2"))
    summary = dispatcher(sessions, config, Clock(DAY1)).run_pass()
    assert (summary["sent"], summary["postponed"]) == (1, 1)
    with sessions() as session:
        waiting = follow_up(session, "day1-thanks", "S-2")
        assert waiting.status is FollowUpStatus.SCHEDULED
        assert waiting.status_reason == "another message went to this customer 0.0 h ago"
        # 20 h after Tuesday 10:00 is Wednesday 06:00, before the window: 09:00 Lima.
        assert waiting.due_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def test_outside_the_window_waits_for_the_morning(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    night = DAY1 + timedelta(hours=11)  # 21:00 in Lima, the window closed at 20:00
    summary = dispatcher(sessions, config, Clock(night)).run_pass()
    assert summary["postponed"] == 1
    with sessions() as session:
        waiting = follow_up(session, "day1-thanks")
        assert waiting.due_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
        assert waiting.status_reason == "outside the send window"


def test_a_follow_up_too_late_is_skipped_not_sent(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    summary = dispatcher(sessions, config, Clock(DAY1 + timedelta(days=3))).run_pass()
    assert summary["skipped"] == 1 and summary["sent"] == 0
    with sessions() as session:
        late = follow_up(session, "day1-thanks")
        assert late.status_reason == "72.0 h late when its turn came (grace 48.0 h)"


def test_template_error_fails_that_follow_up_only(engine: Engine, config: Config) -> None:
    other = sale_input("S-2", phone=None, email="luis@example.pe", customer_name="Luis")
    sessions = setup_sales(engine, config, sale_input("S-1"), other)
    with sessions.begin() as session:
        session.execute(
            update(MessageTemplate)
            .where(MessageTemplate.name == "thanks", MessageTemplate.channel == Channel.SMS)
            .values(body="Hola {{ customer.nickname }}")
        )
    summary = dispatcher(sessions, config, Clock(DAY1)).run_pass()
    assert (summary["failed"], summary["sent"]) == (1, 1)
    with sessions() as session:
        broken = follow_up(session, "day1-thanks", "S-1")
        assert broken.status is FollowUpStatus.FAILED
        assert (broken.status_reason or "").startswith(
            "template 'thanks' (sms/es) body line 1: 'dict object' has no attribute 'nickname' "
            "(it can use business.name, "
        )
        assert "customer.first_name, customer.name" in (broken.status_reason or "")
        assert [e.to_address for e in outbox(session)] == ["luis@example.pe"]


def test_passing_failures_retry_with_backoff_then_give_up(engine: Engine, config: Config) -> None:
    config = config.replace(worker={"max_attempts": 3})
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    busy = TransportError("Too Many Requests", failure=Failure.RETRY, code="20429")
    transports = scripted(sessions, clock, busy, busy, busy)
    work = dispatcher(sessions, config, clock, transports)
    assert work.run_pass()["retrying"] == 1
    with sessions() as session:
        retry = follow_up(session, "day1-thanks")
        assert retry.status is FollowUpStatus.SCHEDULED
        assert retry.due_at == DAY1 + timedelta(seconds=30)  # 1 min x (0.5 + jitter 0 / 2)
        assert retry.status_reason == "attempt 1 failed: 20429: Too Many Requests"
    clock.advance(seconds=30)
    assert work.run_pass()["retrying"] == 1
    clock.advance(minutes=1)
    assert work.run_pass()["failed"] == 1
    with sessions() as session:
        gave_up = follow_up(session, "day1-thanks")
        assert gave_up.status is FollowUpStatus.FAILED and gave_up.attempts == 3
        assert gave_up.status_reason == "gave up after 3 attempts: 20429: Too Many Requests"
        assert session.scalars(select(Message.status)).all() == ["not_sent"]
    assert len(transports[Channel.SMS].sends) == 3


def test_a_retry_waits_at_least_as_long_as_the_provider_asked(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    busy = TransportError(
        "Too Many Requests", failure=Failure.RETRY, code="20429", retry_after=timedelta(minutes=5)
    )
    dispatcher(sessions, config, clock, scripted(sessions, clock, busy)).run_pass()
    with sessions() as session:  # not the 30 s backoff of a first attempt
        assert follow_up(session, "day1-thanks").due_at == DAY1 + timedelta(minutes=5)


def test_uncertain_send_is_looked_up_before_any_resend(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    timeout = TransportError("ReadTimeout", failure=Failure.UNCERTAIN)
    transports = scripted(sessions, clock, timeout)
    work = dispatcher(sessions, config, clock, transports)
    assert work.run_pass()["retrying"] == 1
    # The provider did get it: store it as if the timed-out request had arrived.
    sms = transports[Channel.SMS]
    sms.outbox.send(sms.sends[0])
    clock.advance(minutes=1)
    summary = work.run_pass()
    assert summary["reconciled"] == 1 and summary["sent"] == 0
    assert len(sms.sends) == 1 and len(sms.lookups) == 1
    with sessions() as session:
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SENT
        assert len(outbox(session)) == 1


def test_uncertain_send_not_found_is_sent_again(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    transports = scripted(sessions, clock, TransportError("500", failure=Failure.UNCERTAIN))
    work = dispatcher(sessions, config, clock, transports)
    work.run_pass()
    clock.advance(minutes=1)
    summary = work.run_pass()
    assert (summary["reconciled"], summary["sent"]) == (1, 1)
    with sessions() as session:
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SENT
        assert follow_up(session, "day1-thanks").attempts == 2
        assert len(outbox(session)) == 1


def test_when_the_provider_cannot_tell_a_person_decides(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    transports = scripted(sessions, clock, TransportError("reset", failure=Failure.UNCERTAIN))
    transports[Channel.SMS].find_error = TransportError("no lookup", failure=Failure.UNCERTAIN)
    work = dispatcher(sessions, config, clock, transports)
    work.run_pass()
    clock.advance(minutes=1)
    assert work.run_pass()["unknown"] == 1
    assert len(transports[Channel.SMS].sends) == 1
    with sessions() as session:
        unknown = follow_up(session, "day1-thanks")
        assert unknown.status is FollowUpStatus.UNKNOWN
        assert unknown.status_reason and "could not tell whether it was sent" in (
            unknown.status_reason
        )


def test_permanent_error_fails_and_21610_opts_the_customer_out(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    stop = TransportError(
        "Attempt to send to unsubscribed recipient", failure=Failure.UNSUBSCRIBED, code="21610"
    )
    work = dispatcher(sessions, config, clock, scripted(sessions, clock, stop))
    assert work.run_pass()["failed"] == 1
    with sessions() as session:
        failed = follow_up(session, "day1-thanks")
        assert failed.status is FollowUpStatus.FAILED
        assert failed.last_error == "21610: Attempt to send to unsubscribed recipient"
        message = session.scalars(select(Message)).one()
        assert (message.status, message.error_code) == ("failed", "21610")
        customer = session.scalars(select(Customer)).one()
        assert customer.sms_opt_out_at == DAY1
        assert customer.sms_opt_out_via == "Twilio error 21610: replied STOP to our number"


def test_a_dead_workers_claim_is_recovered_without_resending(
    engine: Engine, config: Config
) -> None:
    """A worker died after the message left but before it recorded the result."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    dead = dispatcher(sessions, config, clock, scripted(sessions, clock), worker_id="dead")
    jobs = dead.prepare(dead.claim(), Counter())
    dead.deliver_batch(jobs)  # sent, then the process is killed: nothing recorded
    with sessions() as session:
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SENDING
    clock.advance(seconds=config.worker.lease_seconds + 1)
    summary = dispatcher(
        sessions, config, clock, scripted(sessions, clock), worker_id="alive"
    ).run_pass()
    assert (summary["recovered"], summary["reconciled"], summary["sent"]) == (1, 1, 0)
    with sessions() as session:
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SENT
        assert len(outbox(session)) == 1


def test_a_pass_that_broke_off_is_taken_back_by_the_same_worker_at_once(
    engine: Engine, config: Config
) -> None:
    """Its database connection was cut after the send: the next pass of the same worker looks
    the message up instead of waiting for its own lease to run out."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    work = dispatcher(sessions, config, clock, scripted(sessions, clock))
    work.deliver_batch(work.prepare(work.claim(), Counter()))  # then recording fails
    clock.advance(seconds=config.worker.tick_seconds)  # well within the lease
    assert (
        dispatcher(
            sessions, config, clock, scripted(sessions, clock), worker_id="other"
        ).run_pass()["recovered"]
        == 0
    )
    summary = work.run_pass()
    assert (summary["recovered"], summary["reconciled"], summary["sent"]) == (1, 1, 0)
    with sessions() as session:
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SENT
        assert len(outbox(session)) == 1


def test_a_claim_is_not_taken_twice(engine: Engine, config: Config) -> None:
    sales = [sale_input(f"S-{n}", phone=f"+5198765430{n}") for n in range(6)]
    sessions = setup_sales(engine, config, *sales)
    config = config.replace(worker={"batch_size": 4})
    clock = Clock(DAY1)
    first = dispatcher(sessions, config, clock, worker_id="one").claim()
    second = dispatcher(sessions, config, clock, worker_id="two").claim()
    assert len(first) == 4 and len(second) == 2 and not set(first) & set(second)
    with sessions() as session:
        owners = session.scalars(
            select(FollowUp.lease_owner).where(FollowUp.lease_owner.isnot(None))
        )
        assert sorted(str(owner) for owner in owners) == ["one"] * 4 + ["two"] * 2


@pytest.mark.parametrize("rate, expected", [(1.0, 300), (0.0, 200)])
def test_claim_size_fits_the_rate_limit_in_the_lease(
    session: Session, config: Config, rate: float, expected: int
) -> None:
    config = config.replace(worker={"batch_size": 1000 if rate else 200})
    sessions = sessionmaker()
    transports = scripted(sessions, Clock())
    transports[Channel.SMS].max_per_second = rate
    assert Dispatcher(sessions, config, transports, worker_id="w").claim_size == expected


def test_held_follow_ups_go_out_after_the_case_is_resolved(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    with sessions.begin() as session:
        rosa = session.scalars(select(Customer)).one()
        case = Case(customer_id=rosa.id, opened_at=NOW, first_response_due_at=NOW)
        session.add(case)
    clock = Clock(DAY1)
    work = dispatcher(sessions, config, clock)
    assert work.run_pass()["held"] == 1
    clock.advance(hours=11)  # resolved at 21:00 in Lima, after the window
    with sessions.begin() as session:
        case = session.scalars(select(Case)).one()
        resumed = resolve_case(
            session, case, outcome="replaced the hose", now=clock(), actor="user:1", config=config
        ).resumed
        with pytest.raises(CaseworkError, match="the case is already resolved"):
            resolve_case(session, case, outcome="again", now=clock(), actor="u", config=config)
    assert resumed == 1
    with sessions() as session:
        waiting = follow_up(session, "day1-thanks")
        assert waiting.status is FollowUpStatus.SCHEDULED
        assert waiting.due_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # 09:00 next morning
    assert work.run_pass()["claimed"] == 0
    clock.now = waiting.due_at
    assert work.run_pass()["sent"] == 1


def test_a_slow_worker_whose_lease_ran_out_sends_nothing(engine: Engine, config: Config) -> None:
    """Worker A prepared a batch, then stalled past its lease; B took the work over and sent it."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    slow = dispatcher(sessions, config, clock, scripted(sessions, clock), worker_id="slow")
    jobs = slow.prepare(slow.claim(), Counter())
    clock.advance(seconds=config.worker.lease_seconds + 1)
    taken_over = dispatcher(
        sessions, config, clock, scripted(sessions, clock), worker_id="other"
    ).run_pass()
    assert (taken_over["recovered"], taken_over["sent"]) == (1, 1)
    late = Counter[str]()
    slow.record(slow.deliver_batch(jobs), late)
    assert late["lease_lost"] == 1
    with sessions() as session:
        assert len(outbox(session)) == 1
        sent = follow_up(session, "day1-thanks")
        assert sent.status is FollowUpStatus.SENT and sent.attempts == 1


def test_one_follow_up_that_cannot_be_prepared_fails_alone(engine: Engine, config: Config) -> None:
    other = sale_input("S-2", phone="+51911111111", customer_name="Luis")
    third = sale_input("S-3", phone="+51922222222", customer_name="Ana")
    sessions = setup_sales(engine, config, sale_input("S-1"), other, third)
    with sessions.begin() as session:
        session.execute(  # a template that recurses forever
            update(MessageTemplate)
            .where(MessageTemplate.name == "thanks", MessageTemplate.channel == Channel.SMS)
            .values(body="{% macro m() %}{{ m() }}{% endmacro %}{{ m() }} {{ customer.name }}")
        )
        session.execute(  # a time zone that no longer exists in this machine's database
            update(Customer).where(Customer.name == "Luis").values(timezone="Mars/Olympus")
        )
    work = dispatcher(sessions, config, Clock(DAY1))
    summary = work.run_pass()
    assert (summary["claimed"], summary["failed"], summary["sent"]) == (3, 3, 0)
    with sessions() as session:
        failed = session.scalars(select(FollowUp).where(FollowUp.status == FollowUpStatus.FAILED))
        reasons = {fu.sale.external_id: fu.status_reason or "" for fu in failed}
        assert set(reasons) == {"S-1", "S-2", "S-3"}
        assert "RecursionError" in reasons["S-1"]
        assert reasons["S-2"].startswith("could not be prepared: ZoneInfoNotFoundError")
        sending = select(FollowUp).where(FollowUp.status == FollowUpStatus.SENDING)
        assert session.scalars(sending).all() == []


def test_a_stopping_worker_releases_what_it_has_not_handed_over(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    clock = Clock(DAY1)
    work = dispatcher(sessions, config, clock, scripted(sessions, clock))
    stopping = threading.Event()
    stopping.set()
    jobs = work.prepare(work.claim(), Counter())
    summary = Counter[str]()
    work.record(work.deliver_batch(jobs, stopping), summary)
    assert summary["released"] == 1
    with sessions() as session:
        released = follow_up(session, "day1-thanks")
        assert released.status is FollowUpStatus.SCHEDULED and released.attempts == 0
        assert released.due_at <= DAY1 and released.status_reason == "the worker is stopping"
        assert session.scalars(select(Message.status)).all() == ["not_sent"]
        assert outbox(session) == []


def test_a_send_that_waited_past_the_window_waits_for_the_morning(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1"))
    closing = datetime(2026, 11, 25, 0, 59, 59, tzinfo=UTC)  # Tuesday 19:59:59 in Lima
    clock = Clock(closing)
    work = dispatcher(sessions, config, clock, scripted(sessions, clock))
    jobs = work.prepare(work.claim(), Counter())
    clock.advance(seconds=2)  # the rate limit kept it waiting past 20:00
    summary = Counter[str]()
    work.record(work.deliver_batch(jobs), summary)
    assert summary["postponed"] == 1
    with sessions() as session:
        waiting = follow_up(session, "day1-thanks")
        assert waiting.due_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
        assert outbox(session) == []


def test_cancelling_sales_while_a_worker_sends_never_contradicts_itself(
    engine: Engine, config: Config
) -> None:
    """The API cancels sales while a pass runs: each follow-up is sent or cancelled, not both."""
    sales = [sale_input(f"S-{n}", phone=f"+5198700{n:04d}") for n in range(40)]
    sessions = setup_sales(engine, config, *sales)
    work = dispatcher(sessions, config, Clock(DAY1))
    passing = threading.Thread(target=work.run_pass)
    passing.start()
    for n in range(0, 40, 2):
        with sessions.begin() as session:
            sale = session.scalars(select(Sale).where(Sale.external_id == f"S-{n}")).one()
            cancel_sale(session, sale, now=DAY1, actor="api", reason="returned")
    passing.join(timeout=60)
    assert not passing.is_alive()
    work.run_pass()
    with sessions() as session:
        rows = session.scalars(
            select(FollowUp).join(CadenceStep).where(CadenceStep.key == "day1-thanks")
        )
        day1 = {fu.sale.external_id: fu for fu in rows}
        sent_to = {entry.to_address for entry in outbox(session)}
        for n in range(40):
            row = day1[f"S-{n}"]
            assert row.status in (FollowUpStatus.SENT, FollowUpStatus.CANCELLED)
            assert (row.status is FollowUpStatus.SENT) == (f"+5198700{n:04d}" in sent_to)
            if n % 2:
                assert row.status is FollowUpStatus.SENT


def test_backoff_on_the_real_clock_under_freezegun(engine: Engine, config: Config) -> None:
    """The production clock path (`utcnow`), frozen: a retry waits its backoff, then goes."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    busy = TransportError("Too Many Requests", failure=Failure.RETRY, code="20429")
    with freeze_time(DAY1) as frozen:
        transports = scripted(sessions, utcnow, busy)
        work = Dispatcher(sessions, config, transports, worker_id="w", jitter=lambda: 0.0)
        assert work.run_pass()["retrying"] == 1
        frozen.tick(timedelta(seconds=29))
        assert work.run_pass()["claimed"] == 0
        frozen.tick(timedelta(seconds=1))
        assert work.run_pass()["sent"] == 1
    with sessions() as session:
        sent = follow_up(session, "day1-thanks")
        assert sent.sent_at == DAY1 + timedelta(seconds=30) and sent.attempts == 2


def test_the_collector_waits_while_a_large_batch_is_prepared_not_while_it_is_sent(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    sales = [sale_input(f"S-{n}", phone=f"+5198711{n:04d}") for n in range(PAUSE_FROM)]
    sessions = setup_sales(engine, config, *sales)
    composing: list[bool] = []
    sending: list[bool] = []

    def watched(*args: Any, **kwargs: Any) -> Composed:
        composing.append(gc.isenabled())
        return compose(*args, **kwargs)

    class Watched(Scripted):
        def send(self, message: Outgoing) -> Sent:
            sending.append(gc.isenabled())
            return super().send(message)

    monkeypatch.setattr(dispatch_module, "compose", watched)
    clock = Clock(DAY1)
    transports = {
        channel: Watched(one.outbox) for channel, one in scripted(sessions, clock).items()
    }
    gc.enable()
    assert dispatcher(sessions, config, clock, transports).run_pass()["sent"] == PAUSE_FROM
    assert composing == [False] * PAUSE_FROM and sending == [True] * PAUSE_FROM
    assert gc.isenabled()
    with sessions.begin() as session:  # a batch of one: the collector is left as it is
        record_sale(
            session, sale_input("S-ONE", phone="+51911111111"), config=config, now=NOW, actor="test"
        )
    composing.clear()
    assert dispatcher(sessions, config, clock).run_pass()["sent"] == 1
    assert composing == [True] and gc.isenabled()

"""A dispatch pass: what is due goes out once; the checks made at sending time; failures."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.dispatch import Dispatcher
from scheduler.lifecycle import CaseStatus, Channel, FollowUpStatus, SaleStatus
from scheduler.models import Case, Customer, FollowUp, Message, MessageTemplate, OutboxEntry, Sale
from scheduler.transports import Failure, Outgoing, Sent, TransportError
from scheduler.transports.outbox import OutboxTransport
from tests.dispatching import Clock, dispatcher, follow_up, setup_sales
from tests.factories import NOW, sale_input

DAY1 = NOW + timedelta(days=1)  # Tuesday 10:00 in Lima: the day-1 thank-you is due


class Scripted:
    """A transport of our own interface that fails as told, then sends to the outbox."""

    def __init__(self, outbox: OutboxTransport, *errors: TransportError) -> None:
        self.outbox = outbox
        self.channel = outbox.channel
        self.sender = outbox.sender
        self.max_per_second = 0.0
        self.errors = list(errors)
        self.sends: list[Outgoing] = []
        self.lookups: list[Outgoing] = []
        self.find_error: TransportError | None = None

    def send(self, message: Outgoing) -> Sent:
        self.sends.append(message)
        if self.errors:
            raise self.errors.pop(0)
        return self.outbox.send(message)

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        self.lookups.append(message)
        if self.find_error:
            raise self.find_error
        return self.outbox.find(message, since)


def scripted(
    sessions: sessionmaker[Session], clock: Clock, *errors: TransportError
) -> dict[Channel, Scripted]:
    return {
        channel: Scripted(OutboxTransport(channel, sessions, clock), *errors) for channel in Channel
    }


def outbox(session: Session) -> list[OutboxEntry]:
    return list(session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


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
            Case(customer_id=rosa.id, status=CaseStatus.OPEN, opened_at=NOW,
                 first_response_due_at=NOW)
        )  # fmt: skip
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
        assert broken.status_reason == (
            "template 'thanks' (sms/es) body line 1: 'dict object' has no attribute 'nickname'"
        )
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
    stop = TransportError("Attempt to send to unsubscribed recipient", failure=Failure.PERMANENT,
                          code="21610")  # fmt: skip
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
    dead = dispatcher(sessions, config, clock, worker_id="dead")
    jobs = dead.prepare(dead.claim(), Counter())
    dead.deliver(jobs[0])  # sent, then the process is killed: nothing recorded
    with sessions() as session:
        assert follow_up(session, "day1-thanks").status is FollowUpStatus.SENDING
    clock.advance(seconds=config.worker.lease_seconds + 1)
    summary = dispatcher(sessions, config, clock, worker_id="alive").run_pass()
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

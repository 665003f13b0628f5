"""A worker killed again and again while it sends people's replies, acknowledgements and the
notices to staff: a real `postventa worker` process, SIGKILL at random moments while it holds
claims, on SQLite and on PostgreSQL, against the Twilio-compatible fake (SMS and WhatsApp) and
the outbox (email). Every message arrives once: none doubled, none lost.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.accounts import add_user
from scheduler.addresses import phone_of
from scheduler.casework.staff_actions import reply_to_customer
from scheduler.clock import utcnow
from scheduler.config import Config, defaults
from scheduler.lifecycle import UNFINISHED, Channel, Role
from scheduler.listening.inbound import store_sms, triage
from scheduler.listening.reply_store import InboundMessage
from scheduler.models import Case, Customer, Message, OutboxEntry
from scheduler.sending.delivery import RANK
from tests.conftest import REPORT
from tests.dispatching import setup_sales
from tests.factories import sale_input
from tests.processes import (
    FastForward,
    Workers,
    process_config,
    twilio_sections,
    wait_for,
    whatsapp_section,
)
from tests.twilio_fake import FakeTwilio

pytestmark = pytest.mark.slow

SEED = 20261128
KILLS = 20
CUSTOMERS = 120  # half acknowledged, half answered by a person: one message each
SHOP = "+15005550006"
STAFF = "ana@mitienda.pe"


def complaints(sessions: sessionmaker[Session], config: Config, senders: list[str]) -> None:
    """Each sender complains (by SMS, or by WhatsApp from "whatsapp:+..."); the worker's reading
    opens their cases (and, if the config says so, acknowledges them on the same channel), with
    a notice to staff for each."""
    now = utcnow()
    with sessions.begin() as session:
        for sender in senders:
            channel = Channel.WHATSAPP if sender.startswith("whatsapp:") else Channel.SMS
            sid = f"SM{phone_of(sender)[1:]:0>32}"
            text = "no prende, pésimo"
            store_sms(session, InboundMessage(sid, sender, SHOP, text, channel), now=now)
    triage(sessions, config, now=now, limit=len(senders))


def queued(sessions: sessionmaker[Session]) -> list[Message]:
    with sessions() as session:
        query = select(Message).where(Message.due_at.isnot(None)).order_by(Message.id)
        return list(session.scalars(query))


def unfinished(sessions: sessionmaker[Session]) -> int:
    query = select(func.count()).where(Message.due_at.isnot(None), Message.status.in_(UNFINISHED))
    with sessions() as session:
        return int(session.scalar(query) or 0)


def holds_claims(sessions: sessionmaker[Session], pid: int) -> bool:
    query = select(Message.id).where(Message.lease_owner.like(f"%:{pid}:%")).limit(1)
    with sessions() as session:
        return session.scalar(query) is not None


def test_a_worker_killed_twenty_times_sends_every_reply_and_notice_once(
    engine: Engine, tmp_path: Path
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    config = defaults().replace(
        database={"url": url},
        cases={"notify_emails": [STAFF]},
        whatsapp={"transport": "outbox"},  # on, so answers go where the customer wrote
    )
    numbers = [f"+519{n:08d}" for n in range(CUSTOMERS)]
    sales = [sale_input(f"S-{n}", phone=number) for n, number in enumerate(numbers)]
    sessions = setup_sales(engine, config, *sales, now=utcnow())  # follow-ups due tomorrow
    # Every third customer writes on WhatsApp: answered there, inside the window they opened.
    senders = [f"whatsapp:{n}" if i % 3 == 0 else n for i, n in enumerate(numbers)]
    half = CUSTOMERS // 2
    complaints(sessions, config, senders[:half])  # acknowledged
    complaints(sessions, config.replace(cases={"acknowledge": False}), senders[half:])
    with sessions.begin() as session:
        person = add_user(
            session,
            email=STAFF,
            role=Role.STAFF,
            password="staff password 1",
            now=utcnow(),
            actor="test",
        )
        for sender in senders[half:]:
            number = phone_of(sender)
            customer = session.scalars(select(Customer).where(Customer.phone == number)).one()
            case = session.scalars(select(Case).where(Case.customer_id == customer.id)).one()
            reply_to_customer(
                session,
                case,
                customer,
                user=person,
                channel=Channel.WHATSAPP if sender != number else Channel.SMS,
                body=f"Hola, le llamamos hoy mismo ({number[-3:]}).",
                subject=None,
                now=utcnow(),
            )
    expected = queued(sessions)
    sms = {m.to_address: m.id for m in expected if m.channel is not Channel.EMAIL}
    emails = {m.id for m in expected if m.channel is Channel.EMAIL}
    assert sorted(sms) == sorted(senders) and len(emails) == CUSTOMERS  # one notice per case

    rng = random.Random(SEED)
    with FakeTwilio(latency=0.2) as fake:
        for sender in senders[::3]:
            fake.customer_wrote(sender)
        sections = twilio_sections(fake, concurrency=4)
        sections["worker"] |= {"tick_seconds": 1}
        sections["whatsapp"] = whatsapp_section(fake)
        path = process_config(tmp_path, engine, **sections)
        started = time.monotonic()
        with Workers(path, 1) as workers, FastForward(sessions, workers.killed):
            for _ in range(KILLS):  # each time while it holds claims, at a random moment
                pid = workers.live[0].pid
                wait_for(lambda: holds_claims(sessions, pid), "the worker to claim", 60)  # noqa: B023
                time.sleep(rng.uniform(0, 0.3))
                workers.kill_one(rng)
            posts_at_last_kill = len(fake.posts())
            wait_for(lambda: not unfinished(sessions), "every queued message to finish", 120)
            codes = workers.stop()
        seconds = time.monotonic() - started
        lookups = sum(1 for r in fake.requests if r.method == "GET")
        per_number = Counter(message["to"] for message in fake.messages)
        sids = {message["to"]: message["sid"] for message in fake.messages}

    assert codes == [0], workers.log()[-3000:]
    assert posts_at_last_kill < CUSTOMERS  # the kills came mid-sending,
    assert lookups > 0  # some while messages were in the provider's hands
    doubled = sorted(number for number, count in per_number.items() if count > 1)
    lost = sorted(set(senders) - set(per_number))
    assert (doubled, lost) == ([], [])
    with sessions() as session:
        finished = {
            m.id: m
            for m in session.scalars(
                select(Message).where(Message.id.in_([m.id for m in expected]))
            )
        }
        kept = Counter(session.scalars(select(OutboxEntry.reference)))
    for number, message_id in sms.items():  # recorded under the sid the provider gave
        message = finished[message_id]
        assert message.provider_id == sids[number], (message_id, message.status)
        assert message.status in RANK, message_id  # the provider's word for it
    assert {f"message:{message_id}" for message_id in emails} == set(kept)
    assert set(kept.values()) == {1}  # every notice to staff once
    assert all(finished[i].status == "stored" for i in emails)
    attempts = max(m.attempts for m in finished.values())
    assert attempts <= defaults().worker.max_attempts
    REPORT.append(
        f"queued messages, 1 worker killed {len(workers.killed)} times ({engine.dialect.name}): "
        f"{len(sms)} SMS and WhatsApp messages and {len(emails)} emails, doubled "
        f"{len(doubled)}, lost {len(lost)}, "
        f"looked up {lookups}, most attempts {attempts}, {seconds:.1f} s"
    )

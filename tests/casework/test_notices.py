"""Staff hear of a new case at once; the owner hears of one past its deadline, once per level."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.accounts import add_user
from scheduler.casework.notices import notify_remedy_request
from scheduler.clock import utcnow
from scheduler.config import Config
from scheduler.lifecycle import Channel, MessageStatus, RemedyStatus, Role
from scheduler.models import AuditEntry, Case, Message, Remedy
from scheduler.sending.transports import Failure, Transport, TransportError
from scheduler.worker import read_replies
from tests.complaints import DUE, OPENED, open_case
from tests.dispatching import Clock, dispatcher, outbox, scripted, setup_sales
from tests.factories import sale_input


def staffed(config: Config) -> Config:
    return config.replace(
        cases={
            "notify_emails": ["ana@mitienda.pe"],
            "notify_sms": ["+51911222333"],
            "escalate_to": ["duena@mitienda.pe"],
        },
        business={"public_url": "https://shop.example.pe"},
    )


def run_sweep(
    sessions: sessionmaker[Session],
    config: Config,
    at: datetime,
    transports: Mapping[Channel, Transport] | None = None,
) -> dict[str, int]:
    """The worker's replies job at `at`: escalate what is overdue, send what is queued. Only
    the counts that are not zero, and `escalated`."""
    with freeze_time(at):
        summary = read_replies(dispatcher(sessions, config, utcnow, transports))
    return {key: n for key, n in summary.items() if n or key == "escalated"}


def test_staff_hear_of_a_new_case_once(engine: Engine, config: Config) -> None:
    config = staffed(config)
    sessions = setup_sales(engine, config, sale_input("S-1"))
    case_id = open_case(sessions, config)
    assert run_sweep(sessions, config, OPENED) == {
        "queued_claimed": 2,
        "queued_sent": 2,
        "escalated": 0,
    }
    assert run_sweep(sessions, config, OPENED) == {"escalated": 0}
    with sessions() as session:
        email, sms = sorted(outbox(session), key=lambda e: e.channel)
        assert (email.channel, email.to_address) == (Channel.EMAIL, "ana@mitienda.pe")
        assert email.subject == (
            "Nuevo caso: Rosa Quispe (queja) - responder antes de lun 30 nov 14:00"
        )
        assert "la lavadora no prende" in email.body
        assert f"https://shop.example.pe/cases/{case_id}" in email.body
        assert (sms.channel, sms.to_address) == (Channel.SMS, "+51911222333")
        statuses = session.scalars(select(Message.status).where(Message.case_id == case_id))
        assert sorted(statuses) == ["received", "stored", "stored"]


def test_an_unanswered_case_is_escalated_once_per_level(engine: Engine, config: Config) -> None:
    config = staffed(config)
    sessions = setup_sales(engine, config, sale_input("S-1"))
    case_id = open_case(sessions, config)
    run_sweep(sessions, config, OPENED)  # the new-case notices
    assert run_sweep(sessions, config, DUE - timedelta(minutes=1))["escalated"] == 0
    assert run_sweep(sessions, config, DUE)["escalated"] == 1
    assert run_sweep(sessions, config, DUE + timedelta(hours=1))["escalated"] == 0
    # Level 2: four more opening hours: Monday 14:00-18:00 in Lima = 23:00 UTC.
    level_two = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert run_sweep(sessions, config, level_two - timedelta(minutes=1))["escalated"] == 0
    assert run_sweep(sessions, config, level_two)["escalated"] == 1
    assert run_sweep(sessions, config, level_two + timedelta(days=3))["escalated"] == 0  # max 2
    with sessions() as session:
        assert session.get(Case, case_id).escalation_level == 2  # type: ignore[union-attr]
        owner = [e for e in outbox(session) if e.to_address == "duena@mitienda.pe"]
        assert [e.subject for e in owner] == ["Caso sin respuesta: Rosa Quispe"] * 2
        assert "recordatorio 2" in owner[1].body
        levels = session.scalars(
            select(AuditEntry.details)
            .where(AuditEntry.action == "case.escalate")
            .order_by(AuditEntry.id)  # in the order they were written
        ).all()
        assert [d["level"] for d in levels] == [1, 2]


def test_an_answered_case_is_not_escalated(engine: Engine, config: Config) -> None:
    config = staffed(config)
    sessions = setup_sales(engine, config, sale_input("S-1"))
    case_id = open_case(sessions, config)
    with sessions.begin() as session:
        case = session.get(Case, case_id)
        assert case is not None
        case.first_responded_at = OPENED + timedelta(minutes=30)
    assert run_sweep(sessions, config, DUE + timedelta(days=1))["escalated"] == 0


def test_a_notice_that_fails_for_now_is_sent_on_a_later_pass(
    engine: Engine, config: Config
) -> None:
    config = staffed(config).replace(cases={"notify_sms": []})
    sessions = setup_sales(engine, config, sale_input("S-1"))
    open_case(sessions, config)
    busy = TransportError("451 try later", failure=Failure.RETRY, code="451")
    transports = scripted(sessions, Clock(OPENED), busy)
    first = run_sweep(sessions, config, OPENED, transports)
    assert (first["queued_retrying"], first.get("queued_sent")) == (1, None)
    assert run_sweep(sessions, config, OPENED + timedelta(seconds=29), transports) == {
        "escalated": 0  # the backoff: half a minute at least
    }
    second = run_sweep(sessions, config, OPENED + timedelta(minutes=1), transports)
    assert second["queued_sent"] == 1
    with sessions() as session:
        assert [e.to_address for e in outbox(session)] == ["ana@mitienda.pe"]
        notice = session.scalars(select(Message).where(Message.to_address == "ana@mitienda.pe"))
        assert notice.one().attempts == 2


@pytest.mark.parametrize(
    ("dies", "then"),
    [("after sending", "queued_reconciled"), ("before the hand-over", "queued_sent")],
)
def test_notices_a_dead_worker_left_go_once(
    engine: Engine, config: Config, dies: str, then: str
) -> None:
    """What a dead worker sent is found with the provider, not sent again; what it only
    claimed is sent when its lease has run out."""
    config = staffed(config)
    sessions = setup_sales(engine, config, sale_input("S-1"))
    open_case(sessions, config)
    dead = dispatcher(sessions, config, Clock(OPENED), worker_id="dead").queued
    jobs = dead.prepare(dead.claim(), Counter())
    if dies == "after sending":
        dead.deliver_batch(jobs)  # sent; killed before recording
    lease = timedelta(seconds=config.worker.lease_seconds)
    assert run_sweep(sessions, config, OPENED + lease - timedelta(seconds=1)) == {"escalated": 0}
    alive = run_sweep(sessions, config, OPENED + lease + timedelta(seconds=1))
    assert alive == {"queued_recovered": 2, "queued_claimed": 2, then: 2, "escalated": 0}
    with sessions() as session:
        assert len(outbox(session)) == 2
        notices = session.scalars(select(Message).where(Message.case_id.isnot(None)))
        statuses = sorted(m.status for m in notices if m.status != MessageStatus.RECEIVED)
        assert statuses == ["stored", "stored"]


def test_each_person_reads_the_notices_in_their_own_language(
    engine: Engine, config: Config
) -> None:
    config = staffed(config)  # the business speaks Spanish
    sessions = setup_sales(engine, config, sale_input("S-1"))
    with sessions.begin() as session:
        add_user(
            session,
            email="Ana@MiTienda.pe",
            role=Role.STAFF,
            password="staff password 1",
            now=OPENED,
            actor="test",
        ).locale = "en"
    case_id = open_case(sessions, config)
    run_sweep(sessions, config, OPENED)
    run_sweep(sessions, config, DUE)  # past the deadline: the owner hears of it
    with sessions() as session:
        sent = {(e.to_address, e.channel): e for e in outbox(session)}
    english = sent["ana@mitienda.pe", Channel.EMAIL]
    assert english.subject == "New case: Rosa Quispe (objection) - answer before Mon 30 Nov 14:00"
    assert english.body.startswith("Rosa Quispe (+51987654321) wrote:")
    assert english.body.endswith(f"Open the case: https://shop.example.pe/cases/{case_id}")
    sms = sent["+51911222333", Channel.SMS]  # a phone is nobody's log-in: the business's
    assert sms.body.startswith("Nuevo caso: Rosa Quispe (queja) - responder antes de lun 30 nov")
    spanish = sent["duena@mitienda.pe", Channel.EMAIL]
    assert spanish.subject == "Caso sin respuesta: Rosa Quispe"
    assert spanish.body.startswith(
        "El caso de Rosa Quispe pasó su plazo de primera respuesta (lun 30 nov 14:00); "
        "recordatorio 1."
    )


def test_an_owner_asked_to_approve_reads_it_in_their_language(
    engine: Engine, config: Config
) -> None:
    config = staffed(config).replace(business={"locale": "en"})
    sessions = setup_sales(engine, config, sale_input("S-1"))
    with sessions.begin() as session:
        owner = add_user(
            session,
            email="duena@mitienda.pe",
            role=Role.OWNER,
            password="owner password 1",
            now=OPENED,
            actor="test",
        )
        owner.locale = "es"
    case_id = open_case(sessions, config)
    with sessions.begin() as session:
        case = session.get_one(Case, case_id)
        remedy = Remedy(
            case_id=case_id,
            kind="refund",
            value=Decimal("300.00"),
            description="devolución parcial",
            status=RemedyStatus.REQUESTED,
            granted_by_id=None,
            created_at=OPENED,
        )
        session.add(remedy)
        session.flush()
        notify_remedy_request(
            session, case, remedy, asked_by="ana@mitienda.pe", config=config, now=OPENED
        )
    with sessions() as session:
        told, asked = session.scalars(  # owners are told of every new case too
            select(Message).where(Message.to_address == "duena@mitienda.pe").order_by(Message.id)
        ).all()
    assert told.subject is not None and told.subject.startswith("Nuevo caso")
    assert asked.subject == "Compensación por aprobar: reembolso 300.00: devolución parcial"
    assert asked.body.startswith("ana@mitienda.pe pide que apruebes:")

"""Customers answering our emails: real MIME mail delivered into a real IMAP server (Dovecot on
127.0.0.1), fetched by the worker, stored once, matched to the customer and the email answered,
then read like an SMS: cases, acknowledgements by email in the same thread, the words that stop
email; automatic mail opens nothing, a bounce stops email to that address."""

from __future__ import annotations

import uuid
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.casework.staff_actions import CaseworkError, reply_to_customer
from scheduler.clock import utcnow
from scheduler.config import Config
from scheduler.lifecycle import Channel, ConsentSource, Direction, FollowUpStatus
from scheduler.listening.classify import Label
from scheduler.models import AuditEntry, Case, Customer, FollowUp, Message, OutboxEntry, User
from scheduler.worker import read_mailbox, read_replies
from tests.dispatching import Clock, dispatcher, setup_sales
from tests.factories import NOW, sale_input
from tests.imap_server import HOST, PASSWORD, USER, Dovecot, dovecot

__all__ = ["dovecot"]

MAIL = Path(__file__).parent.parent / "data" / "mail"
REPLY_TO = "Mi Tienda <respuestas@mitienda.pe>"
# Who wrote each fixture, and the Message-ID of ours it answers (None: it names none of ours).
WRITERS = {
    "rosa.perez@example.pe": "<follow-up.42.day7@postventa.mitienda.pe>",
    "carlos.quispe@example.pe": "<follow-up.57.day1@postventa.mitienda.pe>",
    "jmunoz@example.es": "<follow-up.77.day21@postventa.mitienda.pe>",
    "ana@example.com": "<follow-up.88.day7@postventa.mitienda.pe>",
    "luis@example.pe": "<follow-up.90.day1@postventa.mitienda.pe>",
    "marta@example.pe": "<follow-up.91.day1@postventa.mitienda.pe>",
    "pedro.nunez@example.pe": "<follow-up.93.day1@postventa.mitienda.pe>",
    "lucia@example.pe": None,
}


@pytest.fixture
def imap(config: Config, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The worker's configuration reading a folder of its own on the test's Dovecot, whose
    certificate it trusts as it would a real one (the system's store, here the test's file)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.certificate))
    folder = f"Replies-{uuid.uuid4().hex}"  # an object's id may come again: a folder may not
    dovecot.create_folder(folder)
    inbound = {
        "transport": "imap",
        "reply_to": REPLY_TO,
        "imap_host": HOST,
        "imap_port": dovecot.imaps_port,
        "username": USER,
        "password": PASSWORD,
        "folder": folder,
    }
    # Someone is told of new cases, so the customer is promised an answer.
    return config.replace(email_inbound=inbound, cases={"notify_emails": ["ana@mitienda.pe"]})


def customers_we_wrote_to(engine: Engine, config: Config) -> sessionmaker[Session]:
    """A sale for each writer, and the email of ours each one answers, sent yesterday."""
    sales = [
        sale_input(f"S-{n}", phone=None, email=email, customer_name=email.split("@")[0].title())
        for n, email in enumerate(WRITERS)
    ]
    sessions = setup_sales(engine, config, *sales)
    with sessions.begin() as session:
        for customer in session.scalars(select(Customer)):
            ours = WRITERS[customer.email or ""]
            if ours is None:
                continue
            follow_up = session.scalars(
                select(FollowUp).where(FollowUp.customer_id == customer.id).order_by(FollowUp.id)
            ).first()
            session.add(
                Message(
                    customer_id=customer.id,
                    follow_up_id=follow_up.id if follow_up else None,
                    direction=Direction.OUTBOUND,
                    channel=Channel.EMAIL,
                    from_address="hola@mitienda.pe",
                    to_address=customer.email or "",
                    subject="¿Qué tal tu compra?",
                    body="Hola, ¿qué tal tu compra?",
                    provider_id=ours,
                    status="sent",
                    created_at=NOW,
                )
            )
    return sessions


def deliver_fixtures(dovecot: Dovecot, config: Config) -> None:
    for path in sorted(MAIL.glob("*.eml")):
        dovecot.deliver(path.read_bytes(), config.email_inbound.folder)


def inbound(session: Session) -> dict[str, Message]:
    query = select(Message).where(Message.direction == Direction.INBOUND)
    return {message.from_address: message for message in session.scalars(query)}


def customer(session: Session, email: str) -> Customer:
    return session.scalars(select(Customer).where(Customer.email == email)).one()


def test_mail_is_fetched_once_and_matched_to_what_it_answers(
    engine: Engine, imap: Config, dovecot: Dovecot
) -> None:
    sessions = customers_we_wrote_to(engine, imap)
    deliver_fixtures(dovecot, imap)
    worker = dispatcher(sessions, imap, Clock(NOW + timedelta(days=2)))
    assert read_mailbox(worker) == {"mail_stored": 8}
    assert read_mailbox(worker) == {"mail_stored": 0}  # nothing twice
    restarted = dispatcher(sessions, imap, Clock(NOW + timedelta(days=2)), worker_id="other")
    assert read_mailbox(restarted) == {"mail_stored": 0}  # nor after a restart
    with sessions() as session:
        stored = inbound(session)
        assert set(stored) == {*WRITERS, "mailer-daemon@mx.mitienda.pe"} - {
            "pedro.nunez@example.pe"
        }
        for email, ours in WRITERS.items():
            if email in stored:
                reply = stored[email]
                assert reply.customer_id == customer(session, email).id, email
                assert reply.channel is Channel.EMAIL and reply.to_address == REPLY_TO
                if ours is not None:  # the follow-up of the email it answers
                    answered = session.scalars(
                        select(Message).where(Message.provider_id == ours)
                    ).one()
                    assert reply.follow_up_id == answered.follow_up_id, email
        rosa = stored["rosa.perez@example.pe"]
        assert rosa.provider_id == "<CAF3x9q7Yk2mPq=Lr8sD1@mail.gmail.com>"
        assert rosa.subject == "Re: ¿Qué tal tu compra?"
        assert rosa.body.startswith("Hola, el jarrón llegó con una grieta en la base.")
        assert "escribió" not in rosa.body  # the quoted history is not hers
        assert stored["luis@example.pe"].body == (  # what was attached is named
            "Adjunto la boleta y una foto del daño.\n\n[boleta-F001-2331.pdf, foto del daño.jpg]"
        )
    fresh = EmailMessage()
    fresh["From"], fresh["To"], fresh["Subject"] = "lucia@example.pe", USER, "otra cosa"
    fresh["Message-ID"] = "<late-1@example.pe>"
    fresh.set_content("¿Abren el domingo?")
    dovecot.deliver(bytes(fresh), imap.email_inbound.folder)
    assert read_mailbox(restarted) == {"mail_stored": 1}  # only what is new


def test_a_complaint_by_email_opens_a_case_acknowledged_in_its_thread(
    engine: Engine, imap: Config, dovecot: Dovecot
) -> None:
    sessions = customers_we_wrote_to(engine, imap)
    deliver_fixtures(dovecot, imap)
    worker = dispatcher(sessions, imap, utcnow)  # queued answers are due at the real now
    read_mailbox(worker)
    read_replies(worker)  # triage, then the queued acknowledgement is sent (outbox)
    with sessions() as session:
        rosa = customer(session, "rosa.perez@example.pe")
        case = session.scalars(select(Case).where(Case.customer_id == rosa.id)).one()
        ack = session.scalars(
            select(OutboxEntry).where(OutboxEntry.to_address == "rosa.perez@example.pe")
        ).one()
        assert ack.subject == "Re: ¿Qué tal tu compra?"
        assert ack.headers["In-Reply-To"] == "<CAF3x9q7Yk2mPq=Lr8sD1@mail.gmail.com>"
        assert ack.headers["Reply-To"] == REPLY_TO
        assert "una persona" in ack.body.lower()
        assert case.reason == "question"  # "¿Me lo pueden cambiar?": a person answers
        # The out-of-office opened nothing and was not read as a reply.
        marta = customer(session, "marta@example.pe")
        ooo = inbound(session)["marta@example.pe"]
        assert (ooo.label, ooo.needs_human) == (Label.AUTOMATIC.value, False)
        assert session.scalars(select(Case).where(Case.customer_id == marta.id)).all() == []


def test_a_bounce_stops_email_to_that_address_and_is_shown(
    engine: Engine, imap: Config, dovecot: Dovecot
) -> None:
    sessions = customers_we_wrote_to(engine, imap)
    deliver_fixtures(dovecot, imap)
    worker = dispatcher(sessions, imap, Clock(NOW + timedelta(days=2)))
    read_mailbox(worker)
    read_replies(worker)
    with sessions.begin() as session:
        pedro = customer(session, "pedro.nunez@example.pe")
        assert pedro.email_bounced_at is not None
        assert pedro.email_bounce_reason and pedro.email_bounce_reason.startswith("5.1.1")
        assert session.scalars(select(Case).where(Case.customer_id == pedro.id)).all() == []
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.email_bounced")
        ).one()
        assert audit.entity_id == pedro.id
        # Email follow-ups to the address are skipped with why; a person is told to use another way.
        email_step = session.scalars(
            select(FollowUp)
            .where(
                FollowUp.customer_id == pedro.id,
                FollowUp.channel == Channel.EMAIL,
                FollowUp.status == FollowUpStatus.SCHEDULED,
                FollowUp.id.not_in(
                    select(Message.follow_up_id).where(Message.follow_up_id.isnot(None))
                ),
            )
            .order_by(FollowUp.due_at)
        ).first()
        assert email_step is not None
        due = email_step.due_at
    later = dispatcher(sessions, imap, Clock(due + timedelta(minutes=1)))
    later.run_pass()
    with sessions.begin() as session:
        skipped = session.get_one(FollowUp, email_step.id)
        assert skipped.status is FollowUpStatus.SKIPPED
        assert skipped.status_reason and skipped.status_reason.startswith(
            "the email address bounced"
        )
        pedro = customer(session, "pedro.nunez@example.pe")
        case = Case(customer_id=pedro.id, opened_at=NOW, first_response_due_at=NOW)
        user = User(email="ana@mitienda.pe", password_hash="-", role="staff", created_at=NOW)
        session.add_all([case, user])
        session.flush()
        with pytest.raises(CaseworkError, match="email address bounced"):
            reply_to_customer(
                session,
                case,
                pedro,
                user=user,
                channel=Channel.EMAIL,
                body="Hola",
                subject="Tu compra",
                now=NOW,
            )


@pytest.mark.parametrize(
    ("text", "via", "source"),
    [
        ("unsubscribe", "replied 'unsubscribe' by email", ConsentSource.KEYWORD),
        (
            "Por favor no me escriban más a este correo.",
            "asked by email to stop",
            ConsentSource.WORDS,
        ),
    ],
)
def test_asking_by_email_to_stop_ends_email(
    engine: Engine,
    imap: Config,
    dovecot: Dovecot,
    text: str,
    via: str,
    source: ConsentSource,
) -> None:
    sessions = customers_we_wrote_to(engine, imap)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Rosa <Rosa.Perez@example.pe>", USER, "Re: hola"
    mail["Message-ID"], mail["In-Reply-To"] = (
        "<stop-1@example.pe>",
        WRITERS["rosa.perez@example.pe"],
    )
    mail.set_content(f"{text}\n\nEl lun, 23 nov 2026 a las 10:00, Mi Tienda escribió:\n> Hola")
    dovecot.deliver(bytes(mail), imap.email_inbound.folder)
    worker = dispatcher(sessions, imap, Clock(NOW + timedelta(days=2)))
    read_mailbox(worker)
    read_replies(worker)
    with sessions() as session:
        rosa = customer(session, "rosa.perez@example.pe")
        assert rosa.email_opt_out_via == via and rosa.opt_out_source(Channel.EMAIL) is source
        assert not rosa.sms_opt_out


def test_every_email_to_a_customer_asks_for_the_answer_at_reply_to(
    engine: Engine, config: Config
) -> None:
    config = config.replace(email_inbound={"reply_to": REPLY_TO})
    sessions = setup_sales(engine, config, sale_input("S-1", phone=None, email="rosa@example.pe"))
    with sessions() as session:
        step = session.scalars(select(FollowUp).where(FollowUp.channel == Channel.EMAIL)).first()
        assert step is not None
    dispatcher(sessions, config, Clock(step.due_at + timedelta(minutes=1))).run_pass()
    with sessions() as session:
        [entry] = session.scalars(select(OutboxEntry)).all()
        assert entry.headers["Reply-To"] == REPLY_TO

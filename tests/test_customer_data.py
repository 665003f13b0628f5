"""A customer's data on request: the export holds everything, the erasure leaves nothing of the
person anywhere in the database while the figures stay, a no said before or after it holds
for whoever has that number next, and the retention sweep erases old words only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import Engine, String, Text, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from scheduler import customer_data, erasure, retention
from scheduler.casework.cases import open_case_for
from scheduler.casework.notices import notify_new_case
from scheduler.casework.staff_actions import add_note
from scheduler.config import Config
from scheduler.consent import ConsentError, opt_in, opt_out
from scheduler.db import make_session_factory
from scheduler.lifecycle import (
    PENDING,
    CaseStatus,
    Channel,
    ConsentSource,
    FollowUpStatus,
    RemedyStatus,
)
from scheduler.listening.inbound import act_on_consent, triage
from scheduler.listening.reply_store import InboundMessage
from scheduler.models import (
    AuditEntry,
    Base,
    Case,
    Customer,
    Erasure,
    FollowUp,
    Message,
    Remedy,
    Sale,
    User,
)
from scheduler.sending import sent_texts
from scheduler.sending.sales import record_sale
from scheduler.settings import LiveSettings
from scheduler.worker import RETENTION_JOB, Worker
from tests.browsing import submit
from tests.conftest import Cli
from tests.dispatching import DAY1, Clock, dispatcher, outbox, setup_sales
from tests.factories import NOW, inbound_sms, sale_input

ROSA, EMAIL, NAME = "+51987654321", "rosa.quispe@example.pe", "Rosa Quispe"
WORDS = "la lavadora no prende y nadie me contesta <script>alert(1)</script>"
NOTE = "Llamé a la señora Quispe: pasa el técnico el jueves"
GIFT = "10% en su próxima compra, por las molestias"
COMPLAINED = DAY1 + timedelta(hours=2)
NOTICES = 2  # the case's notices to staff: the owner, and ana@ (cases.notify_emails)


def rosa_complained(engine: Engine, config: Config, staff: User) -> int:
    """Rosa bought; her thank-you went by SMS; she complained; staff noted it and gave her a
    discount; she had said no to email with the link. Her customer id."""
    sessions = setup_sales(engine, config)  # the default cadence
    with sessions.begin() as session:
        sale, _new = record_sale(
            session,
            sale_input("S-1", customer_name=NAME, phone=ROSA, email=EMAIL),
            config=config,
            now=NOW,
            actor="test",
        )
        customer_id = sale.customer_id
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions.begin() as session:
        customer = session.get_one(Customer, customer_id)
        message = inbound_sms(
            WORDS, COMPLAINED, customer_id=customer_id, label="objection", needs_human=True, score=2
        )
        session.add(message)
        case, _opened = open_case_for(
            session, customer, message, reason="objection", config=config, now=COMPLAINED
        )
        notify_new_case(  # a notice to staff, which names and quotes her
            session,
            case,
            customer,
            message,
            config=config.replace(cases={"notify_emails": ["ana@mitienda.pe"]}),
            now=COMPLAINED,
        )
        add_note(session, case, author=staff, body=NOTE, now=COMPLAINED + timedelta(hours=1))
        session.add(
            Remedy(
                case_id=case.id,
                kind="discount",
                description=GIFT,
                value=Decimal(10),
                granted_by_id=staff.id,
                status=RemedyStatus.GRANTED,
                created_at=COMPLAINED + timedelta(hours=1),
            )
        )
        opt_out(
            session,
            customer,
            channel=Channel.EMAIL,
            source=ConsentSource.UNSUBSCRIBE_LINK,
            via="the link in an email",
            now=COMPLAINED,
            actor="customer",
        )
        opt_out(  # written down by staff, with her words
            session,
            customer,
            channel=Channel.WHATSAPP,
            source=ConsentSource.STAFF,
            via=f"ana@mitienda.pe: {NAME} dijo por teléfono que no le escriban por WhatsApp",
            now=COMPLAINED,
            actor="user:2",
        )
    # The notice goes out (through the outbox, which keeps a copy of it).
    dispatcher(sessions, config, Clock(COMPLAINED + timedelta(minutes=1))).queued.run_pass()
    return customer_id


@pytest.fixture
def rosa(engine: Engine, config: Config, staff: User) -> int:
    return rosa_complained(engine, config, staff)


def test_the_export_holds_everything_about_the_customer(session: Session, rosa: int) -> None:
    data = customer_data.export(session, rosa, now=COMPLAINED)
    assert data["customer"] | {"since": None} == {
        "id": rosa,
        "name": NAME,
        "phone": ROSA,
        "email": EMAIL,
        "language": None,
        "time_zone": None,
        "since": None,
        "email_bounced_at": None,
        "email_bounce_reason": None,
    }
    (sale,) = data["sales"]
    assert (sale["order"], sale["amount"], sale["product"]["sku"]) == ("S-1", "1899.00", "LAV-9")
    steps = {row["step"]: row["status"] for row in sale["follow_ups"]}
    assert steps["day1-thanks"] == "sent" and "held" in steps.values()
    directions = [(m["direction"], m["channel"]) for m in data["messages"]]
    # the thank-you, her complaint, and the notice to staff about it (which quotes her)
    assert directions[:2] == [("outbound", "sms"), ("inbound", "sms")]
    assert directions[2:] and set(directions[2:]) == {("outbound", "email")}
    assert data["messages"][1] | {"at": None} == data["messages"][1] | {
        "at": None,
        "read_as": "objection",
        "score": 2,
    }
    assert data["messages"][1]["body"] == WORDS and NAME.split()[0] in data["messages"][0]["body"]
    (case,) = data["cases"]
    assert case["status"] == "open" and [n["text"] for n in case["notes"]] == [NOTE]
    assert [(r["kind"], r["description"], r["value"]) for r in case["remedies"]] == [
        ("discount", GIFT, "10.00")
    ]
    assert data["consent"]["email"]["how"] == "the link in an email"
    assert data["consent"]["sms"]["opted_out_at"] is None
    said = [(c["what"], c["details"]["channel"]) for c in data["consent_history"]]
    assert said == [("customer.opt_out", "email"), ("customer.opt_out", "whatsapp")]
    assert {"sale.record", "case.open", "case.note"} <= {e["what"] for e in data["history"]}
    json.dumps(data)  # all of it is JSON as it is


def test_owners_download_it_or_read_it_and_each_copy_is_in_the_audit_log(
    rosa: int, owner_client: FlaskClient, staff_client: FlaskClient, session: Session
) -> None:
    download = owner_client.get(f"/customers/{rosa}/data.json")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == f"attachment; filename=customer-{rosa}.json"
    assert json.loads(download.get_data(as_text=True))["customer"]["phone"] == ROSA
    page = owner_client.get(f"/customers/{rosa}/data").get_data(as_text=True)
    assert "Tus datos en Mi Tienda" in page and NOTE in page and GIFT in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for path in (
        f"/customers/{rosa}/data.json",
        f"/customers/{rosa}/data",
        f"/customers/{rosa}/erase",
    ):
        assert staff_client.get(path).status_code == 403
    exports = session.scalar(
        select(func.count()).where(
            AuditEntry.action == "customer.export", AuditEntry.entity_id == rosa
        )
    )
    assert exports == 2
    assert owner_client.get("/customers/999999/data.json").status_code == 404


def test_the_command_line_exports_json_and_the_page(rosa: int, postventa: Cli) -> None:
    printed = postventa("customer", "export", str(rosa))
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["cases"][0]["notes"][0]["text"] == NOTE
    page = postventa("customer", "export", str(rosa), "--html")
    assert page.exit_code == 0, page.output
    assert "<h1>Tus datos en Mi Tienda</h1>" in page.output and NOTE in page.output
    assert postventa("customer", "export", "424242").output.strip() == "Error: no customer 424242"
    unreadable = postventa("customer", "export", "rosa")
    assert unreadable.exit_code == 2 and "'rosa' is not a customer number" in unreadable.output


def texts_holding(session: Session, needle: str) -> list[str]:
    """Every table.column, in the whole database, whose text holds `needle` (on PostgreSQL,
    the copy of what went out too)."""
    found = []
    tables = list(Base.metadata.sorted_tables)
    if sent_texts.kept(session):
        tables.append(sent_texts.OUTBOUND_TEXTS)
    for table in tables:
        for column in table.columns:
            if not isinstance(column.type, String | Text | JSON):
                continue
            hits = session.scalar(
                select(func.count())
                .select_from(table)
                .where(cast(column, Text).contains(needle, autoescape=True))
            )
            if hits:
                found.append(f"{table.name}.{column.name}")
    return found


def test_erasing_leaves_nothing_of_the_person_and_keeps_the_figures(
    rosa: int, session: Session, engine: Engine, config: Config
) -> None:
    before = {
        model.__tablename__: session.scalar(select(func.count()).select_from(model))
        for model in (Sale, FollowUp, Message, Case)
    }
    with make_session_factory(engine, writer=True).begin() as writer:
        done = erasure.erase(
            writer,
            writer.get_one(Customer, rosa),
            actor="user:1",
            reason="pidió por correo que la borremos",
            now=COMPLAINED + timedelta(days=1),
        )
    assert (done.messages, done.cases) == (2 + NOTICES, 1) and done.follow_ups_cancelled >= 1
    session.rollback()  # a new transaction: it sees what the erasure committed
    for personal in (ROSA, "987654321", EMAIL, NAME, "Quispe", "lavadora no prende", NOTE, GIFT):
        assert texts_holding(session, personal) == [], personal
    after = {
        model.__tablename__: session.scalar(select(func.count()).select_from(model))
        for model in (Sale, FollowUp, Message, Case)
    }
    assert after == before  # the figures keep every row
    customer = session.get_one(Customer, rosa)
    assert (customer.name, customer.phone, customer.email) == (erasure.ERASED, None, None)
    assert all(customer.opt_out_at(channel) for channel in Channel)
    reply = session.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert (reply.body, reply.score, reply.label) == (erasure.ERASED, 2, "objection")
    case = session.scalars(select(Case)).one()
    assert case.status is CaseStatus.RESOLVED and case.opened_at == COMPLAINED
    pending = session.scalar(
        select(func.count()).where(
            FollowUp.status.in_((FollowUpStatus.SCHEDULED, FollowUpStatus.HELD))
        )
    )
    assert pending == 0
    sent = len(outbox(session))
    dispatcher(
        make_session_factory(engine, writer=True), config, Clock(DAY1 + timedelta(days=60))
    ).run_pass()
    assert len(outbox(session)) == sent  # nothing can go to them again
    kept = session.scalars(select(Erasure)).one()
    assert (
        kept.phone_hash
        and kept.phone_hash != ROSA
        and (kept.email_opt_out, kept.whatsapp_opt_out, kept.sms_opt_out) == (True, True, False)
    )
    (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "customer.erase"))
    assert (entry.actor, entry.entity_id, entry.details["reason"]) == (
        "user:1",
        rosa,
        "pidió por correo que la borremos",
    )
    with pytest.raises(erasure.ErasureError, match="erased already"):
        erasure.erase(session, customer, actor="cli", reason="again", now=COMPLAINED)
    with pytest.raises(ConsentError, match="erased on request"):
        opt_in(session, customer, channel=Channel.SMS, via="x", now=COMPLAINED, actor="cli")


def test_a_no_said_before_or_after_the_erasure_holds_for_the_next_customer_with_that_number(
    rosa: int, session: Session, engine: Engine, config: Config
) -> None:
    sessions = make_session_factory(engine, writer=True)
    later = COMPLAINED + timedelta(days=400)
    with sessions.begin() as writer:
        erasure.erase(
            writer, writer.get_one(Customer, rosa), actor="cli", reason="pedido", now=later
        )
    with sessions.begin() as writer:  # she texts STOP after: nobody to opt out, but remembered
        act_on_consent(
            writer,
            InboundMessage("SM" + "7" * 32, ROSA, "+15005550006", "BAJA"),
            config=config,
            now=later,
        )
    with sessions.begin() as writer:
        kept = writer.scalars(select(Erasure)).one()
        assert (kept.sms_opt_out, kept.whatsapp_opt_out, kept.email_opt_out) == (True, True, True)
    after = later + timedelta(days=1)
    with sessions.begin() as writer:  # a year on, a sale with her number and email again
        again, _ = record_sale(
            writer,
            sale_input("S-2", customer_name="Rosa Q.", phone=ROSA, email=EMAIL, sold_at=after),
            config=config,
            now=after,
            actor="test",
        )
        assert again.customer_id != rosa
        new = writer.get_one(Customer, again.customer_id)
        for channel in Channel:  # the STOP after, the no's before
            assert new.opt_out_at(channel) == after, channel
            assert new.opt_out_via(channel) == erasure.EARLIER_NO
    with sessions.begin() as writer:  # the same order again does not bring her back
        same, created = record_sale(
            writer,
            sale_input("S-1", customer_name=NAME, phone="+51911111111"),
            config=config,
            now=later,
            actor="test",
        )
        assert not created and same.customer_id == rosa
    assert session.get_one(Customer, rosa).name == erasure.ERASED


def test_an_order_from_before_the_erasure_imported_again_is_never_followed_up(
    rosa: int, engine: Engine, config: Config
) -> None:
    sessions = make_session_factory(engine, writer=True)
    erased_at = COMPLAINED + timedelta(days=3)
    with sessions.begin() as writer:
        her = writer.get_one(Customer, rosa)
        erasure.erase(writer, her, actor="cli", reason="pedido", now=erased_at)
    with sessions.begin() as writer:  # an old export, under the shop's other order numbers
        old, _ = record_sale(
            writer,
            sale_input("WEB-1", customer_name=NAME, phone=ROSA, sold_at=NOW),
            config=config,
            now=erased_at + timedelta(days=1),
            actor="import",
        )
        comeback = writer.get_one(Customer, old.customer_id)
        # by her number: what goes to a number is closed (she came back without an email)
        for channel in (Channel.SMS, Channel.WHATSAPP):
            assert comeback.opt_out_via(channel) == erasure.BEFORE_ERASURE
        planned = writer.scalars(select(FollowUp).where(FollowUp.sale_id == old.id)).all()
        assert planned and all(row.status not in PENDING for row in planned)


def test_owners_erase_from_the_admin_only_when_they_type_the_number(
    rosa: int, owner_client: FlaskClient, session: Session
) -> None:
    page = owner_client.get(f"/customers/{rosa}/erase")
    assert page.status_code == 200 and "cannot be undone" in page.get_data(as_text=True)
    wrong = submit(
        owner_client, f"/customers/{rosa}/erase", {"reason": "lo pidió", "confirm": "99"}
    )
    assert wrong.status_code == 400 and f"Type the customer&#39;s number, {rosa}" in wrong.get_data(
        as_text=True
    )
    assert session.get_one(Customer, rosa).erased_at is None
    done = submit(
        owner_client, f"/customers/{rosa}/erase", {"reason": "lo pidió", "confirm": str(rosa)}
    )
    assert done.status_code == 302
    shown = owner_client.get(f"/customers/{rosa}").get_data(as_text=True)
    assert (
        'id="erased"' in shown and "Customer erased" in shown and 'id="erase-customer"' not in shown
    )
    session.rollback()  # a new transaction: it sees what the erasure committed
    assert session.get_one(Customer, rosa).erased_at is not None


def test_the_command_line_erases_after_asking(rosa: int, postventa: Cli, session: Session) -> None:
    declined = postventa("customer", "erase", str(rosa), "--reason", "pedido", input="n\n")
    assert declined.exit_code == 1 and session.get_one(Customer, rosa).erased_at is None
    done = postventa("customer", "erase", str(rosa), "--reason", "pedido", input="y\n")
    assert done.exit_code == 0, done.output
    assert f"customer {rosa} erased: {2 + NOTICES} messages, 1 cases" in done.output
    again = postventa("customer", "erase", str(rosa), "--reason", "pedido", "--yes")
    assert again.exit_code == 1 and "erased already" in again.output


@pytest.mark.parametrize(
    ("now", "months", "expected"),
    [
        (datetime(2027, 3, 31, 12, tzinfo=UTC), 1, datetime(2027, 2, 28, 12, tzinfo=UTC)),
        (datetime(2028, 3, 31, 12, tzinfo=UTC), 1, datetime(2028, 2, 29, 12, tzinfo=UTC)),
        (datetime(2027, 1, 15, tzinfo=UTC), 13, datetime(2025, 12, 15, tzinfo=UTC)),
        (datetime(2027, 1, 15, tzinfo=UTC), 24, datetime(2025, 1, 15, tzinfo=UTC)),
    ],
)
def test_months_back_are_calendar_months(now: datetime, months: int, expected: datetime) -> None:
    assert retention.cutoff(now, months) == expected


def test_retention_erases_old_words_but_not_an_open_cases_nor_recent_ones(
    rosa: int, engine: Engine, session: Session, config: Config, postventa: Cli
) -> None:
    sessions = make_session_factory(engine, writer=True)
    seven_months = COMPLAINED + timedelta(days=7 * 31)
    dry = retention.count(session, months=6, now=seven_months)
    assert (dry.messages, dry.cases) == (1, 0)  # the thank-you; the complaint's case is open
    with sessions.begin() as writer:
        case = writer.scalars(select(Case)).one()
        case.status, case.resolved_at, case.outcome = CaseStatus.RESOLVED, COMPLAINED, "técnico fue"
    session.rollback()  # a new transaction: it sees the case closed
    assert retention.count(session, months=6, now=seven_months).cases == 1
    assert retention.count(session, months=6, now=COMPLAINED + timedelta(days=30)).messages == 0
    swept = retention.sweep_all(sessions, months=6, now=seven_months, actor="test")
    assert (swept.messages, swept.outbox, swept.cases) == (2 + NOTICES, 1 + NOTICES, 1)
    session.rollback()  # a new transaction: it sees what the erasure committed
    assert {m.body for m in session.scalars(select(Message))} == {erasure.ERASED}
    assert session.scalars(select(Case)).one().outcome == erasure.ERASED
    assert texts_holding(session, NOTE) == [] and texts_holding(session, GIFT) == []
    assert session.get_one(Customer, rosa).name == NAME  # the person stays: only old words go
    assert not retention.count(session, months=6, now=seven_months)


def test_the_worker_sweeps_only_when_a_retention_is_set(engine: Engine, config: Config) -> None:
    def jobs(settings: Config) -> set[str]:
        scheduler = BackgroundScheduler()
        Worker(engine, LiveSettings.from_engine(engine, settings)).schedule(scheduler)
        return {job.id for job in scheduler.get_jobs()}

    assert RETENTION_JOB not in jobs(config)
    assert RETENTION_JOB in jobs(config.replace(privacy={"retention_months": 24}))


def test_the_command_line_says_what_retention_would_erase_then_erases_it(
    rosa: int, postventa: Cli, config_file: Path
) -> None:
    refused = postventa("retention", "--dry-run")
    assert refused.exit_code == 1 and "retention_months is 0" in refused.output
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text + "\n[privacy]\nretention_months = 1\n", encoding="utf-8")
    with freeze_time(COMPLAINED + timedelta(days=62)):
        dry = postventa("retention", "--dry-run")
        assert dry.exit_code == 0, dry.output
        # the thank-you; the outbox's copies of it and of the notices (the open case keeps its own)
        assert dry.output.startswith(f"would erase the words of 1 messages, {1 + NOTICES} outbox")
        done = postventa("retention")
        assert done.output.startswith(f"erased the words of 1 messages, {1 + NOTICES} outbox")
        again = postventa("retention", "--dry-run")
        assert again.output.startswith("would erase the words of 0 messages, 0 outbox")


def test_a_reply_to_an_old_email_from_an_erased_customer_waits_for_a_person(
    rosa: int, engine: Engine, config: Config
) -> None:
    """Found by the email it answers, a reply names the erased customer: read as a stranger's
    (nothing reopens, nobody opts them back in), and the worker goes on reading the others."""
    sessions = make_session_factory(engine, writer=True)
    later = COMPLAINED + timedelta(days=5)
    with sessions.begin() as writer:
        erasure.erase(writer, writer.get_one(Customer, rosa), actor="cli", reason="x", now=later)
        writer.add(
            inbound_sms(
                "Sí",
                later,
                sender=EMAIL,
                customer_id=rosa,
                channel=Channel.EMAIL,
                to_address="respuestas@mitienda.pe",
            )
        )
    assert triage(sessions, config, now=later) == 1
    with sessions() as session:
        reply = session.scalars(select(Message).where(Message.body == "Sí")).one()
        assert reply.customer_id is None and reply.needs_human is not None
        assert session.get_one(Customer, rosa).opt_out_at(Channel.EMAIL) is not None
        assert session.scalars(select(Case)).one().status is CaseStatus.RESOLVED


def test_an_erasure_asked_badly_says_what_is_wrong_and_erases_nothing(
    rosa: int, owner_client: FlaskClient, session: Session
) -> None:
    for reason, said in [
        ("", "Say why (for the audit log; not the customer&#39;s name)."),
        ("x" * 501, "The reason is too long: at most 500 characters."),
    ]:
        refused = submit(
            owner_client, f"/customers/{rosa}/erase", {"reason": reason, "confirm": str(rosa)}
        )
        assert refused.status_code == 400 and said in refused.get_data(as_text=True)
    assert session.get_one(Customer, rosa).erased_at is None
    gone = submit(owner_client, "/customers/424242/erase", {"reason": "x", "confirm": "424242"})
    assert gone.status_code == 404

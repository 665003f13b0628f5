"""A shop that installed the first release (schema revision 0001) and used it for a while runs
`postventa db upgrade` (`schema.upgrade`, nothing more) to the newest revision: it keeps every
row it had, and the current code works on what it kept.

Each migration has tests of its own for what it does to the rows of the schema just before
it. This one takes the path a real shop takes, every migration in a row over the data of the
first schema, so that a migration that breaks a later one's assumptions, or the current models'
reading of old rows, shows here; on SQLite and on PostgreSQL (`blank`), which migrate
differently (SQLite rebuilds a table for most changes).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler import accounts, schema
from scheduler.config import Config, defaults
from scheduler.db import make_session_factory
from scheduler.lifecycle import (
    Anchor,
    CaseStatus,
    Channel,
    ConsentSource,
    Direction,
    FollowUpStatus,
    RemedyStatus,
    Role,
    SaleStatus,
)
from scheduler.models import (
    ApiToken,
    AuditEntry,
    Base,
    Cadence,
    Case,
    Customer,
    FollowUp,
    FollowUpTally,
    Message,
    Sale,
    User,
)
from scheduler.sending.sales import SaleInput, record_sale
from tests.dispatching import Clock, dispatcher, outbox
from tests.factories import NOW
from tests.migrating import blank  # noqa: F401 - fixture

__all__ = ["blank"]
from tests.first_release import (
    API_TOKEN,
    CARMEN_VIA,
    FIRST,
    LUIS_EMAIL,
    LUIS_QUESTION,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    RESOLVED_AS,
    ROSA_PHONE,
    ROSA_REPLY,
    ROSA_THANKED,
    Shop,
    first_release_shop,
    utc,
)


def upgraded_first_release(engine: Engine, *, one_release_at_a_time: bool = False) -> Shop:
    """The first release's shop, then `postventa db upgrade`: the newest revision, which the
    app and the worker accept at start; or each release's upgrade in turn, as a shop that
    kept up would have run them (on SQLite, a table rebuilt with foreign keys enforced used
    to empty the tables pointing at it, with no error)."""
    shop = first_release_shop(engine)
    if one_release_at_a_time:
        for revision in sorted(schema.revisions()[1] - {FIRST}):
            schema.upgrade(engine, revision)
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    schema.require_current(engine)  # raises SchemaError on a database the code refuses
    return shop


def read_back(
    connection: Connection, table_name: str, rows: dict[int, dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    """`rows` as the current models read them now: the same columns, by id. A column the
    first schema had that the models lost is a KeyError here."""
    table = Base.metadata.tables[table_name]
    columns = sorted({column for values in rows.values() for column in values})
    found = connection.execute(
        select(table.c.id, *(table.c[column] for column in columns)).where(
            table.c.id.in_(list(rows))
        )
    )
    return {row.id: {column: row._mapping[column] for column in columns} for row in found}


def tallied(session: Session) -> Counter[str]:
    """The follow-ups by status as the tallies (kept by triggers since 0022) count them."""
    sums = session.execute(
        select(FollowUpTally.status, func.sum(FollowUpTally.n)).group_by(FollowUpTally.status)
    )
    return Counter({status: int(n) for status, n in sums if n})


def counted(session: Session) -> Counter[str]:
    """The follow-ups by status, counted one by one."""
    return Counter(str(status) for status in session.scalars(select(FollowUp.status)))


@pytest.mark.parametrize("one_release_at_a_time", [False, True])
def test_every_row_of_the_first_release_is_kept_with_its_values(
    blank: Engine, one_release_at_a_time: bool
) -> None:
    """Each table keeps exactly the rows the first release wrote, every value as written, read
    through today's models (their types: UTC times, enums, JSON, decimals). Migration 0006
    adds one row, the default cadence's "case-check" step, and nothing else adds or removes
    any (no twins here for 0010 and 0012 to merge)."""
    shop = upgraded_first_release(blank, one_release_at_a_time=one_release_at_a_time)
    added = {"cadence_steps": 1}
    with blank.connect() as connection:
        for table_name, rows in shop.rows.items():
            table = Base.metadata.tables[table_name]
            count = connection.scalar(select(func.count()).select_from(table))
            assert count == len(rows) + added.get(table_name, 0), table_name
            assert read_back(connection, table_name, rows) == rows, table_name


def test_what_the_migrations_derive_from_old_rows_is_right(blank: Engine) -> None:
    """The columns and tables later migrations filled in from the first release's rows: step
    anchors (0002), follow-ups' facts (0003), remedies granted (0007), owners told of cases
    (0009), the source of an old opt-out (0013), queued-message fields (0014), the tallies
    (0022, 0024), whether a follow-up was replied to (0024), a customer's last sale (0025)."""
    shop = upgraded_first_release(blank)
    with make_session_factory(blank, writer=True)() as session:
        cadence = session.get_one(Cadence, shop["cadence"])
        assert [(s.key, s.anchor, s.channel, s.template_name) for s in cadence.steps] == [
            ("day1-thanks", Anchor.SALE, Channel.SMS, "thanks"),
            ("case-check", Anchor.CASE, Channel.SMS, "case_check"),  # added by 0006
            ("day7-check-in", Anchor.SALE, Channel.SMS, "check_in"),
            ("day30-usage", Anchor.SALE, Channel.EMAIL, "usage_check_in"),
        ]
        follow_ups = session.scalars(select(FollowUp)).all()
        assert {f.id: (f.facts, f.case_id, f.paused_at) for f in follow_ups} == {
            f.id: ({}, None, None) for f in follow_ups
        }
        # Rosa answered her thank-you four hours after it went: within the 7 days.
        assert {f.id: f.replied for f in follow_ups} == {
            f.id: "in_time" if f.id == shop["fu:rosa-thanks"] else None for f in follow_ups
        }
        assert (
            tallied(session)
            == counted(session)
            == Counter({"scheduled": 3, "sent": 1, "failed": 1, "cancelled": 1})
        )
        rosa, luis, carmen = (
            session.get_one(Customer, shop[who]) for who in ("rosa", "luis", "carmen")
        )
        assert rosa.last_sold_at == utc(11, 16, 14)  # the later of her two sales
        assert (luis.last_sold_at, carmen.last_sold_at) == (utc(11, 20, 16), utc(11, 22, 14, 30))
        assert carmen.sms_opt_out_source is ConsentSource.KEYWORD  # from "replied 'baja'"
        assert (rosa.sms_opt_out_source, rosa.email_opt_out_source) == (None, None)
        assert not (rosa.whatsapp_opt_in or rosa.whatsapp_opt_out or rosa.unsubscribe_token)
        assert luis.email_bounced_at is None
        messages = session.scalars(select(Message)).all()
        assert {(m.attempts, m.due_at, m.lease_owner, m.label) for m in messages} == {
            (0, None, None, None)
        }
        remedy = session.get_one(Case, shop["case:rosa"]).remedies[0]
        assert (remedy.status, remedy.decided_at) == (RemedyStatus.GRANTED, None)
        users = session.scalars(select(User).order_by(User.id)).all()
        assert [(u.email, u.role, u.notify_cases) for u in users] == [
            (OWNER_EMAIL, Role.OWNER, True),
            ("ana@mitienda.pe", Role.STAFF, True),
        ]
        assert session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all() == [
            "sale.record",
            "case.resolve",
            "consent.opt_out",
        ]


def test_the_current_models_read_the_first_releases_shop(blank: Engine) -> None:
    """Today's ORM loads the old rows as objects, with their relationships: customers, their
    sales and products, follow-ups and their steps, messages both ways, cases with their notes
    and remedies."""
    shop = upgraded_first_release(blank)
    with make_session_factory(blank, writer=True)() as session:
        rosa = session.get_one(Customer, shop["rosa"])
        assert (rosa.name, rosa.phone, rosa.email) == ("Rosa Quispe", ROSA_PHONE, None)
        assert rosa.address(Channel.SMS) == ROSA_PHONE and not rosa.sms_opt_out
        assert sorted(sale.external_id for sale in rosa.sales) == ["S-0999", "S-1001"]
        luis = session.get_one(Customer, shop["luis"])
        assert (luis.name, luis.phone, luis.email) == ("Luis Huamán", None, LUIS_EMAIL)
        assert (luis.locale, luis.timezone) == ("es", "America/Lima")
        carmen = session.get_one(Customer, shop["carmen"])
        assert carmen.sms_opt_out and carmen.opt_out_via(Channel.SMS) == CARMEN_VIA
        assert carmen.opt_out_at(Channel.SMS) == utc(11, 22, 16)

        sale = session.scalars(select(Sale).where(Sale.external_id == "S-1001")).one()
        assert (sale.customer.name, sale.product and sale.product.sku) == ("Rosa Quispe", "LAV-9")
        assert (sale.amount, sale.currency, sale.status) == (
            Decimal("1899.00"),
            "PEN",
            SaleStatus.ACTIVE,
        )
        assert sale.sold_at == utc(11, 16, 14) and sale.attributes == {"store": "Surco"}
        plan = sorted(sale.follow_ups, key=lambda f: f.due_at)
        assert [(f.step.key, f.status, f.due_at) for f in plan] == [
            ("day1-thanks", FollowUpStatus.SENT, utc(11, 17, 14)),
            ("day7-check-in", FollowUpStatus.SCHEDULED, utc(11, 23, 14)),
        ]
        assert plan[0].sent_at == utc(11, 17, 14, 0, 3) and plan[0].attempts == 1
        cancelled = session.scalars(select(Sale).where(Sale.external_id == "S-0999")).one()
        assert (cancelled.status, cancelled.cancelled_at) == (SaleStatus.CANCELLED, utc(11, 4, 10))
        assert [f.status for f in cancelled.follow_ups] == [FollowUpStatus.CANCELLED]

        failed = session.get_one(FollowUp, shop["fu:luis-thanks"])
        assert (failed.status, failed.channel, failed.attempts) == (
            FollowUpStatus.FAILED,
            Channel.EMAIL,
            3,
        )
        assert failed.last_error == "451 4.3.0 mail server temporarily unavailable"
        later = session.get_one(FollowUp, shop["fu:luis-usage"])
        assert (later.status, later.due_at, later.step.cadence.name) == (
            FollowUpStatus.SCHEDULED,
            utc(12, 20, 16),
            "Postventa estándar",
        )

        thanked = session.get_one(Message, shop["msg:rosa-thanks"])
        assert (thanked.direction, thanked.channel, thanked.status) == (
            Direction.OUTBOUND,
            Channel.SMS,
            "sent",
        )
        assert (thanked.body, thanked.to_address, thanked.encoding) == (
            ROSA_THANKED,
            ROSA_PHONE,
            "GSM-7",
        )
        reply = session.get_one(Message, shop["msg:rosa-reply"])
        assert (reply.direction, reply.body, reply.from_address) == (
            Direction.INBOUND,
            ROSA_REPLY,
            ROSA_PHONE,
        )
        assert (reply.follow_up_id, reply.case_id) == (shop["fu:rosa-thanks"], shop["case:rosa"])
        bounced = session.get_one(Message, shop["msg:luis-failed"])
        assert (bounced.status, bounced.error_code) == ("failed", "451")
        question = session.get_one(Message, shop["msg:luis-question"])
        assert (question.channel, question.subject, question.body) == (
            Channel.EMAIL,
            "Factura",
            LUIS_QUESTION,
        )

        resolved = session.get_one(Case, shop["case:rosa"])
        assert (resolved.status, resolved.resolved_at, resolved.outcome) == (
            CaseStatus.RESOLVED,
            utc(11, 19, 20),
            RESOLVED_AS,
        )
        assert [note.body for note in resolved.notes] == [
            "Mandó foto de la puerta rota; pedimos el repuesto."
        ]
        assert [(r.kind, r.value) for r in resolved.remedies] == [
            ("replacement", Decimal("120.00"))
        ]
        still_open = session.get_one(Case, shop["case:luis"])
        assert (still_open.status, still_open.reason, still_open.escalation_level) == (
            CaseStatus.OPEN,
            "question",
            1,
        )
        assert still_open.first_response_due_at == utc(11, 23, 17)


def test_the_owner_logs_in_and_the_shops_token_still_opens_the_api(blank: Engine) -> None:
    """The first release's password hash and API token digest still let their people in:
    log-in sessions and failure counts are tables of later migrations."""
    shop = upgraded_first_release(blank)
    sessions = make_session_factory(blank, writer=True)
    with sessions.begin() as session:
        user, wait = accounts.authenticate(
            session, email=OWNER_EMAIL, address="127.0.0.1", password=OWNER_PASSWORD, now=NOW
        )
        assert user is not None and (user.id, user.role, wait) == (shop["owner"], Role.OWNER, 0)
        cookie = accounts.open_session(session, user, now=NOW)
        token = accounts.find_api_token(session, API_TOKEN, NOW)
        assert token is not None and (token.id, token.name) == (shop["token"], "Tienda online")
    with sessions() as session:
        found = accounts.find_session(session, cookie)
        assert found is not None and found[1].email == OWNER_EMAIL
        assert session.get_one(ApiToken, shop["token"]).last_used_at == NOW
        wrong, _ = accounts.authenticate(
            session, email="ana@mitienda.pe", address="127.0.0.1", password="no-es-esta", now=NOW
        )
        assert wrong is None


def _config(engine: Engine) -> Config:
    """The `config` fixture's configuration (the defaults), pointed at this database: that
    fixture would tie the test to the session's migrated database as well."""
    return defaults().replace(database={"url": engine.url.render_as_string(hide_password=False)})


def _run_pass(sessions: sessionmaker[Session], config: Config) -> dict[str, int]:
    """One dispatch pass at `NOW`: Monday 10:00 in Lima, inside the default send window."""
    return dispatcher(sessions, config, Clock(NOW)).run_pass()


def test_the_current_worker_sends_what_the_first_release_left_due(blank: Engine) -> None:
    """A pass of today's dispatcher over the upgraded shop: Rosa's check-in, due an hour ago,
    goes out (rendered from the first release's own template) to the outbox; Carmen's
    thank-you is skipped because she said BAJA under the first release; nothing else moves.
    The tallies kept by the migrations' triggers follow the change."""
    shop = upgraded_first_release(blank)
    config = _config(blank)
    sessions = make_session_factory(blank, writer=True)
    summary = _run_pass(sessions, config)
    assert (summary["claimed"], summary["sent"], summary["skipped"]) == (2, 1, 1)
    with sessions() as session:
        [entry] = outbox(session)
        assert (entry.channel, entry.to_address) == (Channel.SMS, ROSA_PHONE)
        assert entry.reference == f"follow-up:{shop['fu:rosa-check-in']}"
        assert entry.body.startswith("Hola Rosa, ya llevas una semana con Lavadora. ¿Todo bien?")
        sent = session.get_one(FollowUp, shop["fu:rosa-check-in"])
        assert (sent.status, sent.sent_at, sent.attempts) == (FollowUpStatus.SENT, NOW, 1)
        message = session.scalars(
            select(Message).where(Message.follow_up_id == shop["fu:rosa-check-in"])
        ).one()
        assert (message.status, message.provider_id) == ("stored", f"outbox-{entry.id}")
        assert (message.customer_id, message.direction) == (shop["rosa"], Direction.OUTBOUND)
        skipped = session.get_one(FollowUp, shop["fu:carmen-thanks"])
        assert skipped.status is FollowUpStatus.SKIPPED
        assert skipped.status_reason and CARMEN_VIA in skipped.status_reason
        statuses = {f.id: f.status for f in session.scalars(select(FollowUp))}
        assert statuses == {
            shop["fu:rosa-cancelled"]: FollowUpStatus.CANCELLED,
            shop["fu:rosa-thanks"]: FollowUpStatus.SENT,
            shop["fu:rosa-check-in"]: FollowUpStatus.SENT,
            shop["fu:luis-thanks"]: FollowUpStatus.FAILED,
            shop["fu:luis-usage"]: FollowUpStatus.SCHEDULED,
            shop["fu:carmen-thanks"]: FollowUpStatus.SKIPPED,
        }
        assert session.get_one(FollowUp, shop["fu:luis-usage"]).due_at == utc(12, 20, 16)
        assert tallied(session) == counted(session)
    again = _run_pass(sessions, config)
    assert again["claimed"] == 0  # sent once


def test_a_new_sale_for_an_old_customer_plans_from_the_old_cadence(blank: Engine) -> None:
    """Today's intake records a sale for Rosa, known by her phone since the first release: no
    second Rosa (0010's unique phone), her latest sale moves (0025's trigger), and the follow-
    ups come from the first release's default cadence."""
    shop = upgraded_first_release(blank)
    config = _config(blank)
    sessions = make_session_factory(blank, writer=True)
    with sessions.begin() as session:
        sale, created = record_sale(
            session,
            SaleInput(
                external_id="S-1100",
                sold_at=NOW,
                customer_name="Rosa Quispe",
                phone=ROSA_PHONE,
                product_sku="LAV-9",
                product_name="Lavadora",
                amount=Decimal("1899.00"),
                currency="PEN",
            ),
            config=config,
            now=NOW,
            actor="test",
        )
        assert created and sale.customer_id == shop["rosa"]
        sale_id = sale.id
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 3
        assert session.get_one(Customer, shop["rosa"]).last_sold_at == NOW
        planned = session.scalars(
            select(FollowUp).where(FollowUp.sale_id == sale_id).order_by(FollowUp.due_at)
        ).all()
        assert [(f.step.key, f.channel, f.status, f.due_at) for f in planned] == [
            ("day1-thanks", Channel.SMS, FollowUpStatus.SCHEDULED, NOW.replace(day=24)),
            ("day7-check-in", Channel.SMS, FollowUpStatus.SCHEDULED, NOW.replace(day=30)),
            # An email step, for a customer with a phone alone: by SMS (today's planning).
            ("day30-usage", Channel.SMS, FollowUpStatus.SCHEDULED, NOW.replace(month=12, day=23)),
        ]
        assert {f.step.cadence_id for f in planned} == {shop["cadence"]}
        assert tallied(session) == counted(session)

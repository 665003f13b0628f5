"""A case's product, kept by the database (`Case.product_id`, migration 0042): the product of
the sale `context.about` finds, through every write that could change it, on both databases;
read again by the worker for a case and a sale written at the same moment; filled for the
cases already there."""

from __future__ import annotations

from datetime import datetime, timedelta

from alembic import command
from freezegun import freeze_time
from sqlalchemy import Engine, delete, inspect, select, text, update
from sqlalchemy.orm import Session

from scheduler import schema
from scheduler.casework.case_products import RECHECKED, product_about, recheck
from scheduler.casework.context import about
from scheduler.config import Config, defaults
from scheduler.db import make_session_factory
from scheduler.defaults import install_defaults
from scheduler.lifecycle import CaseStatus
from scheduler.models import Case, Customer, FollowUp, Message, Product, Sale
from scheduler.schema import alembic_config
from scheduler.sending.sales import record_sale
from scheduler.settings import LiveSettings
from scheduler.worker import Worker
from tests.dispatching import follow_up, setup_sales
from tests.factories import NOW, inbound_sms, sale_input
from tests.first_release import first_release_shop
from tests.migrating import blank  # noqa: F401 - fixture
from tests.racing import at_once

__all__ = ["blank"]

ROSA, PEDRO = "+51987654321", "+51911111111"


def _kept(session: Session) -> dict[int, int | None]:
    """Each case's product as the database keeps it (the ORM's objects do not see it)."""
    session.flush()
    return dict(session.execute(select(Case.id, Case.product_id)).all())


def _about(session: Session) -> dict[int, int | None]:
    """Each case's product by `about`, read afresh."""
    session.flush()
    session.expire_all()
    products = {}
    for case in session.scalars(select(Case)):
        sale = about(session, case)
        products[case.id] = sale.product_id if sale is not None else None
    return products


def _one_rule(session: Session) -> dict[int, int | None]:
    """The kept products, checked to be `about`'s and `product_about`'s."""
    kept = _kept(session)
    assert kept == _about(session)
    assert kept == dict(session.execute(select(Case.id, product_about())).all())
    return kept


def _sale(session: Session, external_id: str, sold_at: datetime, **fields: object) -> Sale:
    sale, _new = record_sale(
        session,
        sale_input(external_id, sold_at=sold_at, **fields),
        config=defaults(),
        now=max(sold_at, NOW),
        actor="test",
    )
    return sale


def _product(session: Session, sku: str) -> int:
    return session.scalars(select(Product.id).where(Product.sku == sku)).one()


def _rosa_with_a_washer(session: Session) -> int:
    """The defaults, and Rosa's washer bought ten days before NOW; her customer id."""
    install_defaults(session, NOW)
    _sale(session, "S-1", NOW - timedelta(days=10))
    return session.scalars(select(Customer.id).where(Customer.phone == ROSA)).one()


def _opened(customer: int, at: datetime = NOW, reason: str = "objection") -> Case:
    return Case(customer_id=customer, reason=reason, opened_at=at, first_response_due_at=at)


def test_a_case_keeps_the_product_it_is_about_through_every_write(session: Session) -> None:
    rosa = _rosa_with_a_washer(session)
    washer = _product(session, "LAV-9")
    case = _opened(rosa)
    nobody = Customer(name="Sin Compras", phone="+51900000000", created_at=NOW)
    session.add_all([case, nobody])
    session.flush()
    alone = _opened(nobody.id, reason="at_risk")
    session.add(alone)
    session.flush()
    assert _one_rule(session) == {case.id: washer, alone.id: None}  # her latest purchase

    # A sale recorded late is her latest purchase by then; one after the case opened is not.
    cooker_sale = _sale(
        session, "S-2", NOW - timedelta(days=5), product_sku="COC-1", product_name="Cocina"
    )
    cooker = _product(session, "COC-1")
    assert _one_rule(session)[case.id] == cooker
    _sale(session, "S-3", NOW + timedelta(days=1), product_sku="TV-1", product_name="Tele")
    assert _one_rule(session)[case.id] == cooker

    # A reply answering the washer's follow-up joins the case: the washer's, now.
    washer_reply = inbound_sms(
        "la lavadora no prende",
        NOW + timedelta(hours=1),
        customer_id=rosa,
        case_id=case.id,
        follow_up_id=follow_up(session, "day1-thanks", "S-1").id,
    )
    earlier = inbound_sms(  # answers the cooker's, written earlier, in no case yet
        "y la cocina",
        NOW + timedelta(minutes=30),
        customer_id=rosa,
        follow_up_id=follow_up(session, "day1-thanks", "S-2").id,
    )
    session.add_all([washer_reply, earlier])
    assert _one_rule(session)[case.id] == washer
    session.execute(update(Message).where(Message.id == earlier.id).values(case_id=case.id))
    assert _one_rule(session)[case.id] == cooker  # the first answering message decides
    later = NOW + timedelta(hours=2)
    session.execute(update(Message).where(Message.id == earlier.id).values(created_at=later))
    assert _one_rule(session)[case.id] == washer
    session.execute(update(Message).where(Message.id == washer_reply.id).values(case_id=None))
    assert _one_rule(session)[case.id] == cooker
    session.execute(update(Message).where(Message.id == earlier.id).values(follow_up_id=None))
    assert _one_rule(session)[case.id] == cooker  # none answers: the latest purchase again
    session.execute(
        update(Message)
        .where(Message.id == washer_reply.id)
        .values(case_id=case.id, follow_up_id=follow_up(session, "day1-thanks", "S-1").id)
    )
    assert _one_rule(session)[case.id] == washer
    session.execute(delete(Message).where(Message.id == washer_reply.id))
    assert _one_rule(session)[case.id] == cooker

    # The latest purchase loses its product: none (not the washer before it).
    session.execute(update(Sale).where(Sale.id == cooker_sale.id).values(product_id=None))
    assert _one_rule(session)[case.id] is None
    session.execute(update(Sale).where(Sale.id == cooker_sale.id).values(sold_at=later))
    assert _one_rule(session)[case.id] == washer  # re-dated after the case opened
    session.execute(update(Sale).where(Sale.id == cooker_sale.id).values(product_id=cooker))
    session.execute(delete(Message).where(Message.id == earlier.id))

    # The cases themselves moved to another customer (one open case each), or moment.
    resolved = {"status": CaseStatus.RESOLVED, "resolved_at": NOW}
    session.execute(update(Case).where(Case.id == alone.id).values(**resolved))
    session.execute(update(Case).where(Case.id == case.id).values(customer_id=nobody.id))
    session.execute(update(Case).where(Case.id == alone.id).values(customer_id=rosa))
    assert _one_rule(session) == {case.id: None, alone.id: washer}
    session.execute(update(Case).where(Case.id == alone.id).values(opened_at=later))
    assert _one_rule(session) == {case.id: None, alone.id: cooker}

    # A reply of the first case answers Rosa's washer; moved to the other case, and back.
    washer_day1 = follow_up(session, "day1-thanks", "S-1").id
    moved = inbound_sms("lavadora", later, case_id=case.id, follow_up_id=washer_day1)
    session.add(moved)
    assert _one_rule(session) == {case.id: washer, alone.id: cooker}
    session.execute(update(Message).where(Message.id == moved.id).values(case_id=alone.id))
    assert _one_rule(session) == {case.id: None, alone.id: washer}
    session.execute(update(Message).where(Message.id == moved.id).values(case_id=case.id))

    # The sale it answers, Rosa's, changes product; its follow-up is moved to another sale.
    tv = _product(session, "TV-1")
    session.execute(update(Sale).where(Sale.external_id == "S-1").values(product_id=tv))
    assert _one_rule(session) == {case.id: tv, alone.id: cooker}
    session.execute(update(Sale).where(Sale.external_id == "S-1").values(product_id=washer))
    session.execute(
        delete(FollowUp).where(FollowUp.id == follow_up(session, "day1-thanks", "S-2").id)
    )
    session.execute(
        update(FollowUp).where(FollowUp.id == washer_day1).values(sale_id=cooker_sale.id)
    )
    assert _one_rule(session) == {case.id: cooker, alone.id: cooker}

    # The washer was bought by someone else; then it is gone.
    session.execute(update(Sale).where(Sale.external_id == "S-1").values(customer_id=nobody.id))
    session.execute(update(Case).where(Case.id == alone.id).values(opened_at=NOW))
    assert _one_rule(session) == {case.id: cooker, alone.id: None}
    session.execute(delete(Message).where(Message.id == moved.id))
    assert _one_rule(session) == {case.id: washer, alone.id: None}
    session.execute(delete(Sale).where(Sale.external_id == "S-1"))
    assert _one_rule(session) == {case.id: None, alone.id: None}


def test_the_worker_reads_again_the_cases_opened_lately(session: Session) -> None:
    """A kept product gone wrong (as a case and a sale written at once leave it): the open
    cases opened within RECHECKED are given theirs again; older ones are left alone."""
    rosa = _rosa_with_a_washer(session)
    pedro = _sale(session, "S-2", NOW - timedelta(days=10), phone=PEDRO, customer_name="Pedro")
    washer = _product(session, "LAV-9")
    fresh, old = _opened(rosa), _opened(pedro.customer_id, NOW - RECHECKED - timedelta(minutes=1))
    session.add_all([fresh, old])
    session.flush()
    session.execute(update(Case).values(product_id=None))
    assert recheck(session, now=NOW) == 1
    assert _kept(session) == {fresh.id: washer, old.id: None}
    assert recheck(session, now=NOW) == 0


def test_the_workers_job_reads_them_again_now(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input("S-1", sold_at=NOW - timedelta(days=1)))
    with sessions.begin() as session:
        rosa = session.scalars(select(Customer.id)).one()
        session.add(_opened(rosa))
        session.flush()
        session.execute(update(Case).values(product_id=None))
    worker = Worker(engine, LiveSettings.from_engine(engine, config))
    with freeze_time(NOW + RECHECKED):
        assert worker.recheck_case_products() == 1
    with sessions() as session:
        assert set(_one_rule(session).values()) == {_product(session, "LAV-9")}


def test_a_case_and_a_late_sale_written_at_once(pg_engine: Engine) -> None:
    """Two transactions: one opens Rosa's case, the other records a sale she made before;
    neither sees the other, and the case keeps her earlier purchase until the worker reads
    it again."""
    sessions = make_session_factory(pg_engine)
    with sessions.begin() as session:
        rosa = _rosa_with_a_washer(session)
    with pg_engine.connect() as opening, sessions() as recording:
        opening.execute(
            text(
                "INSERT INTO cases (customer_id, status, reason, opened_at, "
                "first_response_due_at, escalation_level, reopened_count) "
                "VALUES (:customer, 'open', 'objection', :at, :at, 0, 0)"
            ),
            {"customer": rosa, "at": NOW},
        )
        _sale(
            recording,
            "S-2",
            NOW - timedelta(days=1),
            product_sku="COC-1",
            product_name="Cocina",
        )
        recording.commit()
        opening.commit()
    with sessions.begin() as session:
        washer, cooker = _product(session, "LAV-9"), _product(session, "COC-1")
        assert set(_kept(session).values()) == {washer}  # each missed the other
        assert recheck(session, now=NOW) == 1
        assert set(_one_rule(session).values()) == {cooker}


def test_the_cases_already_there_are_given_their_product(blank: Engine) -> None:
    """The first release's cases: Rosa's answers a follow-up, Luis's is his latest purchase.
    Downgraded, the column and its triggers are gone and messages and sales are written as
    before; upgraded again, every case has its product as they are now."""
    first_release_shop(blank)
    schema.upgrade(blank, "0041")
    schema.upgrade(blank)
    sessions = make_session_factory(blank)
    with sessions() as session:
        kept = _one_rule(session)
        assert len(kept) == 2 and all(kept.values())
    alembic = alembic_config(blank)
    with blank.begin() as connection:
        alembic.attributes["connection"] = connection
        command.downgrade(alembic, "0041")
    with blank.begin() as connection:
        assert "product_id" not in {c["name"] for c in inspect(connection).get_columns("cases")}
        connection.execute(text("UPDATE messages SET case_id = NULL"))
        connection.execute(text("UPDATE sales SET product_id = NULL"))
    schema.upgrade(blank)
    with sessions() as session:
        assert set(_one_rule(session).values()) == {None}


def test_two_replies_joining_one_case_at_once(pg_engine: Engine) -> None:
    """PostgreSQL: one transaction puts Rosa's earlier reply (the cooker's) in her case, and
    another her later one (the washer's). The second waits for the case, then reads what the
    first committed: the earlier reply decides (had it read only what its statement saw, it
    would keep the washer's)."""
    sessions = make_session_factory(pg_engine)
    with sessions.begin() as session:
        rosa = _rosa_with_a_washer(session)
        _sale(session, "S-2", NOW - timedelta(days=9), product_sku="COC-1", product_name="Cocina")
        _sale(session, "S-3", NOW - timedelta(days=8), product_sku="TV-1", product_name="Tele")
        case = _opened(rosa)
        replies = [
            inbound_sms(
                words,
                NOW + timedelta(minutes=minutes),
                customer_id=rosa,
                follow_up_id=follow_up(session, "day1-thanks", sale).id,
            )
            for words, minutes, sale in (("la cocina", 10, "S-2"), ("la lavadora", 20, "S-1"))
        ]
        session.add_all([case, *replies])
        session.flush()
        case_id, (earlier, later) = case.id, (reply.id for reply in replies)

    def join(session: Session, reply: int) -> None:
        session.execute(update(Message).where(Message.id == reply).values(case_id=case_id))

    at_once(  # the case is the first's until it commits
        pg_engine,
        sessions,
        lambda session: join(session, earlier),
        lambda session: join(session, later),
        "the second reply (the case's row)",
    )
    with sessions() as session:
        assert _one_rule(session) == {case_id: _product(session, "COC-1")}


def test_a_late_sale_while_a_reply_joins_the_case(pg_engine: Engine) -> None:
    """PostgreSQL: one transaction puts Rosa's reply to the washer's follow-up in her case;
    another records a sale she made before the case opened. The sale's trigger waits for the
    case, then reads what the reply's committed: the reply decides (had it kept what its own
    statement saw, the case would be the late sale's cooker)."""
    sessions = make_session_factory(pg_engine)
    with sessions.begin() as session:
        rosa = _rosa_with_a_washer(session)
        case = _opened(rosa)
        reply = inbound_sms(
            "la lavadora", NOW, customer_id=rosa, follow_up_id=follow_up(session, "day1-thanks").id
        )
        session.add_all([case, reply])
        session.flush()
        case_id, reply_id = case.id, reply.id
    at_once(
        pg_engine,
        sessions,
        lambda session: session.execute(
            update(Message).where(Message.id == reply_id).values(case_id=case_id)
        ),
        lambda session: _sale(
            session, "S-2", NOW - timedelta(days=1), product_sku="COC-1", product_name="Cocina"
        ),
        "the late sale (the case's row)",
    )
    with sessions() as session:
        assert _one_rule(session) == {case_id: _product(session, "LAV-9")}

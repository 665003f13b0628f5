"""Each customer's latest send, kept by the database (`last_sends`, migration 0036): whatever
writes a follow-up (a dispatch pass, a status report, the ORM, a statement over many rows, plain
SQL, a deleted sale, two writers at once), it is the latest `sent_at` of the customer's
follow-ups sent or delivered, on SQLite and PostgreSQL; and the customers messaged in a
period, counted from it, are those counted one by one, whatever the period."""

from __future__ import annotations

import random
import threading
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.orm import Session

from scheduler import schema
from scheduler.config import Config, defaults
from scheduler.db import make_session_factory
from scheduler.figures.period import Period
from scheduler.figures.summary import RECENT, SENT, messaged
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import FollowUp, LastSend, Message, Sale
from scheduler.sending.sales import SaleInput
from tests.dispatching import Clock, dispatcher, replace_by_hand, setup_sales
from tests.factories import NOW, sale_input
from tests.first_release import first_release_shop
from tests.migrating import blank  # noqa: F401 - fixture

__all__ = ["blank"]
S = FollowUpStatus
LIMA = defaults().business.tz


def truth(session: Session) -> dict[int, datetime]:
    """Each customer's latest send, read from their follow-ups."""
    rows = session.execute(
        select(FollowUp.customer_id, func.max(FollowUp.sent_at))
        .where(FollowUp.status.in_(SENT), FollowUp.sent_at.is_not(None))
        .group_by(FollowUp.customer_id)
    )
    return {customer: at for customer, at in rows if at is not None}


def kept(session: Session) -> dict[int, datetime]:
    session.flush()
    return {
        customer: at
        for customer, at in session.execute(select(LastSend.customer_id, LastSend.sent_at))
    }


def buyers(count: int) -> list[SaleInput]:
    return [sale_input(f"S-{n}", phone=f"+5198700{n:04d}") for n in range(count)]


def test_the_latest_send_follows_every_kind_of_write(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, *buyers(4))
    clock = Clock(NOW + timedelta(days=1))
    assert dispatcher(sessions, config, clock).run_pass()["sent"] == 4
    with sessions.begin() as session:
        assert len(kept(session)) == 4 and kept(session) == truth(session)
        sent = session.scalars(select(FollowUp).where(FollowUp.status == S.SENT)).all()
        sent[0].move_to(S.DELIVERED, None, clock.now)  # a status report: nothing moves
        sent[1].move_to(S.FAILED, "undelivered", clock.now)  # their only send: none left
        assert kept(session) == truth(session) and sent[1].customer_id not in kept(session)
        sent[2].sent_at = (sent[2].sent_at or NOW) - timedelta(hours=5)  # re-dated back
        assert kept(session) == truth(session)
        later = session.scalars(  # one of sent[3]'s customer's, sent by hand a week on
            select(FollowUp).where(
                FollowUp.customer_id == sent[3].customer_id, FollowUp.status == S.SCHEDULED
            )
        ).first()
        assert later is not None
        later.status, later.sent_at = S.SENT, clock.now + timedelta(days=7)
        assert kept(session)[sent[3].customer_id] == clock.now + timedelta(days=7)
        later.customer_id = sent[0].customer_id  # moved to another customer (a merge)
        assert kept(session) == truth(session)
        assert kept(session)[sent[0].customer_id] == clock.now + timedelta(days=7)
        session.execute(  # one statement, many rows: every follow-up sent a day on
            update(FollowUp)
            .where(FollowUp.status == S.SCHEDULED)
            .values(status=S.SENT, sent_at=clock.now + timedelta(days=1))
        )
        assert kept(session) == truth(session) and len(kept(session)) == 4
        session.execute(
            text("UPDATE follow_ups SET status = 'failed' WHERE sent_at = :at"),
            {"at": (clock.now + timedelta(days=1)).replace(tzinfo=None)}
            if engine.dialect.name == "sqlite"
            else {"at": clock.now + timedelta(days=1)},
        )
        assert kept(session) == truth(session)
        session.execute(delete(Message))  # what went out, so that the rows may go
        session.execute(delete(Sale).where(Sale.external_id == "S-0"))  # its follow-ups go
        assert kept(session) == truth(session)
        session.execute(delete(FollowUp).where(FollowUp.customer_id == sent[0].customer_id))
        assert kept(session) == truth(session) and sent[0].customer_id not in kept(session)
    if engine.dialect.name == "postgresql":
        with sessions.begin() as session:
            session.execute(text("TRUNCATE sales CASCADE"))
            assert not truth(session) and not kept(session)


def test_writes_by_hand_are_followed_too(engine: Engine, config: Config) -> None:
    """SQLite's INSERT OR REPLACE (the replaced row's delete trigger fires), PostgreSQL's
    upsert, a follow-up written already sent, and one of another customer's whose time is
    the same."""
    sessions = setup_sales(engine, config, *buyers(2))
    assert dispatcher(sessions, config, Clock(NOW + timedelta(days=1))).run_pass()["sent"] == 2
    with sessions.begin() as session:
        replace_by_hand(session, "status = 'sent'", status="'cancelled'")
        assert not kept(session) and not truth(session)
        waiting = session.scalars(select(FollowUp).where(FollowUp.status == S.SCHEDULED)).all()
        twin = FollowUp(
            sale_id=waiting[0].sale_id,
            product_id=waiting[0].product_id,
            step_id=waiting[0].step_id,
            customer_id=waiting[1].customer_id,
            channel=waiting[0].channel,
            due_at=NOW,
            status=S.SENT,
            sent_at=NOW,
            case_id=None,
            created_at=NOW,
            updated_at=NOW,
        )
        session.execute(delete(FollowUp).where(FollowUp.id == waiting[0].id))
        session.add(twin)
        assert kept(session) == truth(session) == {waiting[1].customer_id: NOW}


def test_the_latest_sends_are_filled_from_the_follow_ups_already_there(blank: Engine) -> None:
    """A shop's follow-ups from before migration 0036 (the first release's, sent, failed,
    cancelled and scheduled) give each customer their latest send."""
    shop = first_release_shop(blank)
    schema.upgrade(blank, "0035")
    schema.upgrade(blank)
    with make_session_factory(blank)() as session:
        assert truth(session), "the first release's shop has sent follow-ups"
        assert kept(session) == truth(session)
        assert set(kept(session)) < set(shop.rows["customers"])  # not every customer's


def test_senders_and_reporters_at_once_leave_the_truth(pg_engine: Engine) -> None:
    """PostgreSQL, where writers do not wait for each other unless a row says so: four
    threads send, fail, re-date and deliver follow-ups of the same three customers, each
    in its own transaction and in any order; at the end each latest send is the truth."""
    config = defaults()
    sessions = setup_sales(pg_engine, config, *buyers(3))
    with sessions() as session:
        ids = session.scalars(select(FollowUp.id)).all()
    failures: list[BaseException] = []

    def writing(seed: int) -> None:
        chance = random.Random(seed)  # noqa: S311 - an order of writes, not a secret
        try:
            for n in range(60):
                some = chance.sample(ids, 3)
                at = NOW + timedelta(minutes=chance.randrange(10_000))
                status = chance.choice([S.SENT, S.DELIVERED, S.FAILED, S.SCHEDULED])
                with sessions.begin() as session:  # its follow-ups taken in order, as
                    # a claim takes them: only the latest sends' rows could make a circle
                    taken = some[: 1 + n % 3]
                    session.execute(
                        select(FollowUp.id)
                        .where(FollowUp.id.in_(taken))
                        .order_by(FollowUp.id)
                        .with_for_update()
                    )
                    session.execute(
                        update(FollowUp)
                        .where(FollowUp.id.in_(taken))
                        .values(status=status, sent_at=at)
                    )
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)

    threads = [threading.Thread(target=writing, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with sessions() as session:
        assert truth(session) and kept(session) == truth(session)


def _one_by_one(session: Session, period: Period) -> int:
    return len(
        {
            customer
            for customer, at, status in session.execute(
                select(FollowUp.customer_id, FollowUp.sent_at, FollowUp.status)
            )
            if status in SENT and at is not None and period.start <= at < period.end
        }
    )


def test_customers_messaged_in_any_period_are_counted_as_one_by_one(
    session: Session, config: Config
) -> None:
    """Sends spread over a month and a half to a dozen customers, some several times: every
    period from the month before to days after now, ending before, at and after the sends,
    counts those counted one by one, whether the latest sends or every send are read."""
    chance = random.Random(36)  # noqa: S311 - made-up sends, not a secret
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    sessions = setup_sales(engine, config, *buyers(12))
    with sessions.begin() as writing:
        for follow_up in writing.scalars(select(FollowUp)):
            if chance.random() < 0.7:
                follow_up.status = chance.choice([S.SENT, S.DELIVERED, S.FAILED])
                follow_up.sent_at = NOW - timedelta(minutes=chance.randrange(45 * 24 * 60))
    session.expire_all()
    assert (session.scalar(select(func.count()).select_from(LastSend)) or 0) > 6
    today = NOW.astimezone(LIMA).date()
    periods = [
        Period(today - timedelta(days=back + length - 1), today - timedelta(days=back), LIMA)
        for back in (-3, 0, 1, 2, 6, 7, 8, 12, 30)
        for length in (1, 2, 7, 30)
    ]
    for now in (NOW, NOW + timedelta(days=2)):
        counted = {
            (period.first, period.last): messaged(session, period, now=now) for period in periods
        }
        expected = {(period.first, period.last): _one_by_one(session, period) for period in periods}
        assert counted == expected
    assert any(period.end < NOW - RECENT for period in periods)  # both ways were read
    assert len(set(expected.values())) > 4
    assert max(expected.values()) > 0


def test_the_count_reads_the_latest_sends_for_these_days(session: Session, config: Config) -> None:
    """A period to this day is counted from the latest sends, not from every send: with the
    latest sends emptied by hand (the triggers bypassed), the count says so."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    sessions = setup_sales(engine, config, *buyers(3))
    assert dispatcher(sessions, config, Clock(NOW + timedelta(days=1))).run_pass()["sent"] == 3
    recent = Period(date(2026, 11, 1), (NOW + timedelta(days=1)).astimezone(LIMA).date(), LIMA)
    later = NOW + timedelta(days=2)
    assert messaged(session, recent, now=later) == _one_by_one(session, recent) == 3
    session.execute(delete(LastSend))
    assert messaged(session, recent, now=later) == 0
    long_after = later + timedelta(days=30)  # the same period, long ended: every send read
    assert messaged(session, recent, now=long_after) == 3

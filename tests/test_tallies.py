"""The follow-ups' tallies that the database keeps (migration 0022): whatever writes a follow-up
(planning, a dispatch pass, the ORM, a statement over many rows, plain SQL, a cascade from a
deleted sale), the tallies sum to the follow-ups themselves, before and after folding, on
SQLite and PostgreSQL; the counts of a period read from them are those counted one by one,
whatever the business's time zone does to its midnights."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import schema
from scheduler.config import Config, defaults
from scheduler.db import make_session_factory
from scheduler.figures.period import Period
from scheduler.figures.scope import EVERYTHING, Scope
from scheduler.figures.summary import REPLY_WINDOW
from scheduler.figures.tallies import (
    IN_TIME,
    compact,
    counted,
    split,
    tallied_now,
)
from scheduler.lifecycle import PENDING, Channel, Direction, FollowUpStatus
from scheduler.models import (
    Cadence,
    CadenceStep,
    Customer,
    FollowUp,
    FollowUpTalliesWriter,
    FollowUpTally,
    Message,
    Product,
    Sale,
)
from scheduler.schema import alembic_config
from scheduler.sending.planning import plan_sales, to_plan
from scheduler.sending.sales import record_sale, record_sales
from tests.dispatching import Clock, dispatcher, replace_by_hand, setup_sales
from tests.factories import NOW, inbound_sms, sale_input
from tests.first_release import first_release_shop
from tests.migrating import blank  # noqa: F401 - fixture
from tests.racing import at_once
from tests.tallied import agreed, kept_replied, one_by_one, sales, sent_three, tallied

__all__ = ["blank"]
S = FollowUpStatus


def test_the_tallies_follow_every_kind_of_write(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, *sales(6))
    with sessions() as session:
        planned = one_by_one(session)
        assert sum(planned.values()) == 24 and tallied(session) == planned
    clock = Clock(NOW + timedelta(days=1))
    assert dispatcher(sessions, config, clock).run_pass()["sent"] == 6
    with sessions.begin() as session:
        assert tallied(session) == one_by_one(session)
        first = session.scalars(select(FollowUp).where(FollowUp.status == S.SENT)).first()
        assert first is not None
        first.move_to(S.DELIVERED, None, clock.now)  # the ORM, one row
        later = session.scalars(select(FollowUp).where(FollowUp.status == S.SCHEDULED)).first()
        assert later is not None
        later.due_at += timedelta(days=3, hours=7)  # another UTC day
        session.flush()
        assert tallied(session) == one_by_one(session)
        session.execute(  # one statement, many rows; one of them not a tallied column
            update(FollowUp)
            .where(FollowUp.status == S.SCHEDULED, FollowUp.id != later.id)
            .values(status=S.CANCELLED, status_reason="customer asked")
        )
        session.execute(update(FollowUp).values(attempts=FollowUp.attempts + 1))
        session.execute(text("UPDATE follow_ups SET channel = 'email' WHERE id = :id"), {"id": 1})
        assert tallied(session) == one_by_one(session)
        oven = sale_input("S-9", product_sku="HOR-1", product_name="Horno")
        record_sale(session, oven, config=config, now=clock.now, actor="test")
        assert sum(one_by_one(session).values()) == 28
        assert tallied(session) == one_by_one(session)
        oven_id = session.scalar(select(Sale.product_id).where(Sale.external_id == "S-9"))
        session.execute(update(Sale).where(Sale.external_id == "S-0").values(product_id=oven_id))
        session.execute(text("UPDATE sales SET product_id = NULL WHERE external_id = 'S-1'"))
        assert tallied(session) == one_by_one(session)  # the follow-ups moved with their sales
        alike = FollowUp.product_id.is_not_distinct_from(Sale.product_id)
        kept = select(func.count()).select_from(FollowUp).join(Sale).where(alike)
        assert session.scalar(kept) == 28
        session.execute(delete(Sale).where(Sale.external_id == "S-9"))  # cascades
        assert sum(one_by_one(session).values()) == 24
        assert tallied(session) == one_by_one(session)
    with sessions.begin() as session:
        before = session.scalar(select(func.count()).select_from(FollowUpTally))
        assert compact(session) > 0
        keys = session.execute(
            select(func.count(), func.min(FollowUpTally.n)).select_from(FollowUpTally)
        ).one()
        assert keys[0] == len(one_by_one(session)) < (before or 0)  # a row per key
        assert keys[1] > 0  # none that came to nothing
        assert tallied(session) == one_by_one(session)
        assert compact(session) == 0  # nothing more to fold
        pending = select(func.count()).where(FollowUp.status.in_(PENDING))
        assert session.scalar(tallied_now(PENDING)) == session.scalar(pending) == 1


def test_writes_by_hand_are_tallied_too(engine: Engine, config: Config) -> None:
    """What a person might type at the database's prompt: SQLite's INSERT OR REPLACE (the
    replaced row's delete trigger fires), PostgreSQL's upsert, an UPDATE with no search path
    (the trigger names its own schema), TRUNCATE ... CASCADE (the tallies go with the rows)."""
    sessions = setup_sales(engine, config, *sales(2))
    with sessions.begin() as session:
        replace_by_hand(session, "id = 1", channel="'email'", status="'cancelled'")
        assert session.scalar(select(FollowUp.status).where(FollowUp.id == 1)) == S.CANCELLED
        assert tallied(session) == one_by_one(session)
        if engine.dialect.name == "postgresql":
            schema_name = session.scalar(text("SELECT current_schema()"))
            session.execute(text("SET LOCAL search_path = ''"))
            session.execute(text(f"UPDATE {schema_name}.follow_ups SET status = 'skipped'"))
            session.execute(text(f"SET LOCAL search_path = {schema_name}"))
            assert tallied(session) == one_by_one(session)
            session.execute(text("TRUNCATE sales CASCADE"))
            assert not one_by_one(session) and not tallied(session)


def test_a_batch_planned_is_tallied_a_row_per_kind(engine: Engine, config: Config) -> None:
    """On SQLite planning writes its follow-ups' tallies counted, a row per kind, while
    `follow_up_tallies_writer` holds a row (migration 0034: the insert trigger leaves them);
    PostgreSQL's trigger counts them. The writer's table is empty afterwards, even after an
    insert that failed, and every other writer's follow-ups are tallied by the trigger."""
    sessions = setup_sales(engine, config)
    batch = [
        sale_input(f"B-{n}", phone=f"+5198711{n:04d}", sold_at=NOW - timedelta(hours=9 * n))
        for n in range(40)
    ]
    batch += [sale_input("B-E", phone=None, email="ana@example.pe", product_sku=None)]
    writing = select(func.count()).select_from(FollowUpTalliesWriter)
    with sessions.begin() as session:
        record_sales(session, batch, config=config, now=NOW, actor="test")
        kinds = tallied(session)
        assert kinds == one_by_one(session) and sum(kinds.values()) > len(kinds) > 8
        if engine.dialect.name == "sqlite":
            assert session.scalar(select(func.count()).select_from(FollowUpTally)) == len(kinds)
        assert session.scalar(writing) == 0
        sale = session.scalars(select(Sale).where(Sale.external_id == "B-1")).one()
        again = [to_plan(sale.id, sale.sold_at, sale.product, sale.customer)]
        # Planned already. SQLite goes on after a statement that failed; PostgreSQL, from a
        # savepoint.
        failed = session.begin_nested() if engine.dialect.name == "postgresql" else nullcontext()
        with pytest.raises(IntegrityError), failed:
            plan_sales(session, again, config, NOW)
        assert session.scalar(writing) == 0
        steps = list(session.scalars(select(CadenceStep.id)))
        random_follow_ups(session, random.Random(7), steps, [None, sale.product_id], 30)
        assert tallied(session) == one_by_one(session)


def random_follow_ups(
    session: Session, rng: random.Random, steps: list[int], products: list[int | None], count: int
) -> None:
    """`count` follow-ups due at random minutes of 26 days from 30 October (UTC), of random
    steps, channels and statuses, each of a sale of its own (of one of `products`), sent up to
    10 hours after due; written without their product, which the database fills in."""
    customer = Customer(name="Rosa", phone="+51987654321", created_at=NOW)
    session.add(customer)
    session.flush()
    session.execute(
        insert(Sale),
        [
            {
                "external_id": f"R-{n}",
                "customer_id": customer.id,
                "product_id": rng.choice(products),
                "sold_at": NOW,
                "created_at": NOW,
            }
            for n in range(count)
        ],
    )
    base = datetime(2026, 10, 30, tzinfo=UTC)
    rows = []
    for sale in session.scalars(select(Sale.id).where(Sale.external_id.like("R-%"))):
        due = base + timedelta(minutes=rng.randrange(60 * 24 * 26))
        status = rng.choice([S.SCHEDULED, S.SENT, S.DELIVERED, S.SKIPPED, S.FAILED])
        sent = due + timedelta(minutes=rng.randrange(600))
        rows.append(
            {
                "sale_id": sale,
                "step_id": rng.choice(steps),
                "customer_id": customer.id,
                "channel": rng.choice([Channel.SMS, Channel.EMAIL]),
                "due_at": due,
                "sent_at": sent if status in (S.SENT, S.DELIVERED, S.FAILED) else None,
                "status": status,
                "created_at": base,
                "updated_at": base,
            }
        )
    session.execute(insert(FollowUp), rows)


def test_a_period_from_the_tallies_is_counted_as_one_by_one(session: Session) -> None:
    """Follow-ups at random moments over 26 days; periods of random days in zones whose
    midnight is not UTC's (Lima -5, Kathmandu +5:45, Chatham +13:45 in summer) and in UTC:
    every count by status and channel, and by step of those sent, of all cadences or one, of
    one product or both, is the one counted from the rows, whether the tallies are folded or
    fresh."""
    rng = random.Random(15)
    cadences = [Cadence(name=name, created_at=NOW, updated_at=NOW) for name in ("A", "B")]
    session.add_all(cadences)
    session.flush()
    steps = [
        CadenceStep(
            cadence_id=cadence.id,
            key=f"k{n}",
            offset_minutes=n,
            channel=Channel.SMS,
            template_name="thanks",
        )
        for cadence in cadences
        for n in range(2)
    ]
    session.add_all(steps)
    session.flush()
    products = [Product(sku=sku, name=sku) for sku in ("LAV-9", "COC-1")]
    session.add_all(products)
    session.flush()
    ids = [product.id for product in products]
    random_follow_ups(session, rng, [step.id for step in steps], [*ids, None], 300)
    compact(session)  # a folded past and fresh rows after it, as the worker leaves them
    session.execute(update(FollowUp).where(FollowUp.id % 7 == 0).values(status=S.FAILED))
    of_a = {step.id for step in steps if step.cadence_id == cadences[0].id}
    every = session.scalars(select(FollowUp)).all()
    product_of = {
        sale: product for sale, product in session.execute(select(Sale.id, Sale.product_id))
    }
    periods = 0
    for zone in ("America/Lima", "Asia/Kathmandu", "Pacific/Chatham", "UTC"):
        for _ in range(6):
            first = date(2026, 10, 29) + timedelta(days=rng.randrange(28))
            period = Period(first, first + timedelta(days=rng.randrange(6)), ZoneInfo(zone))
            periods += split(period).first < split(period).end  # has whole UTC days
            for scope, rows in (
                (EVERYTHING, every),
                (Scope(cadence_id=cadences[0].id), [r for r in every if r.step_id in of_a]),
                (Scope(product_id=ids[0]), [r for r in every if product_of[r.sale_id] == ids[0]]),
                (
                    Scope(cadences[0].id, ids[1]),
                    [r for r in every if r.step_id in of_a and product_of[r.sale_id] == ids[1]],
                ),
            ):
                due = [r for r in rows if period.start <= r.due_at < period.end]
                assert counted(session, period, scope, when="due", by=("status", "channel")) == (
                    Counter((str(r.status), str(r.channel)) for r in due)
                )
                sent = [
                    r
                    for r in rows
                    if r.sent_at and period.start <= r.sent_at < period.end and r.status == S.SENT
                ]
                assert counted(
                    session, period, scope, when="sent", by=("step_id",), statuses=[S.SENT]
                ) == Counter((r.step_id,) for r in sent)
    assert periods > 12  # most of them read the tallies, not only the edges


def test_the_tallies_are_filled_from_the_follow_ups_already_there(blank: Engine) -> None:
    """A shop's follow-ups from before the tallies (sent, failed, cancelled, scheduled: the
    first release's, written as that schema had them) are counted by migration 0022."""
    shop = first_release_shop(blank)
    schema.upgrade(blank, "0021")
    schema.upgrade(blank)
    with make_session_factory(blank)() as session:
        assert sum(one_by_one(session).values()) == len(shop.rows["follow_ups"])
        assert len(set(one_by_one(session))) > 3  # several statuses, days and steps
        assert tallied(session) == one_by_one(session)


def test_replied_follows_every_kind_of_write_to_the_replies(engine: Engine, config: Config) -> None:
    (first, second, third), sessions = sent_three(engine, config)
    day1 = NOW + timedelta(days=1)
    with sessions.begin() as session:
        early = inbound_sms("gracias", day1 + timedelta(days=2), follow_up_id=first)
        session.add(early)
        agreed(session)
        assert kept_replied(session)[first] == IN_TIME
        session.add(inbound_sms("otra vez", day1 + timedelta(days=9), follow_up_id=first))
        late = inbound_sms("tarde", day1 + timedelta(days=9), follow_up_id=second)
        session.add(late)
        agreed(session)
        assert kept_replied(session)[second] == "late"
        early.follow_up_id = second  # moved by a person to the follow-up it answers
        agreed(session)
        assert (kept_replied(session)[first], kept_replied(session)[second]) == ("late", IN_TIME)
        late.created_at -= timedelta(days=30)  # re-dated: before the sending
        session.execute(  # the sending re-dated by hand: the early reply is now late
            update(FollowUp).where(FollowUp.id == second).values(sent_at=day1 + timedelta(days=5))
        )
        agreed(session)
        assert kept_replied(session)[second] == "late"
        session.execute(update(FollowUp).values(replied="in_time"))  # nonsense typed by hand
        agreed(session)
        session.execute(  # an outbound message's status: nothing to do with replies
            update(Message).where(Message.direction == Direction.OUTBOUND).values(status="read")
        )
        session.delete(early)
        agreed(session)
        session.execute(delete(Message).where(Message.follow_up_id == first))
        agreed(session)
        assert kept_replied(session)[first] is None and kept_replied(session)[third] is None
        session.add(inbound_sms("hola", day1 + timedelta(hours=1), follow_up_id=third))
        agreed(session)
        if engine.dialect.name == "postgresql":
            # CASCADE: the copy of what went out (migration 0041) refers to the messages.
            session.execute(text("TRUNCATE messages CASCADE"))
            agreed(session)
            assert set(kept_replied(session).values()) == {None}


def test_a_reply_before_the_send_was_recorded_is_read_again_when_it_is(
    engine: Engine, config: Config
) -> None:
    """A reply can answer a message whose sending is not recorded yet (the worker died after
    the hand-over; the lookup records it later). Its follow-up's `replied` says `late` until
    then, and is read again once the sending time is known; a follow-up without replies,
    sent, has none (migration 0039 reads them only where there are some)."""
    sessions = setup_sales(engine, config, *sales(2))
    with sessions.begin() as session:
        waiting, other = session.scalars(
            select(FollowUp.id).where(FollowUp.status == S.SCHEDULED).order_by(FollowUp.id)
        ).all()[:2]
        day1 = NOW + timedelta(days=1)
        session.add(inbound_sms("¿y esto?", day1 + timedelta(hours=2), follow_up_id=waiting))
        agreed(session)
        assert kept_replied(session)[waiting] == "late"  # no sending time: not within 7 days
        session.execute(
            update(FollowUp)
            .where(FollowUp.id.in_([waiting, other]))
            .values(status=S.SENT, sent_at=day1, lease_owner=None)
        )
        agreed(session)
        assert kept_replied(session)[waiting] == IN_TIME and kept_replied(session)[other] is None
        session.execute(  # the sending re-dated again: a reply 2 hours before it is late
            update(FollowUp).where(FollowUp.id == waiting).values(sent_at=day1 + timedelta(hours=4))
        )
        agreed(session)
        assert kept_replied(session)[waiting] == "late"


def test_replied_is_filled_from_the_replies_there_and_taken_back(blank: Engine) -> None:
    """Down to the tallies without `replied` and up again: the replies already there fill it
    and the tallies are counted anew, on both databases."""
    config = defaults()
    schema.upgrade(blank)
    (first, second, _third), sessions = sent_three(blank, config)
    day1 = NOW + timedelta(days=1)
    with sessions.begin() as session:
        session.add(inbound_sms("gracias", day1 + timedelta(days=1), follow_up_id=first))
        session.add(inbound_sms("tarde", day1 + timedelta(days=8), follow_up_id=second))
    alembic = alembic_config(blank)
    with blank.begin() as connection:
        alembic.attributes["connection"] = connection
        command.downgrade(alembic, "0022")  # without kept themes, nor replied
    with blank.connect() as connection:
        columns = "due_day, sent_day, step_id, channel, status"
        kept = connection.execute(
            text(f"SELECT {columns}, sum(n) FROM follow_up_tallies GROUP BY {columns}")
        )
        assert sum(row[-1] for row in kept) == 12
    schema.upgrade(blank)
    with sessions() as session:
        assert kept_replied(session)[first] == IN_TIME and kept_replied(session)[second] == "late"
        agreed(session)


def test_writers_and_folders_at_once_lose_nothing(pg_engine: Engine) -> None:
    """PostgreSQL, where writers do not wait for each other: two threads fold the tallies
    over and over while two others plan sales and cancel follow-ups; at the end the tallies
    are the follow-ups'."""
    config = defaults()
    sessions = setup_sales(pg_engine, config)
    stop = threading.Event()
    failures: list[BaseException] = []

    def folding() -> None:
        while not stop.is_set():
            with sessions.begin() as session:
                compact(session)

    def writing(thread: int) -> None:
        for n in range(15):
            with sessions.begin() as session:
                sale, _new = record_sale(
                    session,
                    sale_input(f"W-{thread}-{n}", phone=f"+519870{thread}{n:04d}"),
                    config=config,
                    now=NOW,
                    actor="test",
                )
            with sessions.begin() as session:  # half of them cancelled, in one statement
                session.execute(
                    update(FollowUp)
                    .where(FollowUp.sale_id == sale.id, FollowUp.id % 2 == 0)
                    .values(status=S.CANCELLED)
                )

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # noqa: BLE001 - reported by the test below
                failures.append(error)

        return run

    folders = [threading.Thread(target=guarded(folding)) for _ in range(2)]
    writers = [threading.Thread(target=guarded(partial(writing, n))) for n in (1, 2)]
    for thread in folders + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in folders:
        thread.join()
    assert failures == []
    with sessions() as session:
        assert sum(one_by_one(session).values()) == 2 * 15 * 4
        assert tallied(session) == one_by_one(session)


Write = tuple[str, str, int]  # "add" or "remove", the reply's words, days after the sending


@pytest.mark.parametrize(
    ("there", "first", "second", "expected"),
    [
        ([], ("add", "gracias", 1), ("add", "tarde", 9), IN_TIME),
        ([("gracias", 1), ("tarde", 9)], ("remove", "gracias", 1), ("remove", "tarde", 9), None),
        ([("tarde", 9)], ("remove", "tarde", 9), ("add", "otra", 10), "late"),
    ],
    ids=["two-added", "two-removed", "one-removed-one-added"],
)
def test_replies_to_one_follow_up_written_at_once_leave_the_whole_truth(
    pg_engine: Engine,
    there: list[tuple[str, int]],
    first: Write,
    second: Write,
    expected: str | None,
) -> None:
    """PostgreSQL: two transactions change the replies of one follow-up at once. The second
    waits for the follow-up's row, whatever the value it would write; once it has it, it
    reads what the first committed (had it read only what its statement saw, or not waited
    because its own view left the value as it was, the follow-up would say the wrong thing)."""
    (follow_up, _second, _third), sessions = sent_three(pg_engine, defaults())
    day1 = NOW + timedelta(days=1)
    with sessions.begin() as session:
        for words, days in there:
            session.add(inbound_sms(words, day1 + timedelta(days=days), follow_up_id=follow_up))

    def write(session: Session, change: Write) -> None:
        verb, words, days = change
        if verb == "add":
            session.add(inbound_sms(words, day1 + timedelta(days=days), follow_up_id=follow_up))
        else:
            session.execute(delete(Message).where(Message.body == words))
        session.flush()

    at_once(  # the follow-up's row is the first's until it commits
        pg_engine,
        sessions,
        lambda session: write(session, first),
        lambda session: write(session, second),
        "the second writer (the follow-up's row)",
    )
    with sessions() as session:
        assert kept_replied(session)[follow_up] == expected
        agreed(session)


@pytest.mark.parametrize(
    ("sent_at", "after", "expected"),
    [
        (datetime(2026, 11, 24, 15, 0, tzinfo=UTC), REPLY_WINDOW, IN_TIME),
        (
            datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
            REPLY_WINDOW + timedelta(microseconds=1),
            "late",
        ),
        (datetime(2026, 11, 24, 15, 0, 0, 123600, UTC), REPLY_WINDOW, IN_TIME),
        (
            datetime(2026, 11, 24, 15, 0, 0, 123600, UTC),
            REPLY_WINDOW + timedelta(microseconds=300),
            "late",
        ),
        (datetime(2026, 11, 24, 23, 59, 59, 999600, UTC), REPLY_WINDOW, IN_TIME),
        (
            datetime(2026, 11, 24, 23, 59, 59, 999600, UTC),
            REPLY_WINDOW + timedelta(microseconds=500),
            "late",
        ),
        (datetime(2026, 11, 24, 15, 0, tzinfo=UTC), timedelta(microseconds=-1), "late"),
    ],
)
def test_the_seven_days_end_to_the_microsecond(
    engine: Engine, config: Config, sent_at: datetime, after: timedelta, expected: str
) -> None:
    """On SQLite too, where times are text: the last microsecond of the 7 days is in them,
    the next one is not (a limit rounded to the millisecond judged both wrongly)."""
    (follow_up, _second, _third), sessions = sent_three(engine, config)
    with sessions.begin() as session:
        session.execute(update(FollowUp).where(FollowUp.id == follow_up).values(sent_at=sent_at))
        session.add(inbound_sms("gracias", sent_at + after, follow_up_id=follow_up))
        session.flush()
        assert kept_replied(session)[follow_up] == expected
        agreed(session)

"""The owner's dashboard on a year of a busy shop: 1 000 000 follow-ups, 200 000 messages and
20 000 cases on PostgreSQL (a temporary database on 127.0.0.1:5432).

The rows are made up in Python over 365 days before NOW and loaded in bulk (COPY on
PostgreSQL, executemany on SQLite): 200 000 sales of 50 000 customers (a third buy again) with
five follow-ups each (sent, delivered, failed, skipped or still scheduled), replies and ratings
to a fifth of them, complaints worded as customers word them, cases (a few hundred open, some
reopened), remedies, bounced addresses; --follow-ups N scales them all.
Then the front page is asked for by a logged-in owner through the Flask app, as a browser
would, for 7, 30 and 90 days and for one product, several times each: the median time of the
whole page (every figure, the customers at risk, the themes of complaints) and of each part.

    .venv/bin/python bench/dashboard.py            # the sizes above, PostgreSQL
    .venv/bin/python bench/dashboard.py --quick    # a tenth of them
    .venv/bin/python bench/dashboard.py --follow-ups 2000000  # twice them all
    .venv/bin/python bench/dashboard.py --sqlite   # also SQLite, same rows
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

from common import (
    OWNER,
    OWNER_PASSWORD,
    add_size_options,
    median_seconds,
    owner_browser,
    sales_trigger_off,
    shop_scale,
    temporary_postgres,
)
from pass_cost import bulk as executemany
from sqlalchemy import Connection, Engine, func, select, text

from scheduler.accounts import hash_password
from scheduler.config import defaults
from scheduler.db import make_engine, make_session_factory, refresh_statistics
from scheduler.defaults import install_defaults
from scheduler.figures import first_answers
from scheduler.figures.at_risk import at_risk
from scheduler.figures.complaints import complaint_themes
from scheduler.figures.period import period_from
from scheduler.figures.summary import figures
from scheduler.figures.tallies import compact
from scheduler.lifecycle import Channel, Direction, FollowUpStatus, Role, SaleStatus
from scheduler.listening.themes import BUILT_IN, stored, themes_of, vocabulary
from scheduler.models import (
    AuditEntry,
    Base,
    CadenceStep,
    Case,
    Customer,
    FollowUp,
    Message,
    Product,
    Remedy,
    Sale,
    User,
)
from scheduler.schema import upgrade

# The year ends now: the app reads the real clock (a frozen one would stop the stopwatch too).
NOW = datetime.now(UTC).replace(microsecond=0)
TARGET = 0.300  # seconds for the whole page
RUNS = 7
DAYS = 365
STEPS = 5
COMPLAINTS = (
    "el repartidor llegó tarde y la caja vino rota",
    "me cobraron dos veces, quiero mi reembolso",
    "la vendedora fue muy grosera",
    "llevo una semana esperando y nadie responde",
    "no funciona desde el primer día",
    "la talla no es la que pedí",
    "2",
    "pésimo servicio",
)
PRAISE = ("todo perfecto, gracias", "10", "muy bien, llegó rápido", "9 excelente")
# Each follow-up's `replied` (migration 0024), all at once.
FILL_REPLIED = (
    "UPDATE follow_ups SET replied = follow_up_replied(id, sent_at) "
    "WHERE id IN (SELECT follow_up_id FROM messages WHERE direction = 'inbound')"
)
# Each follow-up's `objected` (migration 0043), all at once.
FILL_OBJECTED = (
    "UPDATE follow_ups SET objected = follow_up_objected(id) WHERE id IN "
    "(SELECT follow_up_id FROM messages WHERE direction = 'inbound' AND label = 'objection')"
)
FILL_PRODUCT = (
    "UPDATE messages SET product_id = follow_ups.product_id FROM follow_ups "
    "WHERE follow_ups.id = messages.follow_up_id AND messages.direction = 'inbound'"
)


def load(engine: Engine, scale: float) -> dict[str, int]:
    """The year of rows; returns how many of each."""
    rng = random.Random(15)
    n_customers, n_sales = int(50_000 * scale), int(200_000 * scale)
    n_cases = int(20_000 * scale)
    sessions = make_session_factory(engine, writer=True)
    upgrade(engine)
    with sessions.begin() as session:
        install_defaults(session, NOW)
        products = [Product(sku=f"SKU-{n}", name=f"Producto {n}") for n in range(20)]
        session.add_all(products)
        session.flush()
        product_ids = [product.id for product in products]
        steps = list(session.scalars(select(CadenceStep.id).order_by(CadenceStep.id)))[:STEPS]
    start = NOW - timedelta(days=DAYS)

    def moment(rng_offset: float) -> Any:
        return start + timedelta(seconds=rng_offset * DAYS * 86_400)

    bulk(
        engine,
        Customer,
        (
            {
                "name": f"Cliente {n}",
                "phone": f"+5199{n:07d}",
                "email": f"c{n}@example.pe",
                "email_bounced_at": moment(rng.random()) if n % 500 == 0 else None,
                "created_at": start,
            }
            for n in range(n_customers)
        ),
    )
    with sessions() as session:
        customers = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    repeaters = customers[: len(customers) // 3]  # a third buy again and again
    bulk(
        engine,
        Sale,
        (
            {
                "external_id": f"S-{n}",
                "customer_id": customers[n] if n < len(customers) else rng.choice(repeaters),
                "product_id": rng.choice(product_ids),
                "sold_at": moment(n / n_sales),
                "status": SaleStatus.ACTIVE,
                "attributes": {},
                "created_at": moment(n / n_sales),
            }
            for n in range(n_sales)
        ),
    )
    with sessions() as session:
        sales = session.execute(
            select(Sale.id, Sale.customer_id, Sale.sold_at, Sale.product_id)
        ).all()
    statuses = [FollowUpStatus.DELIVERED] * 14 + [
        FollowUpStatus.SENT,
        FollowUpStatus.SENT,
        FollowUpStatus.FAILED,
        FollowUpStatus.SKIPPED,
    ]

    def follow_ups() -> Iterator[dict[str, Any]]:
        for sale, customer, sold, product in sales:
            for k, step in enumerate(steps):
                due = sold + timedelta(days=(1, 7, 30, 60, 90)[k])
                status = FollowUpStatus.SCHEDULED if due > NOW else rng.choice(statuses)
                gone = status in (FollowUpStatus.SENT, FollowUpStatus.DELIVERED)
                yield {
                    "sale_id": sale,
                    "product_id": product,
                    "step_id": step,
                    "customer_id": customer,
                    "channel": Channel.SMS if k % 2 == 0 else Channel.EMAIL,
                    "due_at": due,
                    "status": status,
                    "status_reason": "opted out" if status is FollowUpStatus.SKIPPED else None,
                    "attempts": 1,
                    "facts": {},
                    "sent_at": due if gone else None,
                    "created_at": sold,
                    "updated_at": due,
                }

    bulk(engine, FollowUp, follow_ups())
    with sessions() as session:
        sent: list[tuple[int, int, datetime]] = [
            (follow_up, customer, when)
            for follow_up, customer, when in session.execute(
                select(FollowUp.id, FollowUp.customer_id, FollowUp.sent_at)
                .where(FollowUp.sent_at.is_not(None))
                .order_by(func.random())
                .limit(int(200_000 * scale))
            )
            if when is not None
        ]
    outbound, inbound = sent[: len(sent) * 3 // 5], sent[len(sent) * 3 // 5 :]

    def messages() -> Iterator[dict[str, Any]]:
        for n, (follow_up, customer, when) in enumerate(outbound):
            yield _message(n, follow_up, customer, when, Direction.OUTBOUND, "recibido", None, None)
        for n, (follow_up, customer, when) in enumerate(inbound, start=len(outbound)):
            complaint = rng.random() < 0.3
            body = rng.choice(COMPLAINTS if complaint else PRAISE)
            score = int(body.split()[0]) if body.split()[0].isdigit() else rng.choice((None, 8))
            label = "objection" if complaint else "positive"
            reply_at = when + timedelta(hours=rng.randint(1, 200))
            yield _message(n, follow_up, customer, reply_at, Direction.INBOUND, body, label, score)

    bulk(engine, Message, messages())
    complainers = inbound[: n_cases * 2]
    rng.shuffle(complainers)
    first_of_each = {customer: row for row in reversed(complainers) for customer in [row[1]]}
    chosen = list(first_of_each.values())[:n_cases]  # one case per customer

    def cases() -> Iterator[dict[str, Any]]:
        for n, (_follow_up, customer, when) in enumerate(chosen):
            opened = when + timedelta(hours=2)
            still_open = n % 60 == 0 or opened > NOW - timedelta(hours=4)
            yield {
                "customer_id": customer,
                "status": "open" if still_open else "resolved",
                "reason": "objection",
                "opened_at": opened,
                "first_response_due_at": opened + timedelta(hours=4),
                "first_responded_at": None if n % 120 == 0 else opened + timedelta(minutes=90),
                "resolved_at": None if still_open else opened + timedelta(days=1),
                "escalation_level": 0,
                "reopened_count": 1 if n % 25 == 0 else 0,
            }

    bulk(engine, Case, cases())
    with sessions() as session:
        case_rows = session.execute(select(Case.id, Case.opened_at)).all()
    bulk(
        engine,
        Remedy,
        (
            {
                "case_id": case,
                "kind": "discount",
                "description": "10 % en la próxima compra",
                "value": 10,
                "status": "granted",
                "created_at": opened + timedelta(hours=3),
            }
            for case, opened in case_rows[::4]
        ),
    )
    bulk(
        engine,
        AuditEntry,
        (
            {
                "at": opened + timedelta(days=4),
                "actor": "customer",
                "action": "case.reopen",
                "entity_type": "case",
                "entity_id": case,
                "details": {},
            }
            for case, opened in case_rows[::25]
        ),
    )
    with sessions.begin() as session:
        session.add(
            User(
                email=OWNER,
                password_hash=hash_password(OWNER_PASSWORD),
                role=Role.OWNER,
                created_at=NOW,
            )
        )
    with sessions.begin() as session:  # as the worker keeps them: tallies folded,
        compact(session)
    config = defaults()  # the first answers' minutes counted,
    while True:
        with sessions.begin() as session:
            opening, tz = config.cases.opening_hours, config.business.tz
            if first_answers.measure(session, opening, tz) < first_answers.MEASURE:
                break
    refresh_statistics(engine)  # and SQLite's statistics
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            # As autovacuum leaves a table in daily use: statistics, and the visibility map
            # that lets an index answer alone.
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE")
            )
    with sessions() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in (FollowUp, Message, Case, Sale, Customer)
        }


def bulk(engine: Engine, table: type[Base], rows: Iterable[dict[str, Any]]) -> None:
    """The rows into `table`. PostgreSQL: one COPY (psycopg's executemany sends an INSERT a
    row, each firing the tallies' statement trigger: 4 000 follow-ups a second), the row
    triggers of sales and messages off meanwhile and what they keep filled after; SQLite:
    executemany (`pass_cost.bulk`)."""
    if engine.dialect.name != "postgresql":
        executemany(engine, table, iter(rows))
        return
    with engine.begin() as connection, _triggers_off(connection, table):
        copy(connection, table, rows)


def _triggers_off(connection: Connection, table: type[Base]) -> AbstractContextManager[None]:
    if table is Sale:
        return sales_trigger_off(connection)
    return replies_trigger_off(connection) if table is Message else nullcontext()


@contextmanager
def replies_trigger_off(connection: Connection) -> Iterator[None]:
    """While messages are loaded, their triggers off: each reply's sets its follow-up's
    `replied`, and run at the end of a COPY into a table never analyzed, each read its replies
    along a whole index (a million messages ran for over 15 minutes). Then each reply's
    product, `replied` and `objected` are filled at once, as migrations 0038, 0024 and 0043
    fill them."""
    connection.execute(text("ALTER TABLE messages DISABLE TRIGGER USER"))
    yield
    connection.execute(text(FILL_PRODUCT))
    connection.execute(text("ALTER TABLE messages ENABLE TRIGGER USER"))
    connection.execute(text("ANALYZE messages"))
    connection.execute(text(FILL_REPLIED))
    connection.execute(text(FILL_OBJECTED))


def copy(connection: Connection, table: type[Base], rows: Iterable[dict[str, Any]]) -> None:
    """COPY `rows` into `table`, the columns of its first row (COPY runs no Python-side
    default: each row gives every column that has one)."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    columns = list(first)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.__tablename__} ({', '.join(columns)}) FROM STDIN") as into:
        for row in chain([first], rows):
            into.write_row([_cell(row[column]) for column in columns])


def _cell(value: Any) -> Any:
    """A value as COPY takes it: an enum by its value, a dict as JSON text."""
    if isinstance(value, Enum):
        return value.value
    return json.dumps(value) if isinstance(value, dict) else value


def _message(
    n: int,
    follow_up: int,
    customer: int,
    when: Any,
    direction: Direction,
    body: str,
    label: str | None,
    score: int | None,
) -> dict[str, Any]:
    inbound = direction is Direction.INBOUND
    return {
        "customer_id": customer,
        "follow_up_id": follow_up,
        "direction": direction,
        "channel": Channel.SMS,
        "from_address": "+15005550006",
        "to_address": f"+5199{customer:07d}",
        "body": body,
        "provider_id": f"SM{n:032d}",
        "status": "delivered" if direction is Direction.OUTBOUND else "received",
        "label": label,
        "score": score,
        "needs_human": label == "objection",
        # As the worker read them: themes noted with the built-in words (the owner adds none).
        "themes": stored(themes_of(body)) if inbound else None,
        "themes_read_with": BUILT_IN.fingerprint if inbound else None,
        "created_at": when,
    }


def measure(name: str, url: str, scale: float, runs: int) -> None:
    engine = make_engine(url)
    began = time.perf_counter()
    counts = load(engine, scale)
    print(
        f"[{name}] loaded in {time.perf_counter() - began:.0f} s: "
        + ", ".join(f"{count:,} {table}" for table, count in counts.items())
    )
    time_pages(url, runs)
    engine.dispose()


def time_pages(url: str, runs: int) -> None:
    """The front page as the owner opens it, and its parts alone (figures, complaints); then
    the page of the customers at risk, whose list is its own."""
    engine = make_engine(url)
    config = defaults().replace(database={"url": url})
    browser = owner_browser(config)
    sessions = make_session_factory(engine)
    tz, today = config.business.tz, NOW.astimezone(config.business.tz).date()
    opening = config.cases.opening_hours
    for label, query in (
        ("dashboard, 7 days", "/?days=7"),
        ("dashboard, 30 days", "/?days=30"),
        ("dashboard, 90 days", "/?days=90"),
        ("dashboard, 30 days, one product", "/?days=30&product=SKU-3"),
        ("at risk, 7 days", "/at-risk?days=7"),
        ("at risk, 30 days", "/at-risk?days=30"),
        ("at risk, 90 days", "/at-risk?days=90"),
    ):
        answer = browser.get(query)
        assert answer.status_code == 200, answer.status_code
        whole = median_seconds(partial(browser.get, query), runs)
        days = int(query.split("days=")[1].split("&")[0])
        period = period_from(
            (today - timedelta(days=days - 1)).isoformat(), None, tz=tz, today=today
        )
        with sessions() as session:  # each part alone, for all products
            parts: dict[str, Callable[[], object]] = (
                {"at risk": partial(at_risk, session, period, now=NOW)}
                if query.startswith("/at-risk")
                else {
                    "figures": partial(figures, session, period, now=NOW, opening=opening),
                    "complaints": partial(complaint_themes, session, period, vocabulary(session)),
                }
            )
            timings = {part: median_seconds(work, runs) for part, work in parts.items()}
            risks = len(at_risk(session, period, now=NOW))
        shown = ", ".join(f"{part} {seconds * 1000:.0f} ms" for part, seconds in timings.items())
        met = "yes" if whole < TARGET else "no"
        target = f"; target < {TARGET * 1000:.0f} ms: {met}" if label.startswith("dash") else ""
        print(
            f"  {label:>31}: median {whole * 1000:.0f} ms over {runs} runs "
            f"({shown}; {risks:,} customers at risk){target}"
        )
    engine.dispose()


def postgres(scale: float, runs: int) -> None:
    import psycopg

    try:
        with temporary_postgres() as url:
            measure("PostgreSQL", url, scale, runs)
    except psycopg.OperationalError as error:
        print(f"[PostgreSQL] not measured: {error}".splitlines()[0])


def sqlite(scale: float, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        measure("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", scale, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_options(parser)
    parser.add_argument("--sqlite", action="store_true", help="also measure SQLite")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"pages per period ({RUNS})")
    args = parser.parse_args()
    scale = shop_scale(args)
    print("dashboard: the owner's front page on a year of follow-ups, messages and cases")
    postgres(scale, args.runs)
    if args.sqlite:
        sqlite(scale, args.runs)


if __name__ == "__main__":
    main()

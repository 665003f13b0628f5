"""Every list page of a busy shop on PostgreSQL: 100 000 customers, 1 000 000 follow-ups and
5 000 open cases (a temporary database on 127.0.0.1:5432).

The rows are made by the database itself (INSERT ... SELECT over generate_series: a minute,
not an hour): 250 000 sales over the last year of 100 000 customers, the default cadence's
four follow-ups each (those due already delivered, some failed or skipped, the rest
scheduled), a message for each one sent, 60 000 replies, 5 000 open cases and 20 000
resolved ones, 200 000 audit entries. Then each list page is asked for by a logged-in owner
through the Flask app, as a browser would: its first page, filtered, searched and a later
page; the median time of the whole page, and the most rows any one of its statements read
(a page must never load more than one page of rows). --follow-ups N scales every size.

    .venv/bin/python bench/lists.py            # the sizes above
    .venv/bin/python bench/lists.py --quick    # a tenth of them
    .venv/bin/python bench/lists.py --follow-ups 5000000  # five times them all
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from common import (
    FILL_LAST_SOLD_AT,
    OWNER,
    OWNER_PASSWORD,
    add_size_options,
    owner_browser,
    shop_scale,
    temporary_postgres,
)
from sqlalchemy import Engine, event, func, select, text

from scheduler.accounts import hash_password
from scheduler.config import defaults
from scheduler.db import make_engine, make_session_factory
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Anchor, Role
from scheduler.models import CadenceStep, Case, Customer, FollowUp, Message, SavedAnswer, User
from scheduler.schema import upgrade

NOW = datetime.now(UTC).replace(microsecond=0)  # the app reads the real clock
TARGET = 0.200  # seconds for a whole page
RUNS = 7
FIRST = ("Rosa", "Juan", "María", "Luis", "Ana", "Jorge", "Lucía", "Pedro", "Carmen", "José")
LAST = ("Quispe", "Mamani", "Huamán", "Flores", "Rojas", "Torres", "Díaz", "Vargas", "Paredes")


def _array(words: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{word}'" for word in words) + "]"


def load(engine: Engine, scale: float) -> dict[str, int]:
    """The rows, made in SQL; the triggers that keep derived columns are off while loading
    and their columns filled once at the end, as the migrations fill them."""
    upgrade(engine)
    sessions = make_session_factory(engine, writer=True)
    with sessions.begin() as session:
        install_defaults(session, NOW)
        for email, role in ((OWNER, Role.OWNER), ("ana@example.pe", Role.STAFF)):
            session.add(
                User(
                    email=email,
                    password_hash=hash_password(OWNER_PASSWORD),
                    role=role,
                    created_at=NOW,
                )
            )
        for n in range(30):
            session.add(
                SavedAnswer(
                    title=f"Respuesta {n}",
                    locale="es",
                    body="Hola {{ customer.first_name }}, te llamamos {{ deadline }}.",
                    updated_at=NOW,
                )
            )
        steps = [
            (step.id, step.offset_minutes, step.channel.value)
            for step in session.scalars(
                select(CadenceStep)
                .where(CadenceStep.anchor == Anchor.SALE)  # those every sale gets
                .order_by(CadenceStep.offset_minutes)
            )
        ]
    customers, sales = int(100_000 * scale), int(250_000 * scale)
    values = {"now": NOW, "customers": customers, "sales": sales}
    with engine.begin() as connection:
        for table in ("sales", "follow_ups", "messages"):
            connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))

        def run(sql: str) -> None:
            connection.execute(text(sql), values)

        run(
            "INSERT INTO products (sku, name, category) "
            "SELECT 'SKU-' || g, 'Producto ' || g, 'Línea ' || (g % 5) "
            "FROM generate_series(1, 50) g"
        )
        run(
            "INSERT INTO customers (name, phone, email, created_at) SELECT "
            f"({_array(FIRST)})[1 + g % 10] || ' ' || ({_array(LAST)})[1 + (g / 10) % 9] "
            "|| ' ' || g, '+5199' || lpad(g::text, 7, '0'), "
            "CASE WHEN g % 3 = 0 THEN 'cliente' || g || '@example.pe' END, :now "
            "FROM generate_series(1, :customers) g"
        )
        run(
            "INSERT INTO sales (external_id, customer_id, product_id, sold_at, amount, currency, "
            "status, attributes, created_at) SELECT 'B-' || g, 1 + g % :customers, "
            "(SELECT id FROM products WHERE sku = 'SKU-' || (1 + g % 50)), "
            ":now - make_interval(days => g % 365, hours => g % 24), 100 + g % 900, 'PEN', "
            "'active', '{}', :now FROM generate_series(1, :sales) g"
        )
        run(FILL_LAST_SOLD_AT)
        for step_id, minutes, channel in steps:
            run(
                "INSERT INTO follow_ups (sale_id, product_id, step_id, customer_id, channel, "
                "due_at, status, status_reason, attempts, facts, sent_at, created_at, updated_at) "
                f"SELECT s.id, s.product_id, {step_id}, s.customer_id, '{channel}', due, CASE "
                "WHEN due > :now THEN 'scheduled' WHEN s.id % 33 = 0 THEN 'failed' WHEN "
                "s.id % 20 = 0 THEN 'skipped' ELSE 'delivered' END, NULL, 0, '{}', CASE WHEN "
                "due <= :now AND s.id % 20 <> 0 THEN due END, s.sold_at, s.sold_at FROM (SELECT *, "
                "sold_at + "
                f"make_interval(mins => {minutes}) AS due FROM sales) s"
            )
        run(
            "INSERT INTO messages (customer_id, follow_up_id, direction, channel, from_address, "
            "to_address, body, status, created_at, attempts) SELECT f.customer_id, f.id, "
            "'outbound', f.channel, '+15005550006', CASE f.channel WHEN 'email' THEN "
            "'cliente' || f.customer_id || '@example.pe' ELSE '+5199' || lpad(f.customer_id::text,"
            " 7, '0') END, 'Hola, gracias por tu compra ' || f.sale_id || '. ¿Cómo te va con "
            "ella? Responde a este SMS: lo lee una persona.', f.status, f.sent_at, 1 "
            "FROM follow_ups f WHERE f.sent_at IS NOT NULL"
        )
        run(
            "INSERT INTO messages (customer_id, follow_up_id, direction, channel, from_address, "
            "to_address, body, status, label, needs_human, created_at, attempts) SELECT "
            "f.customer_id, f.id, 'inbound', 'sms', '+5199' || lpad(f.customer_id::text, 7, '0'),"
            " '+15005550006', CASE WHEN f.id % 3 = 0 THEN 'la hornilla llegó rota, pésimo' ELSE "
            "'todo bien, gracias' END, 'received', CASE WHEN f.id % 3 = 0 THEN 'objection' ELSE "
            "'neutral' END, f.id % 3 = 0, f.sent_at + interval '2 hours', 0 FROM follow_ups f "
            "WHERE f.status = 'delivered' AND f.id % 13 = 0"
        )
        cases = {"open": int(5_000 * scale), "resolved": int(20_000 * scale)}
        run(
            "INSERT INTO cases (customer_id, status, reason, opened_at, first_response_due_at, "
            "first_responded_at, resolved_at, outcome, escalation_level, reopened_count) SELECT "
            f"1 + (g * 7) % :customers, CASE WHEN g <= {cases['open']} THEN 'open' ELSE "
            "'resolved' END, CASE WHEN g % 4 = 0 THEN 'question' ELSE 'objection' END, "
            ":now - make_interval(hours => g), :now - make_interval(hours => g) + "
            "interval '4 hours', NULL, CASE WHEN g > "
            f"{cases['open']} THEN :now - make_interval(hours => g - 5) END, CASE WHEN g > "
            f"{cases['open']} THEN 'resuelto' END, 0, 0 FROM generate_series(1, "
            f"{cases['open'] + cases['resolved']}) g"
        )
        run(
            "INSERT INTO messages (customer_id, case_id, direction, channel, from_address, "
            "to_address, body, status, label, needs_human, created_at, attempts) SELECT "
            "c.customer_id, c.id, 'inbound', 'sms', '+5199' || lpad(c.customer_id::text, 7, "
            "'0'), '+15005550006', 'la cocina no prende, la puerta del horno no cierra', "
            "'received', c.reason, true, c.opened_at, 0 FROM cases c"
        )
        run(
            "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, details) SELECT "
            ":now - make_interval(mins => g), CASE WHEN g % 5 = 0 THEN 'user:1' ELSE 'api:1' "
            "END, CASE WHEN g % 5 = 0 THEN 'case.note' ELSE 'sale.record' END, CASE WHEN "
            "g % 5 = 0 THEN 'case' ELSE 'sale' END, g, '{}' FROM generate_series(1, "
            f"{int(200_000 * scale)}) g"
        )
        for table in ("sales", "follow_ups", "messages"):
            connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        # What went out, copied for the outbox's search as the worker copies it after the
        # sends (`sending.sent_texts`; the trigger that has each text wait was off).
        run(
            "INSERT INTO outbound_texts (message_id, body) "
            "SELECT id, body FROM messages WHERE direction = 'outbound'"
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))  # as autovacuum soon would, after a load
    with sessions() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Customer, FollowUp, Message, Case)
        }


class Rows:
    """The most rows one statement read, while counting."""

    def __init__(self) -> None:
        self.most = 0

    def __call__(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and cursor.rowcount > self.most:
            self.most = cursor.rowcount


@contextmanager
def counting() -> Iterator[Rows]:
    rows = Rows()
    event.listen(Engine, "after_cursor_execute", rows)
    try:
        yield rows
    finally:
        event.remove(Engine, "after_cursor_execute", rows)


def pages(engine: Engine) -> list[tuple[str, str]]:
    with make_session_factory(engine)() as session:
        customer = session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1))
        case = session.scalar(select(Case.id).where(Case.status == "open").limit(1))
        sale = session.scalar(text("SELECT external_id FROM sales ORDER BY id DESC LIMIT 1"))
    return [
        ("inbox", "/inbox"),
        ("inbox, mine", "/inbox?tab=mine"),
        ("inbox, objections overdue", "/inbox?kind=objection&overdue=1"),
        ("inbox, one product", "/inbox?product=SKU-3"),
        ("inbox, words", "/inbox?q=puerta+horno"),
        ("inbox, words no case has", "/inbox?q=zzzz"),
        ("inbox, next page", "next:/inbox"),
        ("a case", f"/cases/{case}"),
        ("customers, latest sale", "/customers"),
        ("customers, by name", "/customers?sort=name"),
        ("customers, next page", "next:/customers"),
        ("customers, two words", "/customers?q=quispe+rosa"),
        ("customers, a sale's number", f"/customers?q={sale}"),
        ("customers, nobody", "/customers?q=zzzz"),
        ("a customer", f"/customers/{customer}"),
        ("outbox", "/outbox"),
        ("outbox, failed", "/outbox?status=failed"),
        ("outbox, email", "/outbox?channel=email"),
        ("outbox, one customer", f"/outbox?customer={customer}"),
        ("outbox, one week", "/outbox?from=2026-11-01&to=2026-11-07"),
        ("outbox, words", "/outbox?q=gracias"),
        ("outbox, words nobody wrote", "/outbox?q=zzzz"),
        ("outbox, words, one week", "/outbox?q=zzzz&from=2026-11-01&to=2026-11-07"),
        ("outbox, next page", "next:/outbox"),
        ("next out, 7 days", "/upcoming"),
        ("next out, 30 days, one product", "/upcoming?days=30&product=SKU-3"),
        ("next out, paused", "/upcoming?paused=yes"),
        ("next out, next page", "next:/upcoming"),
        ("audit log", "/admin/audit"),
        ("audit log, a person", "/admin/audit?who=user:1"),
        ("audit log, next page", "next:/admin/audit"),
        ("saved answers", "/answers"),
    ]


def time_pages(url: str, runs: int) -> list[tuple[str, float, int]]:
    browser = owner_browser(defaults().replace(database={"url": url}))
    engine = make_engine(url)
    found = []
    for label, path in pages(engine):
        if path.startswith("next:"):
            first = browser.get(path[5:]).get_data(as_text=True)
            following = re.search(r'href="([^"]+)"[^>]* rel="next"', first)
            assert following, f"{label}: no next page"
            path = following.group(1).replace("&amp;", "&").split("#")[0]
        answer = browser.get(path)
        assert answer.status_code == 200, (label, answer.status_code)
        times = []
        with counting() as rows:
            for _ in range(runs):
                began = time.perf_counter()
                browser.get(path)
                times.append(time.perf_counter() - began)
        found.append((label, statistics.median(times), rows.most))
    engine.dispose()
    return found


def load_and_say(url: str, scale: float) -> None:
    """The rows into the database at `url`, and a line saying how many and how long."""
    engine = make_engine(url)
    began = time.perf_counter()
    counts = load(engine, scale)
    engine.dispose()
    print(
        f"  loaded in {time.perf_counter() - began:.0f} s: "
        + ", ".join(f"{count:,} {table}" for table, count in counts.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_options(parser)
    parser.add_argument("--runs", type=int, default=RUNS, help=f"asks per page ({RUNS})")
    args = parser.parse_args()
    scale = shop_scale(args)
    print("lists: every list page of a busy shop, PostgreSQL")
    with temporary_postgres() as url:
        load_and_say(url, scale)
        found = time_pages(url, args.runs)
    slowest = max(seconds for _label, seconds, _rows in found)
    for label, seconds, rows in found:
        met = "yes" if seconds < TARGET else "NO"
        print(
            f"  {label:>32}: median {seconds * 1000:4.0f} ms, at most {rows:>4} rows read; "
            f"< {TARGET * 1000:.0f} ms: {met}"
        )
    print(f"  slowest page: {slowest * 1000:.0f} ms over {args.runs} asks each")


if __name__ == "__main__":
    main()

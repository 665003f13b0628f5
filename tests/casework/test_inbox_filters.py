"""Which open cases the inbox shows: each filter on a hand-built set of cases, the words of a
search, and pages cut by keyset that neither repeat nor skip a case (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.orm import Session

from scheduler.casework.cases import AT_RISK
from scheduler.casework.context import case_context
from scheduler.casework.inbox import (
    LOW_SCORE,
    CaseFilter,
    open_cases,
    tab_counts,
)
from scheduler.config import defaults
from scheduler.defaults import install_defaults
from scheduler.figures.period import days_between
from scheduler.lifecycle import CaseStatus, Channel, FollowUpStatus, Role
from scheduler.models import Case, Customer, FollowUp, Product, Sale, User
from scheduler.paging import Cursor, CursorError
from scheduler.sending.sales import record_sale
from scheduler.typed_text import search_words
from tests.factories import NOW, inbound_sms, sale_input

TZ = defaults().business.tz  # Lima


@dataclass(frozen=True)
class Built:
    me: int
    other: int
    cases: dict[str, int]  # by customer name


def build(session: Session) -> Built:
    """Six open cases and a resolved one, each with what one filter looks for:

    - Rosa Quispe: objection by SMS about the washer (her reply answers its follow-up),
      mine, overdue, opened Monday 23;
    - Ana Torres: question by WhatsApp, nobody's, opened Tuesday 24, "¿tienen 50% de descuento?";
    - Luis Rosales: a score of 3 (labelled objection), someone else's, by email, opened 25;
    - Marta Díaz: at risk, opened by a person, nobody's, no reply, bought the cooker, opened 26;
    - Pedro Quispe: objection by SMS about the cooker (his latest purchase; no follow-up
      answered), answered already, opened 27;
    - Old Case: resolved (never shown)."""
    install_defaults(session, NOW)
    me = User(email="yo@example.pe", password_hash="x", role=Role.STAFF, created_at=NOW)
    other = User(email="otra@example.pe", password_hash="x", role=Role.STAFF, created_at=NOW)
    session.add_all([me, other])
    session.flush()
    cases: dict[str, int] = {}

    def case(
        name: str,
        phone: str,
        *,
        sku: str,
        reason: str,
        day: int,
        due_hours: float,
        body: str | None,
        channel: Channel = Channel.SMS,
        score: int | None = None,
        assignee: int | None = None,
        answered: bool = False,
        answers_follow_up: bool = False,
        email: str | None = None,
        status: CaseStatus = CaseStatus.OPEN,
    ) -> None:
        sale, _new = record_sale(
            session,
            sale_input(
                f"S-{phone}",
                customer_name=name,
                phone=phone,
                email=email,
                product_sku=sku,
                product_name={"LAV-9": "Lavadora", "COC-1": "Cocina"}[sku],
            ),
            config=defaults(),
            now=NOW,
            actor="test",
        )
        opened = datetime(2026, 11, day, 15, 0, tzinfo=NOW.tzinfo)  # 10:00 in Lima
        row = Case(
            customer_id=sale.customer_id,
            reason=reason,
            opened_at=opened,
            first_response_due_at=opened + timedelta(hours=due_hours),
            first_responded_at=opened + timedelta(hours=1) if answered else None,
            assignee_id=assignee,
            status=status,
        )
        session.add(row)
        session.flush()
        if body is not None:
            follow_up = None
            if answers_follow_up:
                follow_up = session.scalars(
                    select(FollowUp.id).where(FollowUp.sale_id == sale.id).order_by(FollowUp.id)
                ).first()
                session.execute(
                    update(FollowUp)
                    .where(FollowUp.id == follow_up)
                    .values(status=FollowUpStatus.SENT, sent_at=opened - timedelta(hours=2))
                )
            session.add(
                inbound_sms(
                    body,
                    opened,
                    sender=phone,
                    channel=channel,
                    customer_id=sale.customer_id,
                    case_id=row.id,
                    follow_up_id=follow_up,
                    score=score,
                    label=reason,
                )
            )
        cases[name] = row.id

    case(
        "Rosa Quispe",
        "+51911111111",
        sku="LAV-9",
        reason="objection",
        day=23,
        due_hours=4,
        body="la lavadora no prende",
        assignee=me.id,
        answers_follow_up=True,
    )
    case(
        "Ana Torres",
        "+51922222222",
        sku="LAV-9",
        reason="question",
        day=24,
        due_hours=48,
        body="¿tienen 50% de descuento?",
        channel=Channel.WHATSAPP,
    )
    case(
        "Luis Rosales",
        "+51933333333",
        sku="LAV-9",
        reason="objection",
        day=25,
        due_hours=72,
        body="3",
        channel=Channel.EMAIL,
        score=3,
        assignee=other.id,
        answers_follow_up=True,
        email="luis@correo.pe",
    )
    case("Marta Díaz", "+51944444444", sku="COC-1", reason=AT_RISK, day=26, due_hours=72, body=None)
    case(
        "Pedro Quispe",
        "+51955555555",
        sku="COC-1",
        reason="objection",
        day=27,
        due_hours=4,
        body="la cocina llegó rota",
        answered=True,
    )
    case(
        "Old Case",
        "+51966666666",
        sku="COC-1",
        reason="objection",
        day=20,
        due_hours=4,
        body="la lavadora no prende",
        status=CaseStatus.RESOLVED,
    )
    session.commit()
    return Built(me.id, other.id, cases)


NOW_LATER = datetime(2026, 11, 28, 14, 0, tzinfo=NOW.tzinfo)  # Saturday, 9:00 in Lima


def names(session: Session, wanted: CaseFilter, me: int) -> list[str]:
    page = open_cases(session, wanted, me=me, now=NOW_LATER)
    assert page.matching == len(page.rows) and page.following is None
    return [customer.name for _case, customer in page.rows]


def test_every_open_case_the_nearest_deadline_first(session: Session) -> None:
    built = build(session)
    assert names(session, CaseFilter(), built.me) == [
        "Rosa Quispe",  # due Monday 23, 14:00 in Lima
        "Ana Torres",  # Thursday 26
        "Pedro Quispe",  # Friday 27 (answered, still open)
        "Luis Rosales",  # Saturday 28, 10:00
        "Marta Díaz",  # Sunday 29
    ]


def cooker(session: Session) -> int:
    return session.scalars(select(Product.id).where(Product.sku == "COC-1")).one()


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (CaseFilter(kind="objection"), ["Rosa Quispe", "Luis Rosales", "Pedro Quispe"]),
        (CaseFilter(kind="question"), ["Ana Torres"]),
        (CaseFilter(kind=LOW_SCORE), ["Luis Rosales"]),
        (CaseFilter(kind=AT_RISK), ["Marta Díaz"]),
        (CaseFilter(assignee="mine"), ["Rosa Quispe"]),
        (CaseFilter(assignee="nobody"), ["Ana Torres", "Pedro Quispe", "Marta Díaz"]),
        (CaseFilter(assignee="someone"), ["Rosa Quispe", "Luis Rosales"]),
        (CaseFilter(overdue=True), ["Rosa Quispe", "Ana Torres"]),
        (CaseFilter(channel=Channel.WHATSAPP), ["Ana Torres"]),
        (CaseFilter(channel=Channel.EMAIL), ["Luis Rosales"]),
        (CaseFilter(kind="objection", channel=Channel.SMS), ["Rosa Quispe", "Pedro Quispe"]),
        (CaseFilter(words=("quispe",)), ["Rosa Quispe", "Pedro Quispe"]),
        (CaseFilter(words=("ROSA",)), ["Rosa Quispe", "Luis Rosales"]),  # Rosales too
        (CaseFilter(words=("quispe", "rosa")), ["Rosa Quispe"]),  # any order, each somewhere
        (CaseFilter(words=("prende",)), ["Rosa Quispe"]),  # the conversation
        (CaseFilter(words=("51933",)), ["Luis Rosales"]),  # the phone
        (CaseFilter(words=("correo.pe",)), ["Luis Rosales"]),  # the email
        (CaseFilter(words=("50%",)), ["Ana Torres"]),  # % is a character, not a wildcard
        (CaseFilter(words=("%",)), ["Ana Torres"]),
        (CaseFilter(words=("_",)), []),
    ],
)
def test_each_filter_narrows_the_open_cases(
    session: Session, wanted: CaseFilter, expected: list[str]
) -> None:
    built = build(session)
    order = {name: n for n, name in enumerate(names(session, CaseFilter(), built.me))}
    assert names(session, wanted, built.me) == sorted(expected, key=order.__getitem__)


def test_the_product_of_a_case(session: Session) -> None:
    """The washer's cases answer its follow-ups; the cooker's are the latest purchase of
    customers whose messages answer no follow-up (Pedro) or who wrote nothing (Marta)."""
    built = build(session)
    washer = session.scalars(select(Product.id).where(Product.sku == "LAV-9")).one()
    assert names(session, CaseFilter(product_id=cooker(session)), built.me) == [
        "Pedro Quispe",
        "Marta Díaz",
    ]
    # Ana answers no follow-up either: her latest purchase is the washer.
    assert names(session, CaseFilter(product_id=washer), built.me) == [
        "Rosa Quispe",
        "Ana Torres",
        "Luis Rosales",
    ]


def test_the_first_answering_message_decides_as_on_the_case_page(session: Session) -> None:
    """Rosa's case answers her washer's follow-up first; a later message of it answers a
    cooker's: the case is the washer's in the inbox's filter and on its page alike."""
    built = build(session)
    rosa = session.get_one(Case, built.cases["Rosa Quispe"])
    sale, _new = record_sale(
        session,
        sale_input("S-cocina", phone="+51987654321", product_sku="COC-1", product_name="Cocina"),
        config=defaults(),
        now=NOW,
        actor="test",
    )
    answered = session.scalars(select(FollowUp.id).where(FollowUp.sale_id == sale.id)).first()
    session.add(
        inbound_sms(
            "y la cocina tampoco",
            rosa.opened_at + timedelta(hours=3),
            customer_id=rosa.customer_id,
            case_id=rosa.id,
            follow_up_id=answered,
        )
    )
    session.flush()
    assert "Rosa Quispe" not in names(session, CaseFilter(product_id=cooker(session)), built.me)
    washer = session.scalars(select(Product.id).where(Product.sku == "LAV-9")).one()
    assert "Rosa Quispe" in names(session, CaseFilter(product_id=washer), built.me)
    about = case_context(session, rosa).product
    assert about is not None and about.sku == "LAV-9"


def test_a_case_answering_a_sale_of_no_product_is_of_none(session: Session) -> None:
    """Rosa's case answers a follow-up of a sale whose product is gone: it is about no
    product, in the filter as on its page, not about her latest purchase instead."""
    built = build(session)
    rosa = session.get_one(Case, built.cases["Rosa Quispe"])
    record_sale(
        session,
        sale_input(  # her latest purchase by the time she wrote: at NOW, after the washer
            "S-otra", phone="+51911111111", product_sku="COC-1", product_name="Cocina"
        ),
        config=defaults(),
        now=NOW,
        actor="test",
    )
    washer = session.scalars(select(Product.id).where(Product.sku == "LAV-9")).one()
    session.execute(update(Sale).where(Sale.product_id == washer).values(product_id=None))
    assert case_context(session, rosa).product is None
    for product in (washer, cooker(session)):
        assert "Rosa Quispe" not in names(session, CaseFilter(product_id=product), built.me)


def test_opened_between_local_days(session: Session) -> None:
    built = build(session)
    days = days_between("2026-11-24", "2026-11-26", tz=TZ)
    assert names(session, CaseFilter(opened=days), built.me) == [
        "Ana Torres",
        "Luis Rosales",
        "Marta Díaz",
    ]
    assert names(session, CaseFilter(opened=days_between("2026-11-27", None, tz=TZ)), built.me) == [
        "Pedro Quispe"
    ]
    assert days_between(None, "2026-11-23", tz=TZ).first == date(1970, 1, 1)


def test_pages_neither_repeat_nor_skip_a_case(session: Session) -> None:
    """Pages of two: a case opened meanwhile with the nearest deadline goes to the first page,
    and the pages already cut go on where they were."""
    built = build(session)
    first = open_cases(session, CaseFilter(), me=built.me, now=NOW_LATER, size=2)
    assert first.matching == 5 and first.following is not None
    newcomer = Customer(name="Nueva Clienta", created_at=NOW)  # one open case each
    session.add(newcomer)
    session.flush()
    session.add(
        Case(
            customer_id=newcomer.id,
            reason="question",
            opened_at=NOW,
            first_response_due_at=NOW,
        )
    )
    session.commit()
    seen = [case.id for case, _customer in first.rows]
    after: Cursor | None = first.following
    while after is not None:
        page = open_cases(session, CaseFilter(), me=built.me, now=NOW_LATER, after=after, size=2)
        assert page.matching == 6 and len(page.rows) <= 2
        seen += [case.id for case, _customer in page.rows]
        after = page.following
    assert seen == [
        built.cases[name]
        for name in ("Rosa Quispe", "Ana Torres", "Pedro Quispe", "Luis Rosales", "Marta Díaz")
    ]
    cursor = Cursor.read(str(first.following))
    assert cursor == first.following


def test_a_search_pages_and_counts_its_matches_so_far(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Words are searched case by case along the deadlines: a page that is full is counted
    apart, up to COUNT_MOST (one more says "more than"); one that is not is the count."""
    built = build(session)
    quispe = CaseFilter(words=("quispe",))
    first = open_cases(session, quispe, me=built.me, now=NOW_LATER, size=1)
    assert [customer.name for _case, customer in first.rows] == ["Rosa Quispe"]
    assert first.matching == 2 and first.following is not None
    second = open_cases(session, quispe, me=built.me, now=NOW_LATER, after=first.following, size=1)
    assert [customer.name for _case, customer in second.rows] == ["Pedro Quispe"]
    assert second.matching == 2 and second.following is None
    monkeypatch.setattr("scheduler.casework.inbox.COUNT_MOST", 2)
    everyone = CaseFilter(words=("+519",))  # every open case's phone
    assert open_cases(session, everyone, me=built.me, now=NOW_LATER, size=1).matching == 3
    assert open_cases(session, everyone, me=built.me, now=NOW_LATER).matching == 3  # 5 found
    assert open_cases(session, CaseFilter(), me=built.me, now=NOW_LATER, size=1).matching == 5


@pytest.mark.parametrize(
    "text", ["", "abc", "1.2.3", "9" * 30 + ".1", "-5.3", "1.x", "1.2147483648", "1." + "9" * 18]
)
def test_a_cursor_not_written_here_is_refused(text: str) -> None:
    with pytest.raises(CursorError):
        Cursor.read(text)


def test_the_words_of_a_search() -> None:
    assert search_words("  quispe   rosa quispe ") == ("quispe", "rosa")
    assert len(search_words(" ".join(f"w{n}" for n in range(20)))) == 8


def test_each_tab_counts_its_cases(session: Session) -> None:
    built = build(session)
    session.add(inbound_sms("¿quién es?", NOW, sender="+51900000000", needs_human=True))
    session.commit()
    counts = tab_counts(session, me=built.me)
    assert (counts.open, counts.mine, counts.waiting, counts.unmatched) == (5, 1, 4, 1)
    assert counts.newest == max(built.cases[name] for name in built.cases if name != "Old Case")


def _gmail_customers(pg_engine: Engine) -> None:
    """5 000 customers with a gmail address, a case each, one in ten open, a message in each
    of the first 300 open cases saying "la puerta no cierra"."""
    with pg_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO customers (name, email, created_at) SELECT 'Cliente ' || n, "
                "'c' || n || '@gmail.com', now() FROM generate_series(1, 5000) AS n"
            )
        )
        connection.execute(
            text(
                "INSERT INTO cases (customer_id, status, reason, opened_at, "
                "first_response_due_at, escalation_level, reopened_count) SELECT id, "
                "CASE WHEN id % 10 = 0 THEN 'open' ELSE 'resolved' END, 'objection', now(), "
                "now() + interval '1 day' + id * interval '1 second', 0, 0 FROM customers"
            )
        )
        connection.execute(
            text(
                "INSERT INTO messages (customer_id, case_id, direction, channel, from_address, "
                "to_address, body, status, created_at) SELECT customer_id, id, 'inbound', 'sms', "
                "'+51900000000', '+51100000000', 'la puerta no cierra', 'received', now() "
                "FROM cases WHERE status = 'open' ORDER BY id LIMIT 300"
            )
        )
        connection.execute(text("ANALYZE customers; ANALYZE cases; ANALYZE messages"))


def _searched_plans(pg_engine: Engine, words: tuple[str, ...]) -> tuple[Any, list[str]]:
    """The first page of two cases holding `words`, and the plans of the SELECTs that read
    the open cases (the page, its count) with little memory for hashing."""
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("SELECT") and "ORDER BY cases.first_response_due_at" in statement:
            statements.append((statement, parameters))

    event.listen(pg_engine, "before_cursor_execute", keep)
    try:
        with Session(pg_engine) as session:
            page = open_cases(session, CaseFilter(words=words), me=0, now=NOW, size=2)
    finally:
        event.remove(pg_engine, "before_cursor_execute", keep)
    with pg_engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL work_mem = '64kB'")
        plans = [
            "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}", params))
            for sql, params in statements
        ]
    return page, plans


def _read_once(plan: str) -> str:
    """The parts of a plan run once for all the cases and hashed (`hashed SubPlan N`)."""
    hashed = set(re.findall(r"hashed SubPlan (\d+)", plan))
    parts = re.split(r"\n\s*SubPlan (\d+)\n", plan)  # head, number, part, number, part...
    return "\n".join(part for n, part in zip(parts[1::2], parts[2::2], strict=True) if n in hashed)


def test_postgresql_searches_each_case_along_its_keys_for_a_common_word(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word most customers hold ("gmail"), or many conversations ("puerta", past
    WRITTEN_MOST): PostgreSQL must look each walked case's customer and conversation up by
    key. A subquery run once for all would be listed and scanned for every case when its
    matches outgrow the hash memory (minutes at 500 000 customers), or read every message
    holding the word before the first case."""
    _gmail_customers(pg_engine)
    monkeypatch.setattr("scheduler.casework.inbox.WRITTEN_MOST", 100)
    for word, matching, holding in (("gmail", 500, "customers"), ("puerta", 300, "messages")):
        page, plans = _searched_plans(pg_engine, (word,))
        assert page.matching == matching and len(page.rows) == 2
        assert len(plans) == 2, plans  # the page, and its count
        for plan in plans:
            assert holding not in _read_once(plan) and "Materialize" not in plan, plan


def test_postgresql_reads_the_few_holding_a_word_from_its_indexes_once(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word few customers and conversations hold is read once from the trigram indexes and
    the open cases kept by those ids: a word no case has is not looked up in each open case
    (25 000 at five million follow-ups: 211 ms). The cases found are those the walk finds."""
    _gmail_customers(pg_engine)
    with pg_engine.begin() as connection:  # c1001's resolved case said "ventana", the open not
        connection.execute(
            text(
                "INSERT INTO messages (customer_id, case_id, direction, channel, from_address, "
                "to_address, body, status, created_at) SELECT customer_id, id, 'inbound', 'sms', "
                "'+51900000000', '+51100000000', 'la ventana no cierra', 'received', now() "
                "FROM cases WHERE customer_id = (SELECT id FROM customers "
                "WHERE email = 'c1001@gmail.com'); INSERT INTO cases (customer_id, status, "
                "reason, opened_at, first_response_due_at, escalation_level, reopened_count) "
                "SELECT id, 'open', 'question', now(), now(), 0, 0 FROM customers "
                "WHERE email = 'c1001@gmail.com'"
            )
        )
        connection.execute(  # `_` is a character: "ana_bel" is not "anaxbel"
            text(
                "INSERT INTO customers (name, created_at) VALUES ('Ana_Bel Rojas', now()), "
                "('AnaxBel Rojas', now()); INSERT INTO cases (customer_id, status, reason, "
                "opened_at, first_response_due_at, escalation_level, reopened_count) SELECT id, "
                "'open', 'question', now(), now(), 0, 0 FROM customers WHERE name LIKE 'Ana%'"
            )
        )
    found: dict[tuple[str, ...], list[int]] = {}
    searches: list[tuple[tuple[str, ...], int]] = [
        (("c4990@",), 1),  # a customer's address
        (("puerta", "c1000@"), 1),  # a conversation's word and its customer's address
        (("ventana",), 0),  # in a resolved case only
        (("ana_bel",), 1),
        (("zzqx",), 0),  # held by none
    ]
    for words, matching in searches:
        page, plans = _searched_plans(pg_engine, words)
        assert page.matching == matching, words
        found[words] = [case.id for case, _customer in page.rows]
        page_plan = plans[0]
        assert "customers" in _read_once(page_plan) and "messages" in _read_once(page_plan)
    monkeypatch.setattr("scheduler.casework.inbox.NAMED_MOST", -1)  # every word common
    monkeypatch.setattr("scheduler.casework.inbox.WRITTEN_MOST", -1)
    for words, ids in found.items():
        page, plans = _searched_plans(pg_engine, words)
        assert [case.id for case, _customer in page.rows] == ids
        assert all("hashed" not in plan for plan in plans), plans


def test_postgresql_counts_no_word_it_has_no_trigram_index_for(pg_engine: Engine) -> None:
    """Counting the holders of a word without three letters or digits in a row ("@@@"), or of
    any word where pg_trgm's indexes are missing (migration 0029 goes on without them), would
    read every customer and message: the open cases are walked instead, finding the same."""
    _gmail_customers(pg_engine)
    counting = re.compile(r"count\(\*\)[^(]*\(SELECT messages\.case_id\b")  # `_up_to`
    statements: list[str] = []

    def keep(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    with pg_engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", keep)
        with Session(connection) as session:
            for word, matching in (("puerta", 300), ("@@@", 0)):
                assert open_cases(session, CaseFilter(words=(word,)), me=0, now=NOW).matching == (
                    matching
                )
            assert sum(bool(counting.search(statement)) for statement in statements) == 1
            connection.exec_driver_sql("DROP INDEX ix_messages_case_words")  # rolled back
            statements.clear()
            words = CaseFilter(words=("puerta",))
            assert open_cases(session, words, me=0, now=NOW).matching == 300
            assert not any(counting.search(statement) for statement in statements)
        connection.rollback()

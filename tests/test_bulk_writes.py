"""Many rows written at once: ids come back in the order of the rows, every value goes where
it belongs, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, Integer, String, select, update

from scheduler.bulk_writes import (
    insert_ids,
    insert_rows,
    update_each,
)
from scheduler.db import make_session_factory
from scheduler.lifecycle import Channel
from scheduler.models import Base
from tests.factories import NOW

OUTBOX = Base.metadata.tables["outbox"]
CUSTOMERS = Base.metadata.tables["customers"]


def _row(n: int) -> dict[str, object]:
    return {
        "reference": f"follow-up:{n}",
        "channel": Channel.WHATSAPP if n % 3 else Channel.SMS,
        "to_address": f"+5199{n:07d}",
        "from_address": "outbox-sms",
        "subject": None if n % 2 else f"Asunto {n}",
        "body": f"Hola {n} 👋",
        "html_body": None,
        "headers": {"ContentSid": f"HX{n}"} if n % 3 else {},
        "created_at": NOW,
    }


def test_ids_come_back_in_the_order_of_the_rows(engine: Engine) -> None:
    sessions = make_session_factory(engine, writer=True)
    rows = [_row(n) for n in (5, 1, 4, 2, 3) * 60]  # 300 rows, in no order of their own
    for n, row in enumerate(rows):
        row["reference"] = f"{row['reference']}/{n}"
    with sessions.begin() as session:
        assert insert_ids(session, OUTBOX, []) == []
        before = insert_ids(session, OUTBOX, [_row(0)])
        ids = insert_ids(session, OUTBOX, rows)
    assert len(set(ids)) == 300 and min(ids) > before[0]
    with sessions() as session:
        stored = {r.id: r for r in session.execute(select(OUTBOX))}
    for row, id_ in zip(rows, ids, strict=True):
        got = stored[id_]
        assert (got.reference, got.channel, got.subject, got.body) == (
            row["reference"],
            row["channel"],
            row["subject"],
            row["body"],
        )
        assert got.headers == row["headers"] and got.created_at == NOW


def test_each_row_is_updated_with_its_own_values(engine: Engine) -> None:
    sessions = make_session_factory(engine, writer=True)
    with sessions.begin() as session:
        ids = insert_ids(session, OUTBOX, [_row(n) for n in range(250)])
    changes = [{"i": id_, "b": f"cambiado {id_}"} for id_ in ids[::2]]
    with sessions.begin() as session:
        update_each(
            session,
            changes,
            {"i": Integer(), "b": String()},
            lambda each: update(OUTBOX).where(OUTBOX.c.id == each["i"]).values(body=each["b"]),
        )
        update_each(session, [], {"i": Integer()}, lambda each: update(OUTBOX))
    with sessions() as session:
        bodies = {id_: body for id_, body in session.execute(select(OUTBOX.c.id, OUTBOX.c.body))}
    assert bodies == {
        id_: f"cambiado {id_}" if n % 2 == 0 else f"Hola {n} 👋" for n, id_ in enumerate(ids)
    }


def test_an_insert_returns_the_rows_it_made_read_as_a_query_reads_them(engine: Engine) -> None:
    """Not those a conflict left out; times come back aware, as the model's type reads them."""
    sessions = make_session_factory(engine, writer=True)
    columns = ("name", "phone", "email", "locale", "timezone", "created_at")
    rows = [
        (f"Cliente {n}", f"+5199{n:07d}", None, None, None, NOW) for n in range(1_200)
    ]  # two statements
    returning = ("id", "phone", "created_at")
    with sessions.begin() as session:
        assert insert_rows(session, CUSTOMERS, columns, [], returning=returning) == []
        assert insert_rows(session, CUSTOMERS, columns, rows[:1]) == []
        made = insert_rows(
            session, CUSTOMERS, columns, rows, ignoring_conflicts=True, returning=returning
        )
    assert sorted(phone for _id, phone, _at in made) == [row[1] for row in rows[1:]]
    assert {at for _id, _phone, at in made} == {NOW} and all(at.tzinfo for *_, at in made)
    with sessions() as session:
        stored = {
            id_: phone for id_, phone in session.execute(select(CUSTOMERS.c.id, CUSTOMERS.c.phone))
        }
    assert {id_: phone for id_, phone, _at in made} == {
        id_: phone for id_, phone in stored.items() if phone != rows[0][1]
    }

"""Many rows written at once: ids come back in the order of the rows, every value goes where
it belongs, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, Integer, Select, String, func, select, update

from scheduler.bulk_writes import (
    insert_ids,
    insert_rows,
    update_each,
)
from scheduler.db import Among, make_session_factory
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
            OUTBOX.c.id,
            changes,
            {"i": Integer(), "b": String()},
            lambda each: update(OUTBOX).values(body=each["b"]),
        )
        update_each(session, OUTBOX.c.id, [], {"i": Integer()}, lambda each: update(OUTBOX))
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


ODD_TEXTS = ['"', "\\", "a,b", "{x}", "NULL", "", " ", "it's", "ñandú 👋", "a\nb", None]


def test_odd_text_is_written_as_it_was_given(engine: Engine) -> None:
    """Arrays of text go to PostgreSQL as binary (`db._session_settings`): quotes, braces,
    commas, backslashes, the word NULL and a real null are written as they were given."""
    sessions = make_session_factory(engine, writer=True)
    rows = [_row(n) | {"subject": text} for n, text in enumerate(ODD_TEXTS)]
    with sessions.begin() as session:
        ids = insert_ids(session, OUTBOX, rows)
        update_each(
            session,
            OUTBOX.c.id,
            [{"i": id_, "b": text} for id_, text in zip(ids, reversed(ODD_TEXTS), strict=True)],
            {"i": Integer(), "b": String()},
            lambda each: update(OUTBOX).values(html_body=each["b"]),
        )
    with sessions() as session:
        stored = session.execute(
            select(OUTBOX.c.subject, OUTBOX.c.html_body).order_by(OUTBOX.c.id)
        ).all()
    assert [tuple(row) for row in stored] == list(zip(ODD_TEXTS, reversed(ODD_TEXTS), strict=True))


def test_among_finds_the_rows_of_any_list(engine: Engine) -> None:
    """`Among` is IN on SQLite and `= ANY` of one array on PostgreSQL: the same rows either way,
    for a list of ids or of texts, a set, an empty list, a batch longer than SQLite's IN chunk,
    the same statement run again with other values (SQLAlchemy's cached compilation), and a
    query's values (PostgreSQL: `= ANY (ARRAY(query))`), none when it finds none."""
    sessions = make_session_factory(engine, writer=True)
    with sessions.begin() as session:
        ids = insert_ids(session, OUTBOX, [_row(n) for n in range(1_200)])

    def found(values: Iterable[object] | Select[tuple[int]], column: str = "id") -> list[int]:
        with sessions() as session:
            query = select(OUTBOX.c.id).where(Among(OUTBOX.c[column], values))
            return sorted(session.scalars(query))

    assert found(ids) == ids
    assert found(ids[3:5]) == ids[3:5]
    assert found(set(ids[7:9])) == ids[7:9]
    assert found([]) == []
    assert found([ids[0], -1, ids[0]]) == [ids[0]]
    assert found(["follow-up:4", "follow-up:1", "nobody"], "reference") == [ids[1], ids[4]]
    with sessions.begin() as session:
        [full] = insert_ids(session, OUTBOX, [_row(0) | {"reference": "r" * 64}])
    assert found(["r" * 64], "reference") == [full]
    assert found(["r" * 65], "reference") == []  # longer than the column: not cut to it
    listed = select(OUTBOX.c.id).where(OUTBOX.c.reference.in_(["follow-up:9", "follow-up:2"]))
    assert found(listed) == [ids[2], ids[9]]
    assert found(select(OUTBOX.c.id).where(OUTBOX.c.id < 0)) == []
    with sessions() as session:  # the column's table comes with it, as IN's does
        assert session.scalar(select(func.count()).where(Among(OUTBOX.c.id, ids[:2]))) == 2
    with sessions() as session:
        none = session.scalar(
            select(func.count()).select_from(OUTBOX).where(~Among(OUTBOX.c.id, [*ids, full]))
        )
    assert none == 0


def test_among_is_one_parameter_on_postgresql(engine: Engine) -> None:
    """A batch's thousand ids do not make a statement a thousand parameters long there."""
    few, many = (
        str(select(OUTBOX.c.id).where(Among(OUTBOX.c.id, range(n))).compile(engine))
        for n in (2, 1_000)
    )
    if engine.dialect.name == "postgresql":
        assert few == many and "ANY" in few
    else:
        assert "IN" in few

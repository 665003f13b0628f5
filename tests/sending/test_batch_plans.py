"""How PostgreSQL runs the statements that write a dispatch batch, on a table of some size: the
batch's keys applied where the follow-ups are read. Joined to a batch's thousand ids alone, the
table was planned as a hash of all its rows, built at every claim and every send (6 ms of a
send's 23 at 40 000 follow-ups, growing with the table until the planner turned). With the
keys given, PostgreSQL looks them up in the primary key, or, on a table as small as this one,
reads it once keeping the batch's rows: either way nothing is hashed but the batch."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from scheduler.config import defaults
from scheduler.db import make_session_factory
from scheduler.defaults import install_defaults
from scheduler.sending.sales import record_sales
from tests.dispatching import DAY1, Clock, dispatcher
from tests.factories import NOW, sale_input

SALES = 5_000  # 20 000 follow-ups, the 5 000 day-1 thank-yous due at DAY1


def test_a_pass_writes_its_batches_by_key_not_by_reading_the_table(pg_engine: Engine) -> None:
    config = defaults()
    sessions = make_session_factory(pg_engine, writer=True)
    with sessions.begin() as session:
        install_defaults(session, NOW)
        sales = [sale_input(f"S-{n}", phone=f"+5198{n:07d}") for n in range(SALES)]
        record_sales(session, sales, config=config, now=NOW, actor="test")
    with pg_engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    plans: list[str] = []

    def explain(_conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        """The plan of each batch's write, as the database is just before it runs."""
        if statement.startswith(("UPDATE follow_ups", "WITH due")):
            explained = cursor.connection.execute(f"EXPLAIN {statement}", parameters)
            plans.append("\n".join(row[0] for row in explained))

    event.listen(pg_engine, "before_cursor_execute", explain)
    try:
        summary = dispatcher(sessions, config, Clock(DAY1)).run_pass()
    finally:
        event.remove(pg_engine, "before_cursor_execute", explain)
    assert summary["sent"] == SALES
    claims = [plan for plan in plans if "LockRows" in plan]
    sends = [plan for plan in plans if "unnest" in plan or "Function Scan" in plan]
    assert len(claims) == 6 and len(sends) == 5, plans  # batches of 1 000, then nothing left
    for plan in plans:
        assert "Update on follow_ups" in plan, plan
        lines = plan.splitlines()
        for n, line in enumerate(lines):  # read whole only keeping the batch's keys
            if "Seq Scan on follow_ups" in line:
                assert "Filter:" in lines[n + 1] and "id = ANY" in lines[n + 1], plan

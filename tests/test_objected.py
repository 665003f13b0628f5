"""Whether each follow-up was objected to, kept by the database (migration 0043): "resolved" when
an objection to it is in a resolved case, "objected" when none is. Whatever writes the
replies or the cases, `objected` and the tallies that count it are what the replies and
cases say, on SQLite and PostgreSQL (there once the worker has looked: PostgreSQL's
triggers only note the follow-ups, and lock nothing). Writers at once on PostgreSQL leave
the truth once the worker has looked, and the worker waits for nothing either. The replies
already there fill it, and it is taken back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, delete, event, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler import schema
from scheduler.config import Config, defaults
from scheduler.db import wait_for_locks
from scheduler.figures import objections
from scheduler.figures.tallies import RESOLVED
from scheduler.lifecycle import CaseStatus, Direction
from scheduler.listening.classify import Label
from scheduler.models import Case, FollowUp, Message, ObjectedRecheck
from scheduler.schema import alembic_config
from scheduler.worker import run_pass
from tests.dispatching import Clock, dispatcher
from tests.factories import NOW, inbound_sms
from tests.migrating import blank  # noqa: F401 - fixture
from tests.racing import at_once
from tests.tallied import agreed, kept_objected, sent_three

__all__ = ["blank"]
DAY1 = NOW + timedelta(days=1)
OBJECTED = "objected"
COPIED = (
    "sale_id, product_id, step_id, customer_id, channel, due_at, status, attempts, facts, "
    "sent_at, created_at, updated_at"
)


def _objection(follow_up: int | None, at: datetime = DAY1, **fields: Any) -> Message:
    return inbound_sms(
        "me cobraron dos veces", at, follow_up_id=follow_up, label=Label.OBJECTION.value, **fields
    )


def _case(session: Session, follow_up: int) -> Case:
    """An open case of the customer the follow-up was sent to."""
    customer = session.scalar(select(FollowUp.customer_id).where(FollowUp.id == follow_up))
    assert customer is not None
    case = Case(
        customer_id=customer, reason="objection", opened_at=DAY1, first_response_due_at=DAY1
    )
    session.add(case)
    session.flush()
    return case


def _case_with_a_question(session: Session, follow_up: int) -> int:
    """An open case of the follow-up's customer, holding a reply to it read as a question
    (an email that storing put in the case, say); its id."""
    case = _case(session, follow_up).id
    session.add(
        inbound_sms(
            "me cobraron dos veces",
            DAY1,
            follow_up_id=follow_up,
            case_id=case,
            label=Label.QUESTION.value,
        )
    )
    return case


def test_objected_follows_every_kind_of_write_to_the_replies_and_cases(
    engine: Engine, config: Config
) -> None:
    (first, second, third), sessions = sent_three(engine, config)
    with sessions.begin() as session:
        said = _objection(first)
        session.add(said)
        session.add(inbound_sms("gracias", DAY1, follow_up_id=second, label="positive"))
        agreed(session)
        assert (kept_objected(session)[first], kept_objected(session)[second]) == (OBJECTED, None)

        case = _case(session, first)
        said.case_id = case.id  # read by the worker: it goes to a person
        agreed(session)
        assert kept_objected(session)[first] == OBJECTED
        case.status = CaseStatus.RESOLVED  # staff solved it
        agreed(session)
        assert kept_objected(session)[first] == RESOLVED
        case.status = CaseStatus.OPEN  # the customer says it is not
        agreed(session)
        assert kept_objected(session)[first] == OBJECTED
        case.status = CaseStatus.RESOLVED
        other = _case(session, first)
        again = _objection(first, DAY1 + timedelta(days=2), case_id=other.id)
        session.add(again)
        agreed(session)
        assert kept_objected(session)[first] == RESOLVED  # one of its objections is solved

        said.label = Label.QUESTION.value  # read again: a question, not an objection
        agreed(session)
        assert kept_objected(session)[first] == OBJECTED  # the one left is in an open case
        again.follow_up_id = second  # moved by a person to the follow-up it answers
        agreed(session)
        assert (kept_objected(session)[first], kept_objected(session)[second]) == (None, OBJECTED)
        again.case_id = case.id  # moved to the resolved case
        agreed(session)
        assert kept_objected(session)[second] == RESOLVED
        again.direction = Direction.OUTBOUND  # typed by hand: it is not a reply
        agreed(session)
        assert kept_objected(session)[second] is None
        again.direction = Direction.INBOUND
        again.case_id = other.id  # back to the open case
        session.add(_objection(None, case_id=other.id))  # about no follow-up: counts nowhere
        session.execute(update(FollowUp).values(objected=RESOLVED))  # nonsense typed by hand
        session.execute(  # and a follow-up written by hand with it: nothing objects to it
            text(
                f"INSERT INTO follow_ups ({COPIED}, case_id, objected) SELECT {COPIED}, "
                ":case, 'resolved' FROM follow_ups WHERE id = :first"
            ),
            {"case": other.id, "first": first},
        )
        agreed(session)
        assert kept_objected(session)[second] == OBJECTED
        session.add(_objection(third, case_id=_case(session, third).id))
        session.execute(update(Case).values(status=CaseStatus.RESOLVED))  # two open at once
        agreed(session)
        assert kept_objected(session)[second] == kept_objected(session)[third] == RESOLVED
        session.delete(again)
        agreed(session)
        assert kept_objected(session)[second] is None
        session.execute(delete(Message).where(Message.follow_up_id == third))
        agreed(session)
        assert set(kept_objected(session).values()) == {None}
        session.add(_objection(first, case_id=case.id))
        agreed(session)
        assert kept_objected(session)[first] == RESOLVED
        if engine.dialect.name == "postgresql":
            # CASCADE: the copy of what went out (migration 0041) refers to the messages.
            session.execute(text("TRUNCATE messages CASCADE"))
            agreed(session)
            assert set(kept_objected(session).values()) == {None}


def _resolve(case: int) -> Callable[[Session], object]:
    def write(session: Session) -> None:
        session.execute(update(Case).where(Case.id == case).values(status=CaseStatus.RESOLVED))

    return write


def _join(follow_up: int, case: int, how: str) -> Callable[[Session], object]:
    """An objection joining the case: written so, a reply the worker reads as one and puts
    in it, or a reply in it that a person reads again as one."""

    def write(session: Session) -> None:
        if how == "written":
            session.add(_objection(follow_up, case_id=case))
        else:
            joined = {"case_id": case} if how == "read-later" else {}
            session.execute(
                update(Message)
                .where(Message.follow_up_id == follow_up)
                .values(label=Label.OBJECTION.value, **joined)
            )
        session.flush()

    return write


@pytest.mark.parametrize("how", ["written", "read-later", "relabelled"])
@pytest.mark.parametrize("resolved_first", [True, False], ids=["resolved-first", "joined-first"])
def test_an_objection_joining_a_case_as_it_is_resolved_is_read_again_by_the_worker(
    pg_engine: Engine, how: str, resolved_first: bool
) -> None:
    """PostgreSQL: staff resolve a case while the worker puts an objection in it, or a
    person reads a reply in it again as one. Neither waits for a lock of 0043's (a reply put
    in a case waits for the case, 0042's); whichever writes first, the follow-up is noted,
    and the worker's next look writes what both committed."""
    (follow_up, _second, _third), sessions = sent_three(pg_engine, defaults())
    with sessions.begin() as session:
        case = _case(session, follow_up).id
        if how != "written":  # stored by the webhook; in the case already, as a question
            in_case: dict[str, Any] = (
                {"case_id": case, "label": Label.QUESTION.value} if how == "relabelled" else {}
            )
            session.add(
                inbound_sms("me cobraron dos veces", DAY1, follow_up_id=follow_up, **in_case)
            )
    resolve, join = _resolve(case), _join(follow_up, case, how)
    first, second = (resolve, join) if resolved_first else (join, resolve)
    waits = how != "relabelled"  # 0042's triggers lock the case of a reply put in it
    at_once(pg_engine, sessions, first, second, "the second writer", waits=waits)
    with sessions() as session:
        assert _noted(session) == [follow_up]
    _looked_at(sessions, follow_up, RESOLVED)


@pytest.mark.parametrize(
    ("solved_first", "expected"),
    [(False, OBJECTED), (True, RESOLVED)],
    ids=["solved-removed-then-open-added", "solved-added-then-open-removed"],
)
def test_two_objections_to_one_follow_up_written_at_once_leave_the_truth(
    pg_engine: Engine, solved_first: bool, expected: str
) -> None:
    """PostgreSQL: one transaction adds or removes an objection in a resolved case, another
    one in no case, to the same follow-up, at once (the second waits for the follow-up's
    row, 0024's lock). Both note it, and the worker's next look writes what both
    committed."""
    (follow_up, _second, _third), sessions = sent_three(pg_engine, defaults())
    with sessions.begin() as session:
        case = _case(session, follow_up)
        case.status = CaseStatus.RESOLVED
        there = _objection(follow_up) if solved_first else _objection(follow_up, case_id=case.id)
        session.add(there)
        session.flush()
        case_id, there_id = case.id, there.id

    def solved(session: Session) -> None:
        if solved_first:
            session.add(_objection(follow_up, case_id=case_id))
        else:
            session.execute(delete(Message).where(Message.id == there_id))
        session.flush()

    def unsolved(session: Session) -> None:
        if solved_first:
            session.execute(delete(Message).where(Message.id == there_id))
        else:
            session.add(_objection(follow_up))
        session.flush()

    at_once(pg_engine, sessions, solved, unsolved, "the second writer (the follow-up's row)")
    _looked_at(sessions, follow_up, expected)


def test_a_case_resolved_while_a_batch_holds_its_follow_up_leaves_it_to_the_worker(
    pg_engine: Engine,
) -> None:
    """PostgreSQL: the worker's batch of replies has locked a follow-up (a reply to it read,
    its `replied` written) and will lock the customer's case next, as `triage` does. A staff
    member resolving that case meanwhile does not wait for the follow-up (both would wait
    for each other, and PostgreSQL would end one): the case's trigger notes it, and the
    worker writes it once the batch is done."""
    (follow_up, _second, _third), sessions = sent_three(pg_engine, defaults())
    with sessions.begin() as session:
        case = _case(session, follow_up)
        session.add(_objection(follow_up, case_id=case.id))
        case_id = case.id
    assert objections.recheck(sessions) == 1
    with sessions() as batch, sessions() as staff:
        batch.add(inbound_sms("gracias, ya llegó", DAY1, follow_up_id=follow_up))
        batch.flush()  # the follow-up's row is the batch's now
        staff.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting would fail here
        _resolve(case_id)(staff)
        staff.commit()
        batch.commit()
    with sessions() as session:
        assert kept_objected(session)[follow_up] == OBJECTED  # not written yet
        assert _noted(session) == [follow_up]
    _looked_at(sessions, follow_up, RESOLVED)
    assert objections.recheck(sessions) == 0


def test_a_reply_read_again_as_an_objection_locks_neither_its_follow_up_nor_its_case(
    pg_engine: Engine,
) -> None:
    """PostgreSQL: a reply in a case read again as an objection (an email that storing put
    in the customer's case, read by the worker's batch) notes its follow-up and locks
    nothing else: other transactions take the follow-up and the case at once (had it locked
    the follow-up, a batch holding it and waiting for the case would deadlock with the
    email's storing, which locks the case, then the follow-up)."""
    (follow_up, _second, _third), sessions = sent_three(pg_engine, defaults())
    with sessions.begin() as session:
        case = _case_with_a_question(session, follow_up)
    with sessions() as batch, sessions() as other:
        _join(follow_up, case, "relabelled")(batch)
        other.scalar(
            select(FollowUp.id).where(FollowUp.id == follow_up).with_for_update(nowait=True)
        )
        other.scalar(select(Case.id).where(Case.id == case).with_for_update(nowait=True))
        other.commit()
        batch.commit()
    with sessions() as session:
        assert _noted(session) == [follow_up]
    _looked_at(sessions, follow_up, OBJECTED)


def test_the_worker_leaves_what_another_transaction_holds_for_its_next_look(
    pg_engine: Engine,
) -> None:
    """PostgreSQL: the worker waits for nothing. A noted follow-up whose objection's case
    another transaction holds (staff changing it) stays noted until it is free; a note of a
    follow-up since deleted goes."""
    (follow_up, _second, _third), sessions = sent_three(pg_engine, defaults())
    with sessions.begin() as session:
        case = _case(session, follow_up)
        session.add(_objection(follow_up, case_id=case.id))  # in a case: noted
        session.add(ObjectedRecheck(follow_up_id=-1))  # no such follow-up
        case_id = case.id
    with sessions() as staff:
        staff.scalar(select(Case.id).where(Case.id == case_id).with_for_update())
        read: list[int] = []  # in a thread: a worker that waited would never end
        looking = threading.Thread(
            target=lambda: read.append(objections.recheck(sessions)), daemon=True
        )
        looking.start()
        looking.join(timeout=30)
        assert read == [1], "the worker waited for the case"  # it read the one gone
        with sessions() as session:
            assert _noted(session) == [follow_up]
    assert objections.recheck(sessions) == 1
    with sessions() as session:
        assert _noted(session) == []
        agreed(session)


def test_an_objection_committed_as_the_worker_reads_leaves_the_case_being_resolved(
    pg_engine: Engine,
) -> None:
    """PostgreSQL: the worker reads a follow-up again (an older note) while a staff member
    resolves a case holding a reply to it, which a batch reads again as an objection and
    commits just before the worker deletes the follow-up's notes. The worker locks the cases
    after that deletion, so it sees the objection's case, finds it held and puts the notes
    back; once staff commit, the next look writes "resolved" (had it locked the cases before
    the deletion, it would have deleted the batch's note and written "objected" for good)."""
    (follow_up, _second, _third), sessions = sent_three(pg_engine, defaults())
    with sessions.begin() as session:
        case = _case_with_a_question(session, follow_up)
        session.add(ObjectedRecheck(follow_up_id=follow_up))  # an older change's
    with sessions() as staff, sessions() as batch:
        _resolve(case)(staff)  # no objection in the case yet: nothing noted
        wait_for_locks(batch, 5)  # the relabelling waits for nothing: it would fail here
        _join(follow_up, case, "relabelled")(batch)

        def committing(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            if statement.startswith("DELETE FROM objected_rechecks") and batch.in_transaction():
                batch.commit()

        event.listen(pg_engine, "before_cursor_execute", committing)
        try:
            read = objections.recheck(sessions)
        finally:
            event.remove(pg_engine, "before_cursor_execute", committing)
        staff.commit()
    assert read == 0  # the case was held: left for later
    with sessions() as session:
        assert _noted(session) == [follow_up]
    _looked_at(sessions, follow_up, RESOLVED)


def test_a_pass_of_dispatch_once_writes_what_was_noted(pg_engine: Engine) -> None:
    """PostgreSQL: `postventa dispatch --once`, run by cron without a worker, writes the
    noted follow-ups after its pass."""
    config = defaults()
    (follow_up, _second, _third), sessions = sent_three(pg_engine, config)
    with sessions.begin() as session:
        session.add(_objection(follow_up, needs_human=True))  # read already
    summary = run_pass(dispatcher(sessions, config, Clock(DAY1)))
    assert summary["objections_read"] == 1
    with sessions() as session:
        assert kept_objected(session)[follow_up] == OBJECTED
        assert _noted(session) == []


def _looked_at(sessions: sessionmaker[Session], follow_up: int, expected: str) -> None:
    """The worker's next look reads the follow-up again: it says `expected`, nothing is left
    noted, and the tallies agree."""
    assert objections.recheck(sessions) == 1
    with sessions() as session:
        assert kept_objected(session)[follow_up] == expected
        assert _noted(session) == []
        agreed(session)


def _noted(session: Session) -> list[int]:
    """The follow-ups noted for the worker, each once."""
    return sorted(set(session.scalars(select(ObjectedRecheck.follow_up_id))))


def test_objected_is_filled_from_the_objections_there_and_taken_back(blank: Engine) -> None:
    """Down to the tallies without `objected` and up again: the objections already there
    fill it and the tallies are counted anew, on both databases."""
    schema.upgrade(blank)
    (first, second, third), sessions = sent_three(blank, defaults())
    with sessions.begin() as session:
        case = _case(session, first)
        session.add(_objection(first, case_id=case.id))
        session.add(_objection(second))
        case.status = CaseStatus.RESOLVED
    alembic = alembic_config(blank)
    with blank.begin() as connection:
        alembic.attributes["connection"] = connection
        command.downgrade(alembic, "0042")
    with blank.connect() as connection:
        columns = {
            column["name"] for column in inspect(connection).get_columns("follow_up_tallies")
        }
        assert "objected" not in columns and "product_id" in columns
        assert connection.scalar(text("SELECT sum(n) FROM follow_up_tallies")) == 12
    with sessions.begin() as session:  # written while nothing kept `objected`
        session.add(_objection(third))
        session.execute(update(FollowUp).where(FollowUp.id == first).values(status="delivered"))
    with blank.connect() as connection:  # the tallies are kept as 0042 kept them
        delivered = "SELECT sum(n) FROM follow_up_tallies WHERE status = 'delivered'"
        assert connection.scalar(text(delivered)) == 1
        assert "objected_rechecks" not in inspect(connection).get_table_names()
        assert "objected" not in {c["name"] for c in inspect(connection).get_columns("follow_ups")}
    schema.upgrade(blank)
    with sessions() as session:
        kept = kept_objected(session)
        assert (kept[first], kept[second], kept[third]) == (RESOLVED, OBJECTED, OBJECTED)
        agreed(session)

"""The first answers' minutes kept on the cases by the worker (`figures.first_answers`): the
dashboard reads them where they were counted in the hours in force, and counts the others as
it reads them; both give the figures of `tests/figures_data.py`."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import Engine, inspect, select, text, update
from sqlalchemy.orm import Session

from scheduler import schema
from scheduler.casework.business_hours import opening_fingerprint
from scheduler.config import OpeningHours, parse_window
from scheduler.db import make_session_factory
from scheduler.figures.first_answers import FirstAnswers, measure
from scheduler.figures.summary import figures
from scheduler.models import Case
from scheduler.schema import alembic_config
from tests.figures_data import LIMA, NOW, OPENING, PERIOD, at, build
from tests.migrating import blank  # noqa: F401 - fixture

__all__ = ["blank"]

WEEKDAYS_ONLY = {day: window for day, window in OPENING.items() if day != "sat"}


def _first_answers(session: Session, opening: OpeningHours = OPENING) -> FirstAnswers:
    return figures(session, PERIOD, now=NOW, opening=opening).first_answers


def _kept(session: Session) -> list[tuple[int | None, str | None]]:
    return [
        (row.first_answer_minutes, row.minutes_counted_with)
        for row in session.execute(
            select(Case.first_answer_minutes, Case.minutes_counted_with).order_by(Case.id)
        )
    ]


def test_the_minutes_the_worker_keeps_give_the_figures_counted_as_read(session: Session) -> None:
    build(session)
    as_read = _first_answers(session)
    assert as_read.minutes == [60, 60, 330]
    kept = opening_fingerprint(OPENING, LIMA)
    assert measure(session, OPENING, LIMA) == 4  # every answered case, the one before it too
    # The unanswered cases keep none: nothing to count yet.
    assert _kept(session) == [
        (60, kept),
        (None, None),
        (0, kept),  # Sunday evening, answered as Monday opened
        (None, None),
        (60, kept),
        (330, kept),
    ]
    assert _first_answers(session) == as_read
    assert measure(session, OPENING, LIMA) == 0  # none left to count


def test_the_figures_read_the_minutes_kept(session: Session) -> None:
    """A kept value is what the page shows (here one written by hand): not counted again."""
    build(session)
    measure(session, OPENING, LIMA)
    late = session.scalars(select(Case.id).where(Case.first_responded_at == at(16, 10))).one()
    session.execute(update(Case).where(Case.id == late).values(first_answer_minutes=331))
    assert _first_answers(session).minutes == [60, 60, 331]


def test_hours_changed_since_are_counted_again(session: Session) -> None:
    """Saturday closed: the Friday evening case waited 30 + 60 minutes, the one answered on a
    Saturday none. The page counts them so before the worker has looked, and the worker then
    keeps those."""
    build(session)
    measure(session, OPENING, LIMA)
    expected = FirstAnswers([0, 60, 90], on_time=2, decided=4)
    assert _first_answers(session, WEEKDAYS_ONLY) == expected
    assert measure(session, WEEKDAYS_ONLY, LIMA) == 4
    changed = opening_fingerprint(WEEKDAYS_ONLY, LIMA)
    assert {counted_with for _minutes, counted_with in _kept(session)} == {changed, None}
    assert _first_answers(session, WEEKDAYS_ONLY) == expected
    assert _first_answers(session) == FirstAnswers([60, 60, 330], on_time=2, decided=4)


def test_the_fingerprint_is_of_the_hours_and_the_zone() -> None:
    reordered = dict(reversed(list(OPENING.items())))
    assert opening_fingerprint(reordered, LIMA) == opening_fingerprint(OPENING, LIMA)
    later = OPENING | {"mon": parse_window("10:00-18:00")}
    assert len({opening_fingerprint(hours, LIMA) for hours in (OPENING, later)}) == 2
    assert opening_fingerprint(OPENING, LIMA) != opening_fingerprint(OPENING, ZoneInfo("UTC"))


def test_the_migration_adds_the_minutes_empty_and_takes_them_away(blank: Engine) -> None:
    """Upgraded, the answered cases are counted by the page until the worker has looked;
    downgraded, the columns are gone and the cases kept."""
    schema.upgrade(blank, "0036")
    sessions = make_session_factory(blank)
    schema.upgrade(blank)
    with sessions() as session:
        build(session)
        assert _kept(session)[0] == (None, None)
        assert _first_answers(session).minutes == [60, 60, 330]
        measure(session, OPENING, LIMA)
        session.commit()
    alembic = alembic_config(blank)
    with blank.begin() as connection:
        alembic.attributes["connection"] = connection
        command.downgrade(alembic, "0036")
    with blank.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("cases")}
        assert {"first_answer_minutes", "minutes_counted_with"}.isdisjoint(columns)
        assert connection.scalar(text("SELECT count(*) FROM cases")) == 6
    schema.upgrade(blank)
    with sessions() as session:
        assert _first_answers(session).minutes == [60, 60, 330]

"""Case deadlines in opening hours, in the business's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.casework.business_hours import add_opening_hours
from scheduler.config import defaults

LIMA = ZoneInfo("America/Lima")
MADRID = ZoneInfo("Europe/Madrid")
HOURS = defaults().cases.opening_hours  # Mon-Fri 09:00-18:00, Sat 09:00-13:00


@pytest.mark.parametrize(
    "start, hours, due",
    [
        (datetime(2026, 11, 23, 10, 0), 4, datetime(2026, 11, 23, 14, 0)),  # Monday morning
        (datetime(2026, 11, 23, 16, 0), 4, datetime(2026, 11, 24, 11, 0)),  # over the night
        (datetime(2026, 11, 23, 7, 30), 1, datetime(2026, 11, 23, 10, 0)),  # before opening
        (datetime(2026, 11, 27, 17, 0), 4, datetime(2026, 11, 28, 12, 0)),  # Fri -> Saturday
        (datetime(2026, 11, 28, 12, 0), 4, datetime(2026, 11, 30, 12, 0)),  # Sat -> Monday
        (datetime(2026, 11, 29, 15, 0), 0.5, datetime(2026, 11, 30, 9, 30)),  # Sunday: closed
        (datetime(2026, 11, 23, 20, 0), 20, datetime(2026, 11, 26, 11, 0)),  # 9 h + 9 h + 2 h
    ],
)
def test_deadlines_count_only_opening_hours(start: datetime, hours: float, due: datetime) -> None:
    got = add_opening_hours(start.replace(tzinfo=LIMA), hours, HOURS, LIMA)
    assert got == due.replace(tzinfo=LIMA)


def test_a_dst_change_is_a_shorter_night_not_a_lost_hour() -> None:
    # Madrid moves to summer time on Sunday 2027-03-28; Saturday 12:00 + 2 h of opening time
    # is Saturday 13:00 (one hour) then Monday 10:00, local time, on either side of the change.
    start = datetime(2027, 3, 27, 12, 0, tzinfo=MADRID)
    assert add_opening_hours(start, 2, HOURS, MADRID) == datetime(2027, 3, 29, 10, 0, tzinfo=MADRID)


def test_one_open_day_a_week_is_enough() -> None:
    only_monday = {"mon": HOURS["mon"]}
    start = datetime(2026, 11, 24, 10, 0, tzinfo=LIMA)  # Tuesday
    due = add_opening_hours(start, 10, only_monday, LIMA)
    assert due == datetime(2026, 12, 7, 10, 0, tzinfo=LIMA)  # 9 h next Monday, 1 h the one after

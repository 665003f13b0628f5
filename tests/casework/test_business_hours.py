"""Case deadlines in opening hours, in the business's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.casework.business_hours import add_opening_hours, opening_times
from scheduler.config import WEEKDAYS, OpeningHours, defaults

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


def one_at_a_time(start: datetime, end: datetime, opening: OpeningHours, tz: ZoneInfo) -> timedelta:
    """The opening time between two moments, window by window: what `opening_times` must give
    for each span, however it counts."""
    total, day = timedelta(0), start.astimezone(tz).date()
    while day <= end.astimezone(tz).date():
        window = opening.get(WEEKDAYS[day.weekday()])
        if window is not None:
            opens = datetime.combine(day, window.start, tzinfo=tz)
            closes = datetime.combine(day, window.end, tzinfo=tz)
            total += max(timedelta(0), min(closes, end) - max(opens, start))
        day += timedelta(days=1)
    return total


def test_opening_times_of_spans_by_hand() -> None:
    spans = [
        (datetime(2026, 11, 27, 17, 30), datetime(2026, 11, 30, 10, 0)),  # Fri 0.5 h, Sat 4, Mon 1
        (datetime(2026, 11, 23, 7, 0), datetime(2026, 11, 23, 8, 0)),  # before opening: none
        (datetime(2026, 11, 29, 10, 0), datetime(2026, 11, 29, 12, 0)),  # Sunday: none
        (datetime(2026, 11, 23, 12, 0), datetime(2026, 11, 23, 11, 0)),  # the end first: none
        (datetime(2026, 11, 28, 12, 0), datetime(2026, 12, 1, 9, 30)),  # Sat 1 h, Mon 9, Tue 0.5
    ]
    local = [(start.replace(tzinfo=LIMA), end.replace(tzinfo=LIMA)) for start, end in spans]
    hours = [took / timedelta(hours=1) for took in opening_times(local, HOURS, LIMA)]
    assert hours == [5.5, 0, 0, 0, 10.5]
    assert opening_times([], HOURS, LIMA) == []


@given(
    st.lists(
        st.tuples(
            st.datetimes(datetime(2027, 3, 20), datetime(2027, 4, 10)),
            st.timedeltas(timedelta(hours=-2), timedelta(days=12)),
        ),
        max_size=30,
    ),
    st.sampled_from([LIMA, MADRID, ZoneInfo("Asia/Kathmandu"), ZoneInfo("Pacific/Chatham")]),
)
@settings(max_examples=150, deadline=None)
def test_opening_times_are_each_spans_own(
    spans: list[tuple[datetime, timedelta]], tz: ZoneInfo
) -> None:
    """Any spans (across a DST change in Madrid and Chatham), counted together or one by one."""
    moments = [
        (start.replace(tzinfo=UTC), (start + took).replace(tzinfo=UTC)) for start, took in spans
    ]
    assert opening_times(moments, HOURS, tz) == [
        one_at_a_time(start, end, HOURS, tz) for start, end in moments
    ]

"""Planning: due times in the customer's window and days, across DST, with a grace for the late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.config import parse_window
from scheduler.lifecycle import Anchor, Channel, FollowUpStatus
from scheduler.sending.due_times import (
    SendRules,
    Step,
    fit_to_window,
    parse_condition,
    plan_after_score,
    plan_sale,
)

LIMA = ZoneInfo("America/Lima")
NEW_YORK = ZoneInfo("America/New_York")
MADRID = ZoneInfo("Europe/Madrid")
MON_SAT = ("mon", "tue", "wed", "thu", "fri", "sat")


def rules(
    tz: ZoneInfo = LIMA, window: str = "09:00-20:00", days: tuple[str, ...] = MON_SAT
) -> SendRules:
    return SendRules(tz=tz, window=parse_window(window), days=days)


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def step(key: str, days: float, anchor: Anchor = Anchor.SALE, condition: str | None = None) -> Step:
    return Step(
        id=sum(map(ord, key)),
        key=key,
        anchor=anchor,
        offset=timedelta(days=days),
        channel=Channel.SMS,
        condition=parse_condition(condition) if condition else None,
    )


def test_inside_the_window_is_kept() -> None:
    at = local(LIMA, 2026, 11, 24, 10, 15)  # a Tuesday
    assert fit_to_window(at, rules()) == at.astimezone(UTC)


def test_before_the_window_moves_to_its_start() -> None:
    at = local(LIMA, 2026, 11, 24, 6, 0)
    assert fit_to_window(at, rules()) == local(LIMA, 2026, 11, 24, 9, 0)


def test_after_the_window_moves_to_the_next_day() -> None:
    at = local(LIMA, 2026, 11, 24, 20, 0)  # the end is exclusive
    assert fit_to_window(at, rules()) == local(LIMA, 2026, 11, 25, 9, 0)


def test_sunday_moves_to_monday() -> None:
    saturday_night = local(LIMA, 2026, 11, 28, 21, 0)
    assert fit_to_window(saturday_night, rules()) == local(LIMA, 2026, 11, 30, 9, 0)


def test_window_is_in_the_customers_time_zone_not_utc() -> None:
    at = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)  # 08:30 in New York, 14:30 in Madrid
    assert fit_to_window(at, rules(NEW_YORK)) == local(NEW_YORK, 2026, 11, 24, 9, 0)
    assert fit_to_window(at, rules(MADRID)) == at


def test_only_some_days() -> None:
    at = local(LIMA, 2026, 11, 24, 12, 0)  # Tuesday
    assert fit_to_window(at, rules(days=("fri",))) == local(LIMA, 2026, 11, 27, 9, 0)


def test_spring_forward_keeps_local_wall_clock() -> None:
    # 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT.
    before = local(NEW_YORK, 2026, 3, 7, 21, 0)
    fitted = fit_to_window(before, rules(NEW_YORK))
    assert fitted.astimezone(NEW_YORK).hour == 9
    assert fitted == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Sunday skipped; 09:00 EDT


def test_window_starting_inside_a_dst_gap_lands_after_it() -> None:
    at = local(NEW_YORK, 2026, 3, 8, 1, 0)
    fitted = fit_to_window(at, rules(NEW_YORK, "02:30-05:00", days=("sun",)))
    assert fitted.astimezone(NEW_YORK).hour == 3  # 02:30 does not exist that day
    assert fitted.astimezone(NEW_YORK).date().isoformat() == "2026-03-08"


def test_fall_back_repeated_hour_is_compared_as_instants() -> None:
    # 2026-11-01: New York repeats 01:00-02:00. The second 01:30 (EST) is after a 01:45 EDT end.
    second_pass = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    fitted = fit_to_window(second_pass, rules(NEW_YORK, "00:00-01:45", days=("sun", "mon")))
    assert fitted == local(NEW_YORK, 2026, 11, 2, 0, 0)


def test_each_day_and_zone_keeps_its_own_window() -> None:
    """A day's window is worked out once per day and zone: two zones, and the days either side
    of New York's spring forward, asked in turn, each keep their own (09:00 is 14:00 UTC on
    Saturday there and 13:00 on Monday)."""
    every_day = (*MON_SAT, "sun")
    asked = [
        (local(NEW_YORK, 2026, 3, 7, 6, 0), NEW_YORK, datetime(2026, 3, 7, 14, 0, tzinfo=UTC)),
        (local(MADRID, 2026, 3, 7, 6, 0), MADRID, datetime(2026, 3, 7, 8, 0, tzinfo=UTC)),
        (local(NEW_YORK, 2026, 3, 9, 6, 0), NEW_YORK, datetime(2026, 3, 9, 13, 0, tzinfo=UTC)),
        (local(NEW_YORK, 2026, 3, 7, 20, 30), NEW_YORK, datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        (local(MADRID, 2026, 3, 9, 6, 0), MADRID, datetime(2026, 3, 9, 8, 0, tzinfo=UTC)),
        (local(LIMA, 2026, 3, 7, 6, 0), LIMA, datetime(2026, 3, 7, 14, 0, tzinfo=UTC)),
    ]
    for at, tz, due in asked:
        assert fit_to_window(at, rules(tz, days=every_day)) == due
    assert fit_to_window(asked[0][0], rules(NEW_YORK, "10:00-20:00", every_day)) == datetime(
        2026, 3, 7, 15, 0, tzinfo=UTC
    )


def test_plan_sale_dates_each_step_from_the_sale() -> None:
    sold = local(LIMA, 2026, 11, 23, 19, 30)  # Monday evening
    steps = [step("day1", 1), step("day7", 7), step("day21", 21)]
    planned = plan_sale(steps, sold_at=sold, renewal_days=None, rules=rules(), now=sold)
    assert [p.status for p in planned] == [FollowUpStatus.SCHEDULED] * 3
    assert [p.due_at.astimezone(LIMA) for p in planned] == [
        local(LIMA, 2026, 11, 24, 19, 30),
        local(LIMA, 2026, 11, 30, 19, 30),
        local(LIMA, 2026, 12, 14, 19, 30),
    ]


def test_day_offsets_keep_the_local_time_across_dst() -> None:
    # 2026-03-08: New York moves from EST to EDT between the sale and day 7.
    sold = local(NEW_YORK, 2026, 3, 5, 19, 30)  # Thursday, 00:30 UTC the next day
    (week,) = plan_sale(
        [step("day7", 7)], sold_at=sold, renewal_days=None, rules=rules(NEW_YORK), now=sold
    )
    # Adding 7 x 24 h in UTC would give 20:30 EDT, outside the window, and move it a day.
    assert week.due_at == local(NEW_YORK, 2026, 3, 12, 19, 30)
    assert week.due_at == datetime(2026, 3, 12, 23, 30, tzinfo=UTC)


def test_steps_overdue_beyond_grace_are_skipped_with_a_reason() -> None:
    sold = local(LIMA, 2026, 11, 1, 12, 0)
    now = local(LIMA, 2026, 11, 10, 12, 0)
    planned = plan_sale(
        [step("day1", 1), step("day7", 7), step("day21", 21)],
        sold_at=sold,
        renewal_days=None,
        rules=rules(),
        now=now,
    )
    day1, day7, day21 = planned
    assert day1.status == FollowUpStatus.SKIPPED
    assert day1.reason == "overdue by 8 d 0 h when planned (grace 2 d 0 h)"
    assert day7.status == FollowUpStatus.SCHEDULED  # 2 days late: inside the grace, sent now
    assert day7.due_at == now
    assert day21.status == FollowUpStatus.SCHEDULED


def test_renewal_steps_only_for_products_that_renew() -> None:
    sold = local(LIMA, 2026, 11, 23, 12, 0)
    reminder = step("renewal", -14, anchor=Anchor.RENEWAL)
    assert plan_sale([reminder], sold_at=sold, renewal_days=None, rules=rules(), now=sold) == []
    (planned,) = plan_sale([reminder], sold_at=sold, renewal_days=365, rules=rules(), now=sold)
    assert planned.due_at == local(LIMA, 2027, 11, 9, 12, 0)


def test_score_steps_wait_for_a_score_that_meets_their_condition() -> None:
    sold = local(LIMA, 2026, 11, 23, 12, 0)
    review = step("review", 1, anchor=Anchor.SCORE, condition="score >= 9")
    handoff = step("handoff", 0, anchor=Anchor.SCORE, condition="score <= 6")
    steps = [review, handoff]
    assert plan_sale(steps, sold_at=sold, renewal_days=None, rules=rules(), now=sold) == []
    at = local(LIMA, 2026, 12, 14, 21, 0)
    (high,) = plan_after_score(steps, score=10, at=at, rules=rules(), now=at)
    assert high.step_id == review.id
    assert high.due_at == local(LIMA, 2026, 12, 16, 9, 0)  # a day later is 21:00: after the window
    (low,) = plan_after_score(steps, score=3, at=at, rules=rules(), now=at)
    assert low.step_id == handoff.id
    assert low.due_at == local(LIMA, 2026, 12, 15, 9, 0)
    assert plan_after_score(steps, score=8, at=at, rules=rules(), now=at) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("score => 9", "expected something like 'score >= 9'"),
        ("mood >= 3", "unknown fact 'mood'"),
        ("score >= 11", "a score goes from 0 to 10"),
    ],
)
def test_bad_conditions_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_condition(text)


def test_condition_without_the_fact_does_not_hold() -> None:
    assert not parse_condition("score >= 9").holds({})
    assert parse_condition("score < 7").holds({"score": 6})

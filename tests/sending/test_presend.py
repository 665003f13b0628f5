"""The checks made again when a follow-up's turn comes, and the retry backoff."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.config import TimeWindow
from scheduler.sending.due_times import SendRules
from scheduler.sending.presend import RETRY_CAP, Action, Decision, Situation, decide, retry_delay

LIMA = ZoneInfo("America/Lima")
RULES = SendRules(
    tz=LIMA,
    window=TimeWindow(time(9), time(20)),
    days=("mon", "tue", "wed", "thu", "fri", "sat"),
)
GRACE = timedelta(hours=48)
GAP = timedelta(hours=20)
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in Lima

CLEAR = Situation(
    due_at=NOW,
    sale_cancelled=False,
    opted_out=None,
    has_address=True,
    open_case=False,
    last_message_at=None,
)


def lima(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=LIMA)


def run(
    situation: Situation,
    now: datetime = NOW,
    min_gap: timedelta = GAP,
    grace: timedelta = GRACE,
) -> Decision:
    return decide(situation, now=now, rules=RULES, grace=grace, min_gap=min_gap)


def test_nothing_in_the_way_sends() -> None:
    assert run(CLEAR) == Decision(Action.SEND)


EVERYTHING_WRONG = replace(
    CLEAR,
    due_at=NOW - timedelta(days=5),
    sale_cancelled=True,
    opted_out="keyword STOP",
    has_address=False,
    open_case=True,
    last_message_at=NOW - timedelta(hours=1),
)
SUNDAY_NIGHT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Sunday 22:00 in Lima


def test_the_rules_apply_in_order() -> None:
    situation = replace(EVERYTHING_WRONG, due_at=SUNDAY_NIGHT - timedelta(days=5))
    now = SUNDAY_NIGHT
    decision = run(situation, now)
    assert decision == Decision(Action.CANCEL, "the sale was cancelled")

    situation = replace(situation, sale_cancelled=False)
    decision = run(situation, now)
    assert decision == Decision(Action.SKIP, "the customer opted out (keyword STOP)")

    situation = replace(situation, opted_out=None)
    decision = run(situation, now)
    assert decision == Decision(
        Action.SKIP, "the customer has no address for this channel any more"
    )

    situation = replace(situation, has_address=True)
    assert run(situation, now) == Decision(Action.HOLD, "the customer has an open case")

    situation = replace(situation, open_case=False)
    decision = run(situation, now)
    assert decision == Decision(Action.SKIP, "120.0 h late when its turn came (grace 48.0 h)")

    situation = replace(situation, due_at=now)
    decision = run(situation, now)
    assert decision == Decision(
        Action.POSTPONE, "outside the send window", lima(30, 9).astimezone(UTC)
    )

    now = lima(30, 9).astimezone(UTC)
    situation = replace(situation, due_at=now, last_message_at=now - timedelta(hours=1))
    decision = run(situation, now)
    assert decision.action is Action.POSTPONE
    assert decision.reason == "another message went to this customer 1.0 h ago"

    situation = replace(situation, last_message_at=now - GAP)
    assert run(situation, now) == Decision(Action.SEND)


def test_late_within_grace_still_sends() -> None:
    situation = replace(CLEAR, due_at=NOW - GRACE)
    assert run(situation).action is Action.SEND
    situation = replace(CLEAR, due_at=NOW - GRACE - timedelta(seconds=1))
    assert run(situation).action is Action.SKIP


def test_outside_the_window_postpones_to_its_next_opening() -> None:
    late_evening = lima(24, 20, 30).astimezone(UTC)
    decision = run(replace(CLEAR, due_at=late_evening), late_evening)
    assert decision == Decision(
        Action.POSTPONE, "outside the send window", lima(25, 9).astimezone(UTC)
    )


def test_the_gap_postpones_to_last_message_plus_gap() -> None:
    last = lima(23, 16)  # Monday 16:00 Lima; + 20 h = Tuesday 12:00, inside the window
    decision = run(replace(CLEAR, last_message_at=last.astimezone(UTC)))
    assert decision.action is Action.POSTPONE
    assert decision.reason == "another message went to this customer 18.0 h ago"
    assert decision.due_at == lima(24, 12).astimezone(UTC)


def test_the_gap_end_is_fitted_into_the_window() -> None:
    last = lima(24, 9, 30)  # + 20 h = Wednesday 05:30, before the window opens
    now = lima(24, 10).astimezone(UTC)
    decision = run(replace(CLEAR, due_at=now, last_message_at=last.astimezone(UTC)), now)
    assert decision.action is Action.POSTPONE
    assert decision.due_at == lima(25, 9).astimezone(UTC)


def test_the_gap_end_skips_sunday() -> None:
    last = lima(28, 15)  # Saturday 15:00 + 20 h = Sunday 11:00: not a send day
    now = lima(28, 16).astimezone(UTC)
    decision = run(replace(CLEAR, due_at=now, last_message_at=last.astimezone(UTC)), now)
    assert decision.due_at == lima(30, 9).astimezone(UTC)


def test_a_zero_gap_disables_the_gap_rule() -> None:
    situation = replace(CLEAR, last_message_at=NOW - timedelta(seconds=1))
    assert run(situation, min_gap=timedelta(0)) == Decision(Action.SEND)


def test_a_message_older_than_the_gap_does_not_postpone() -> None:
    situation = replace(CLEAR, last_message_at=NOW - GAP - timedelta(minutes=1))
    assert run(situation) == Decision(Action.SEND)


def test_retry_delay_starts_at_half_a_minute_to_a_minute() -> None:
    assert retry_delay(1, 0) == timedelta(seconds=30)
    assert retry_delay(1, 0.5) == timedelta(seconds=45)
    assert retry_delay(1, 0.999999) == pytest.approx(
        timedelta(seconds=60), abs=timedelta(seconds=1)
    )
    assert retry_delay(1, 0.999999) < timedelta(seconds=60)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5])
def test_retry_delay_doubles_with_each_attempt(attempt: int) -> None:
    assert retry_delay(attempt + 1, 0) == 2 * retry_delay(attempt, 0)


def test_retry_delay_is_capped_at_an_hour() -> None:
    assert retry_delay(6, 0) == timedelta(minutes=16)  # 32 min, times 0.5
    assert retry_delay(7, 0) == RETRY_CAP / 2  # 64 min capped to 60, times 0.5
    assert retry_delay(7, 0.999999) <= RETRY_CAP
    assert retry_delay(7, 0.999999) == pytest.approx(RETRY_CAP, abs=timedelta(seconds=1))
    assert retry_delay(1000, 0) == RETRY_CAP / 2


@pytest.mark.parametrize("attempt", [0, -3])
def test_retry_delay_for_attempt_zero_or_less_is_the_base(attempt: int) -> None:
    assert retry_delay(attempt, 0) == timedelta(seconds=30)

"""Statuses move only along the allowed paths."""

from __future__ import annotations

import pytest

from scheduler.lifecycle import (
    CASE_TRANSITIONS,
    FOLLOW_UP_TRANSITIONS,
    PENDING,
    CaseStatus,
    FollowUpStatus,
    TransitionError,
    check_case_transition,
    check_follow_up_transition,
)

F = FollowUpStatus


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (F.SCHEDULED, F.SENDING),
        (F.SCHEDULED, F.HELD),
        (F.HELD, F.SCHEDULED),
        (F.SENDING, F.SENT),
        (F.SENDING, F.UNKNOWN),
        (F.SENT, F.DELIVERED),
        (F.UNKNOWN, F.SENT),
    ],
)
def test_allowed_follow_up_transitions(current: F, new: F) -> None:
    check_follow_up_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (F.DELIVERED, F.SENT),  # a late "sent" never overwrites "delivered"
        (F.SENT, F.SCHEDULED),  # never resent
        (F.UNKNOWN, F.SENDING),  # never resent blindly
        (F.CANCELLED, F.SCHEDULED),
        (F.SKIPPED, F.SENDING),
        (F.HELD, F.SENDING),
    ],
)
def test_forbidden_follow_up_transitions(current: F, new: F) -> None:
    with pytest.raises(TransitionError, match=f"cannot go from {current} to {new}"):
        check_follow_up_transition(current, new)


def test_every_status_has_a_rule() -> None:
    """A status added without its transitions would fail every move out of it at run time."""
    assert set(FOLLOW_UP_TRANSITIONS) == set(F)
    assert set(CASE_TRANSITIONS) == set(CaseStatus)
    assert PENDING == (F.SCHEDULED, F.HELD)  # what may still change before it goes out


def test_case_can_be_reopened_but_not_resolved_twice() -> None:
    check_case_transition(CaseStatus.OPEN, CaseStatus.RESOLVED)
    check_case_transition(CaseStatus.RESOLVED, CaseStatus.OPEN)
    with pytest.raises(TransitionError):
        check_case_transition(CaseStatus.RESOLVED, CaseStatus.RESOLVED)

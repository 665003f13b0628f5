"""Statuses move only along the allowed paths."""

from __future__ import annotations

import pytest

from scheduler.lifecycle import (
    CaseStatus,
    FollowUpStatus,
    TransitionError,
    check_case_transition,
    check_follow_up_transition,
    is_pending,
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
    for status in F:
        assert isinstance(is_pending(status), bool)
    assert [s for s in F if is_pending(s)] == [F.SCHEDULED, F.HELD]


def test_case_can_be_reopened_but_not_resolved_twice() -> None:
    check_case_transition(CaseStatus.OPEN, CaseStatus.RESOLVED)
    check_case_transition(CaseStatus.RESOLVED, CaseStatus.OPEN)
    with pytest.raises(TransitionError):
        check_case_transition(CaseStatus.RESOLVED, CaseStatus.RESOLVED)

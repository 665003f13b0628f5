"""What an outcome means, decided without a database: every branch of `outcomes.judge`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler.lifecycle import Channel, FollowUpStatus
from scheduler.sending.outcomes import Attempt, HeldBack, Tally, Verdict, judge
from scheduler.sending.transports import Failure, Sent, TransportError

F = FollowUpStatus
QUEUED = Sent("SM1", "queued")
BUSY = TransportError("Too Many Requests", failure=Failure.RETRY, code="20429")
TIMEOUT = TransportError("ReadTimeout", failure=Failure.UNCERTAIN)
INVALID = TransportError("not a mobile number", failure=Failure.PERMANENT, code="21614")
UNSUBSCRIBED = TransportError("unsubscribed recipient", failure=Failure.UNSUBSCRIBED, code="21610")


def verdict(attempt: Attempt, max_attempts: int = 5) -> Verdict:
    return judge(attempt, max_attempts=max_attempts, jitter=lambda: 0.0)


@pytest.mark.parametrize(
    "attempt, expected",
    [
        (Attempt(sent=QUEUED), Verdict(Tally.SENT, F.SENT, message_status="queued")),
        (
            Attempt(sent=Sent("SM1", "delivered"), looked_up=True),
            Verdict(Tally.RECONCILED, F.SENT, message_status="delivered", delivered=True),
        ),
        (  # a late "sent" never steps back from "delivered"
            Attempt(sent=Sent("SM1", "sent"), message_status="delivered"),
            Verdict(Tally.SENT, F.SENT, delivered=True),
        ),
        (  # another worker holds it: the message is recorded, the follow-up left alone
            Attempt(sent=QUEUED, still_ours=False),
            Verdict(Tally.LEASE_LOST, message_status="queued"),
        ),
        (Attempt(error=BUSY, still_ours=False), Verdict(Tally.LEASE_LOST)),
        (
            Attempt(held_back=HeldBack.WINDOW_CLOSED),
            Verdict(
                Tally.POSTPONED,
                F.SCHEDULED,
                "outside the send window",
                "not_sent",
                at_window=True,
                refund_attempt=True,
            ),
        ),
        (  # the sender's rate kept it past half its lease: put back for a while, no attempt
            Attempt(held_back=HeldBack.RATE_WAIT_TOO_LONG),
            Verdict(
                Tally.RELEASED,
                F.SCHEDULED,
                "waited too long for the sender's rate limit: put back before its lease",
                "not_sent",
                retry_in=timedelta(seconds=30),
                refund_attempt=True,
            ),
        ),
        (
            Attempt(held_back=HeldBack.HAND_OVER_FAILED, detail="database is locked"),
            Verdict(
                Tally.RELEASED, F.SCHEDULED, "could not hand over: database is locked", "not_sent"
            ),
        ),
        (
            Attempt(looked_up=True, attempts=2),
            Verdict(Tally.RECONCILED, F.SCHEDULED, "an earlier attempt never arrived", "not_sent"),
        ),
        (
            Attempt(looked_up=True, attempts=5),
            Verdict(
                Tally.FAILED,
                F.FAILED,
                "gave up after 5 attempts, none of which arrived",
                "not_sent",
            ),
        ),
        (
            Attempt(error=TIMEOUT, looked_up=True),
            Verdict(
                Tally.UNKNOWN,
                F.UNKNOWN,
                "could not tell whether it was sent: ReadTimeout; check with the provider",
                "uncertain",
            ),
        ),
        (
            Attempt(error=INVALID),
            Verdict(Tally.FAILED, F.FAILED, "21614: not a mobile number", "failed"),
        ),
        (
            Attempt(error=UNSUBSCRIBED),
            Verdict(
                Tally.FAILED, F.FAILED, "21610: unsubscribed recipient", "failed", opt_out=True
            ),
        ),
        (  # an email address unsubscribed with its provider: no SMS opt-out follows
            Attempt(error=UNSUBSCRIBED, channel=Channel.EMAIL),
            Verdict(Tally.FAILED, F.FAILED, "21610: unsubscribed recipient", "failed"),
        ),
        (  # a refusal for good that says nothing of consent
            Attempt(error=TransportError("21610 in the text", failure=Failure.PERMANENT)),
            Verdict(Tally.FAILED, F.FAILED, "21610 in the text", "failed"),
        ),
        (
            Attempt(error=BUSY, attempts=1),
            Verdict(
                Tally.RETRYING,
                F.SCHEDULED,
                "attempt 1 failed: 20429: Too Many Requests",
                "not_sent",
                retry_in=timedelta(seconds=30),
            ),
        ),
        (  # may have left: looked up before the next attempt
            Attempt(error=TIMEOUT, attempts=3),
            Verdict(
                Tally.RETRYING,
                F.SCHEDULED,
                "attempt 3 failed: ReadTimeout",
                "uncertain",
                retry_in=timedelta(minutes=2),
            ),
        ),
        (
            Attempt(error=BUSY, attempts=5),
            Verdict(
                Tally.FAILED,
                F.FAILED,
                "gave up after 5 attempts: 20429: Too Many Requests",
                "not_sent",
            ),
        ),
        (
            Attempt(error=TIMEOUT, attempts=5),
            Verdict(Tally.UNKNOWN, F.UNKNOWN, "gave up after 5 attempts: ReadTimeout", "uncertain"),
        ),
    ],
)
def test_what_an_outcome_means(attempt: Attempt, expected: Verdict) -> None:
    assert verdict(attempt) == expected


def test_a_retry_waits_as_long_as_the_provider_asked() -> None:
    asked = TransportError(
        "Too Many Requests", failure=Failure.RETRY, code="20429", retry_after=timedelta(minutes=5)
    )
    assert verdict(Attempt(error=asked)).retry_in == timedelta(minutes=5)

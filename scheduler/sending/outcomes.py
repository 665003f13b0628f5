"""What a send's outcome means for its follow-up: a pure decision, like `presend.decide`.

Dispatch hands a message to a transport (or looks up an earlier attempt) and gets back one of
three things: the provider took it, it failed in one of three ways, or it was held back before
the transport was called. `judge` says what that means (sent, retry later, failed, opted out,
unknown for a person, put back) from plain values; dispatch only writes the verdict down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from scheduler.lifecycle import Channel, FollowUpStatus, MessageStatus
from scheduler.sending.delivery import DELIVERED, moves_forward
from scheduler.sending.presend import retry_delay
from scheduler.sending.transports import Failure, Sent, TransportError


class HeldBack(StrEnum):
    """Why a claimed message was not handed to its transport (the follow-up's reason, or the
    queued message's)."""

    WINDOW_CLOSED = "outside the send window"
    RATE_WAIT_TOO_LONG = "waited too long for the sender's rate limit: put back before its lease"
    NOT_HANDED_OVER = "not handed over: the lease ran out, or the customer opted out meanwhile"
    STOPPING = "the worker is stopping"
    HAND_OVER_FAILED = "could not hand over"


class Tally(StrEnum):
    """The keys of a pass's summary, in the order it prints them."""

    RECOVERED = "recovered"
    CLAIMED = "claimed"
    SENT = "sent"
    RECONCILED = "reconciled"
    RETRYING = "retrying"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    HELD = "held"
    POSTPONED = "postponed"
    RELEASED = "released"
    LEASE_LOST = "lease_lost"


@dataclass(frozen=True)
class Attempt:
    """What came back for one message (a follow-up's, or one queued on its own), and where
    things stood."""

    sent: Sent | None = None
    error: TransportError | None = None
    held_back: HeldBack | None = None
    detail: str | None = None  # with HAND_OVER_FAILED: the database's words
    looked_up: bool = False  # a lookup of an earlier attempt, not a send
    still_ours: bool = True  # the follow-up (or queued message) is still this worker's
    attempts: int = 1  # hand-overs so far, this one included
    channel: Channel = Channel.SMS
    message_status: str = MessageStatus.NOT_SENT  # the message's status before this outcome


@dataclass(frozen=True)
class Verdict:
    tally: Tally
    follow_up: FollowUpStatus | None = None  # None: the follow-up is left as it is
    reason: str | None = None
    message_status: str | None = None  # None: unchanged
    retry_in: timedelta | None = None  # due again after this long (fitted to the window)
    at_window: bool = False  # due again when the send window next opens
    refund_attempt: bool = False  # it never reached the transport: not an attempt
    delivered: bool = False  # the provider already knows it arrived
    opt_out: bool = False  # the provider says the recipient unsubscribed


def judge(attempt: Attempt, *, max_attempts: int, jitter: Callable[[], float]) -> Verdict:
    """The meaning of one outcome; `jitter` gives a number in [0, 1) that spreads a retry."""
    sent, error = attempt.sent, attempt.error
    if sent is not None:  # whoever holds the follow-up now, the message left
        status = sent.status if moves_forward(attempt.message_status, sent.status) else None
        if not attempt.still_ours:
            return Verdict(Tally.LEASE_LOST, message_status=status)
        final = status or attempt.message_status
        return Verdict(
            Tally.RECONCILED if attempt.looked_up else Tally.SENT,
            FollowUpStatus.SENT,
            message_status=status,
            delivered=final in DELIVERED,
        )
    if not attempt.still_ours:  # another worker took it back; it will look it up first
        return Verdict(Tally.LEASE_LOST)
    if attempt.held_back is not None:
        reason = attempt.held_back.value
        if attempt.detail is not None:
            reason = f"{reason}: {attempt.detail}"
        closed = attempt.held_back is HeldBack.WINDOW_CLOSED
        slow = attempt.held_back is HeldBack.RATE_WAIT_TOO_LONG  # the sender is saturated
        return Verdict(
            Tally.POSTPONED if closed else Tally.RELEASED,
            FollowUpStatus.SCHEDULED,
            reason,
            MessageStatus.NOT_SENT,
            retry_in=retry_delay(1, jitter()) if slow else None,
            at_window=closed,
            refund_attempt=closed or slow,  # handed over, then not sent: not an attempt
        )
    if error is None:  # looked up, and certainly not sent
        if attempt.attempts >= max_attempts:
            reason = f"gave up after {attempt.attempts} attempts, none of which arrived"
            return Verdict(Tally.FAILED, FollowUpStatus.FAILED, reason, MessageStatus.NOT_SENT)
        reason = "an earlier attempt never arrived"
        return Verdict(Tally.RECONCILED, FollowUpStatus.SCHEDULED, reason, MessageStatus.NOT_SENT)
    if attempt.looked_up:
        reason = f"could not tell whether it was sent: {error}; check with the provider"
        return Verdict(Tally.UNKNOWN, FollowUpStatus.UNKNOWN, reason, MessageStatus.UNCERTAIN)
    if error.failure in (Failure.PERMANENT, Failure.UNSUBSCRIBED):
        # The provider's STOP list is for SMS; the opt-out it implies is recorded here too.
        unsubscribed = error.failure is Failure.UNSUBSCRIBED and attempt.channel is Channel.SMS
        return Verdict(
            Tally.FAILED,
            FollowUpStatus.FAILED,
            str(error),
            MessageStatus.FAILED,
            opt_out=unsubscribed,
        )
    status = (
        MessageStatus.UNCERTAIN if error.failure is Failure.UNCERTAIN else MessageStatus.NOT_SENT
    )
    if attempt.attempts >= max_attempts:
        final = (
            FollowUpStatus.UNKNOWN if status == MessageStatus.UNCERTAIN else FollowUpStatus.FAILED
        )
        reason = f"gave up after {attempt.attempts} attempts: {error}"
        tally = Tally.UNKNOWN if final is FollowUpStatus.UNKNOWN else Tally.FAILED
        return Verdict(tally, final, reason, status)
    delay = retry_delay(attempt.attempts, jitter(), error.retry_after)
    reason = f"attempt {attempt.attempts} failed: {error}"
    return Verdict(Tally.RETRYING, FollowUpStatus.SCHEDULED, reason, status, retry_in=delay)

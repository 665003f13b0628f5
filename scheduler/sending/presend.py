"""Whether a due follow-up may go now: the checks made again at the moment of sending.

Planning fixed a due time days or weeks ago; since then the customer may have opted out,
complained, or heard from us on another sale, and the worker may have been stopped. Pure
functions over plain values: dispatch gathers the facts, this decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from scheduler.sending.due_times import SendRules, fit_to_window

RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)


class Action(StrEnum):
    SEND = "send"
    CANCEL = "cancel"  # the sale was cancelled
    SKIP = "skip"  # will never be sent: opted out, or too late to still make sense
    HOLD = "hold"  # wait for the open case to be resolved
    POSTPONE = "postpone"  # send later: outside the window, or too soon after another message


@dataclass(frozen=True)
class Situation:
    """What is true about one due follow-up right now."""

    due_at: datetime
    sale_cancelled: bool
    opted_out: str | None  # how and when the customer opted out of this channel, if they did
    has_address: bool
    open_case: bool
    last_message_at: datetime | None  # the latest other message we sent this customer
    unreachable: str | None = None  # why no channel may take it (WhatsApp only, and not allowed)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str | None = None
    due_at: datetime | None = None  # the new due time, when postponed


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.1f} h"


def decide(
    situation: Situation,
    *,
    now: datetime,
    rules: SendRules,
    grace: timedelta,
    min_gap: timedelta,
) -> Decision:
    """The first rule that applies wins; the order puts the customer's wishes first."""
    if situation.sale_cancelled:
        return Decision(Action.CANCEL, "the sale was cancelled")
    if situation.opted_out:
        return Decision(Action.SKIP, f"the customer opted out ({situation.opted_out})")
    if situation.unreachable:
        return Decision(Action.SKIP, situation.unreachable)
    if not situation.has_address:
        return Decision(Action.SKIP, "the customer has no address for this channel any more")
    if situation.open_case:
        return Decision(Action.HOLD, "the customer has an open case")
    late = now - situation.due_at
    if late > grace:
        return Decision(
            Action.SKIP, f"{_hours(late)} late when its turn came (grace {_hours(grace)})"
        )
    in_window = fit_to_window(now, rules)
    if in_window > now:
        return Decision(Action.POSTPONE, "outside the send window", in_window)
    last = situation.last_message_at
    if min_gap and last is not None and now - last < min_gap:
        return Decision(
            Action.POSTPONE,
            f"another message went to this customer {_hours(now - last)} ago",
            fit_to_window(last + min_gap, rules),
        )
    return Decision(Action.SEND)


def retry_delay(attempt: int, jitter: float, asked: timedelta | None = None) -> timedelta:
    """Exponential backoff with jitter: 1, 2, 4 ... minutes up to an hour, times 0.5-1.0, and
    never sooner than the provider `asked` (a 429's Retry-After), up to that hour.

    `jitter` is a number in [0, 1) (random in production), so workers that failed together
    do not all come back in the same second.
    """
    base = min(RETRY_CAP, RETRY_BASE * (1 << min(max(0, attempt - 1), 20)))
    return max(base * (0.5 + jitter / 2), min(asked or timedelta(0), RETRY_CAP))

"""The statuses things move through, and the only transitions allowed between them.

Kept in one place so that dispatch, webhooks and the admin cannot invent a path of their own.
"""

from __future__ import annotations

from enum import StrEnum


class FollowUpStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    HELD = "held"  # waiting while the customer has an open case
    UNKNOWN = "unknown"  # the send may or may not have happened; a person or reconciliation decides


class MessageStatus(StrEnum):
    """Ours: before and around the hand-over to a transport, and a customer's reply's."""

    PREPARED = "prepared"  # composed and written down; not handed to the transport yet
    HANDED_OVER = "handed_over"  # being handed to the transport: it may have left
    UNCERTAIN = "uncertain"  # may have gone out: look it up before sending again
    NOT_SENT = "not_sent"  # certainly did not go out; may be tried again
    FAILED = "failed"  # refused for good (also the provider's word for it)
    RECEIVED = "received"  # a customer's reply
    DISMISSED = "dismissed"  # a reply from nobody we know, set aside by a person
    UNKNOWN = "unknown"  # a message on its own that nobody can tell went out: a person checks


# A queued message waits for the worker in these: to be sent, sent again, or looked up first;
# it is unfinished while waiting or being handed over.
WAITING = (MessageStatus.PREPARED, MessageStatus.NOT_SENT, MessageStatus.UNCERTAIN)
UNFINISHED = (*WAITING, MessageStatus.HANDED_OVER)
MAYBE_SENT = (MessageStatus.HANDED_OVER, MessageStatus.UNCERTAIN)  # look it up before a resend


class ProviderStatus(StrEnum):
    """The provider's (Twilio's names; "stored" is the outbox's)."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    STORED = "stored"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    READ = "read"


class CaseStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class SaleStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class Role(StrEnum):
    OWNER = "owner"
    STAFF = "staff"


class RemedyStatus(StrEnum):
    GRANTED = "granted"  # within the granting person's limit, or approved by the owner
    REQUESTED = "requested"  # above a staff member's limit: waits for the owner
    DECLINED = "declined"  # the owner said no


class ConsentSource(StrEnum):
    """How a customer said no on a channel; an opt-in clears it."""

    KEYWORD = "keyword"  # a keyword by SMS that we act on (BAJA, "STOP 🙏", ...)
    PROVIDER_KEYWORD = "provider_keyword"  # one the provider acts on itself (Twilio: STOP, END)
    WORDS = "words"  # in their own words ("no me escriban más")
    PROVIDER_REFUSAL = "provider_refusal"  # the provider refused a message: on its STOP list
    UNSUBSCRIBE_LINK = "unsubscribe_link"  # the one-click link in an email
    MATCHED = "matched"  # a stop from a number we did not know, matched to them by a person
    STAFF = "staff"  # recorded in the admin, with how the customer asked


class DeliveryOutcome(StrEnum):
    """What came of a shop's webhook delivery."""

    RECORDED = "recorded"  # the order's sale (new, or already recorded)
    CANCELLED = "cancelled"  # its sale cancelled, or remembered as cancelled before it was paid
    IGNORED = "ignored"  # nothing to do: not final yet, a partial refund, a topic not acted on
    REFUSED = "refused"  # signed but unreadable, or a sale intake refused: a person looks


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WHATSAPP = "whatsapp"  # through Twilio, to a phone whose owner opted in to it


# Channels with templates of their own: WhatsApp says what SMS says, from the SMS template.
TEMPLATE_CHANNELS = (Channel.SMS, Channel.EMAIL)


class Anchor(StrEnum):
    """What a cadence step's offset counts from."""

    SALE = "sale"
    RENEWAL = "renewal"  # the renewal date (offset usually negative); renewing products only
    SCORE = "score"  # the moment the customer gave a score that meets the step's condition
    CASE = "case"  # the moment a case was resolved ("did we solve it?")


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


_F = FollowUpStatus
FOLLOW_UP_TRANSITIONS: dict[FollowUpStatus, frozenset[FollowUpStatus]] = {
    _F.SCHEDULED: frozenset({_F.SENDING, _F.SKIPPED, _F.CANCELLED, _F.HELD, _F.SCHEDULED}),
    _F.HELD: frozenset({_F.SCHEDULED, _F.CANCELLED, _F.SKIPPED}),
    # Claimed: sent, or back to scheduled (a passing failure, postponed, released), or settled by
    # the checks made at sending time (held, cancelled, skipped).
    _F.SENDING: frozenset(
        {
            _F.SENT,
            _F.DELIVERED,
            _F.FAILED,
            _F.SCHEDULED,
            _F.UNKNOWN,
            _F.SKIPPED,
            _F.HELD,
            _F.CANCELLED,
        }
    ),
    _F.SENT: frozenset({_F.DELIVERED, _F.FAILED}),
    _F.UNKNOWN: frozenset({_F.SENT, _F.DELIVERED, _F.FAILED, _F.SCHEDULED}),
    _F.DELIVERED: frozenset(),
    _F.FAILED: frozenset(),
    _F.SKIPPED: frozenset(),
    _F.CANCELLED: frozenset(),
}

CASE_TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.RESOLVED}),
    CaseStatus.RESOLVED: frozenset({CaseStatus.OPEN}),  # "did we solve it?" answered no
}


class TransitionError(ValueError):
    """A status change that the lifecycle does not allow."""


def check_follow_up_transition(current: FollowUpStatus, new: FollowUpStatus) -> None:
    """Raise TransitionError unless a follow-up may go from `current` to `new`."""
    if new not in FOLLOW_UP_TRANSITIONS[current]:
        raise TransitionError(f"a follow-up cannot go from {current} to {new}")


def check_case_transition(current: CaseStatus, new: CaseStatus) -> None:
    """Raise TransitionError unless a case may go from `current` to `new`."""
    if new not in CASE_TRANSITIONS[current]:
        raise TransitionError(f"a case cannot go from {current} to {new}")


# Pending follow-ups are the ones a cancellation, an opt-out or a re-plan may still change.
PENDING = (FollowUpStatus.SCHEDULED, FollowUpStatus.HELD)

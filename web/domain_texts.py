"""The domain's texts that the admin shows, so that staff read them in their own language too:
its refusals, the names of its statuses, labels and kinds, and the reasons it writes down.

`scheduler/` knows nothing of Flask: its fixed texts are listed here (N_ marks them for
extraction) and looked up when shown. A text with values in it is listed as a pattern
("overdue by %(span)s when planned ..."): the values are kept, themselves translated when they
are texts of the domain. Anything else (a person's words, a provider's error) stays as written.
"""

from __future__ import annotations

import re
from typing import Any

from babel.dates import get_day_names
from flask_babel import format_date, get_locale, gettext, lazy_pgettext, ngettext

from scheduler.casework.cases import AT_RISK
from scheduler.casework.staff_actions import RemedyKind
from scheduler.config import WEEKDAYS
from scheduler.figures.at_risk import Sign, Signal
from scheduler.lifecycle import CaseStatus, Channel, FollowUpStatus, RemedyStatus, Role, SaleStatus
from scheduler.listening.classify import Label
from scheduler.listening.themes import Theme
from scheduler.sending.spreadsheet_dates import DateOrder


def N_(text: str) -> str:
    return text


TEXTS = (
    N_("the customer opted out of SMS: answer by email, or call them"),
    N_("the customer has no phone number"),
    N_("the customer opted out of email"),
    N_("the customer opted out of WhatsApp: answer by SMS or email"),
    N_("the customer's email address bounced: answer by SMS or WhatsApp"),
    N_(
        "WhatsApp's 24-hour window is closed (it opens when the customer writes there): "
        "answer by SMS or email"
    ),
    N_("the customer has no email address"),
    N_("the reply is empty"),
    N_("an email needs a subject"),
    N_("the note is empty"),
    N_("say what is given, in words the customer would understand"),
    N_("describe it in at most 500 characters"),
    N_("a discount is a percentage: at most 100"),
    N_("a discount needs a value of at least 0.01"),
    N_("a refund needs a value of at least 0.01"),
    N_("a replacement takes no value: say what is given in words"),
    N_("a other takes no value: say what is given in words"),
    N_("the case is resolved: a remedy belongs to an open case"),
    N_("only an owner can approve a remedy above the staff limits"),
    N_("only the person who asked can withdraw a request"),
    N_("only a reply from a customer can be matched"),
    N_("someone already dealt with this reply"),
    N_("say the customer's name"),
    N_("a customer already has this address: link the reply to them"),
    N_("say why it is dismissed"),
    N_("the worker has not read this reply yet: try again in a minute"),
    N_("this template answers a customer who wrote to us: a step cannot use it"),
    N_("say how it was resolved"),
    N_("choose at least one case"),
    N_("no such case"),
    N_("a remedy still waits for the owner's answer: withdraw it or ask the owner"),
    N_("the customer has no active sale to follow up on"),
    N_("the customer has opted out of every channel we could ask on"),
    N_(
        "the default cadence keeps an active step after a resolved case: every cadence without "
        "one uses it to ask whether the problem was really solved"
    ),
    N_("a token needs a name (who or what will use it)"),
    N_("a cadence needs a name"),
    N_("at most 100 characters"),
    N_("a cadence needs at least one step"),
    N_("a step cannot come before the sale"),
    N_("a step after a score needs one, such as score >= 9"),
    N_("lower-case letters, digits and dashes, such as day7-check-in"),
    N_("days must be a number, such as 7 or -14"),
    N_("hours must be a number, such as 7 or -14"),
    N_("the default cadence stays active: make another default"),
    N_("the file is empty"),
    N_("the file has a header but no sales"),
    # Why a follow-up is where it is (FollowUp.status_reason), and how a customer opted out.
    N_("the sale was cancelled"),
    N_("the customer has no address for this channel any more"),
    N_("the customer has an open case"),
    N_("outside the send window"),
    N_("no phone or email"),
    N_("taken back from a worker that stopped mid-send"),
    N_("an earlier attempt reached the provider"),
    N_("an earlier attempt never arrived"),
    N_("not handed over: the lease ran out, or the customer opted out meanwhile"),
    N_("the cadence was deactivated"),
    N_("resumed after the case closed"),
    N_("step removed from cadence"),
    N_("re-planned after a cadence change"),
    N_("the case was reopened"),
    N_("the provider reported it"),
    N_("cancelled through the API"),
    # A shop's webhook ended the sale (scheduler/sending/shop_deliveries.py).
    N_("Shopify cancelled the order"),
    N_("Shopify refunded the order's main item"),
    N_("WooCommerce cancelled or refunded the order"),
    N_("the shop cancelled the order before it was paid"),
    N_("asked by SMS to stop"),
    N_("one-click unsubscribe link"),
    N_("Twilio error 21610: replied STOP to our number"),
    # A sale typed in or imported (scheduler/sending/intake.py, scheduler/sending/csv_import.py).
    N_("must be text"),
    N_("is required"),
    N_("is required (ISO 8601, such as 2026-11-23T10:30:00)"),
    N_("a phone or an email is required"),
    N_("must be true or false (in a CSV: yes, no, or blank)"),
    N_("WhatsApp needs the customer's phone"),
    N_("must be a number such as 1899.90"),
    N_("must not be negative"),
    N_("has a name that is not text"),
    N_(
        "this is not a CSV file but a spreadsheet or another binary file: save the sales as CSV "
        "(values separated by commas or semicolons) and import that"
    ),
    # A setting changed in the admin (scheduler/config.py's checks).
    N_("must not be empty"),
    N_("expected a whole number, got str"),
    N_("expected a whole number, got float"),
    N_("unknown time zone (use an IANA name such as America/Lima)"),
    N_("expected HH:MM-HH:MM, such as 09:00-20:00"),
    N_("not a valid time of day"),
    N_("start must be before end"),
    N_("a day is listed twice"),
    N_("the business must be open at least one day a week"),
    N_("expected an http:// or https:// URL with a host"),
    N_("must not have a query or fragment"),
    N_("expected an E.164 number such as +15005550006"),
    N_("cannot be changed from the admin"),
    # What a person types (scheduler/typed_text.py), and their own log-in.
    N_("an SMS"),
    N_("an email"),
    N_("a subject"),
    N_("a note"),
    N_("an outcome"),
    N_("a reason"),
    N_("a name"),
    N_("a title"),
    N_("an answer"),
    N_("an answer in this language already has this title"),
    N_("say why"),
    N_("already paused"),
    N_("not paused"),
    N_("choose pause, resume or cancel"),
    N_("tick at least one follow-up"),
    N_("no such follow-up"),
    N_("it is paused already"),
    N_("it is not paused"),
    N_("a token's name"),
    N_("the case is already resolved"),
    N_("this remedy was already granted"),
    N_("this remedy was already declined"),
    N_("the customer has no address for that channel"),
    N_("say why (the customer's words, or how they asked)"),
    N_("say why the sale is cancelled"),
    N_("you cannot disable your own log-in"),
    N_("the current password is not right"),
    # A cadence edited in the admin (scheduler/sending/cadence_editing.py), a sale's attributes.
    N_("sms, whatsapp or email"),
    N_("at most 200 characters"),
    N_("must be an object of names and values"),
    # A product changed in the admin (scheduler/sending/products.py), and what its sales' pending
    # follow-ups became (scheduler/sending/replanning.py).
    N_("a product needs a name"),
    N_("must be a whole number of days, such as 365"),
    N_("the product no longer renews"),
    N_("the product follows no active cadence"),
    N_("this message already went out for this sale"),
    # A customer changed through the API (scheduler/customer_editing.py).
    N_("says the opposite of the other WhatsApp field: give one"),
    N_("say who asked for the change"),
    # A customer erased on request (scheduler/erasure.py, scheduler/consent.py).
    N_("the customer was erased on request: nothing can be sent to them again"),
    N_("erased on request"),
    N_("said no before their data was erased"),
    N_("the customer was erased"),
)
PATTERNS = (
    N_("customer %(id)s was erased already"),
    N_("%(value)s is not a date (YYYY-MM-DD)"),
    N_("%(date)s is not between %(earliest)s and %(latest)s"),
    N_("%(first)s is after the last day (%(last)s)"),
    N_("at most %(days)s days from the first"),
    N_("overdue by %(span)s when planned (grace %(grace)s)"),
    N_("%(late)s late when its turn came (grace %(grace)s)"),
    N_("another message went to this customer %(span)s ago"),
    N_("the customer opted out (%(how)s)"),
    N_("replied %(word)s by SMS"),
    N_("could not hand over: %(error)s"),
    N_("gave up after %(count)s attempts, none of which arrived"),
    N_("gave up after %(count)s attempts: %(error)s"),
    N_("could not tell whether it was sent: %(error)s; check with the provider"),
    N_("attempt %(count)s failed: %(error)s"),
    N_("the carrier reported %(status)s (error %(code)s)"),
    N_("the carrier reported %(status)s"),
    N_("the password must have at least %(count)s characters"),
    N_("a user with the email %(email)s already exists"),
    N_("%(email)s is the last owner who can log in: make another first"),
    N_("word %(word)s: between 1 and 100 letters, please"),
    N_("%(word)s is already a %(label)s word"),
    N_("must be at most %(limit)s characters (got %(count)s)"),
    N_("must be at most %(limit)s"),
    N_("%(value)s is not an ISO 8601 date and time (such as 2026-11-23T10:30:00-05:00)"),
    N_("%(value)s is more than %(hours)s hours in the future"),
    N_("%(value)s is more than %(days)s days in the past"),
    N_("%(value)s is not a number"),
    N_("contains the control character %(code)s"),
    N_("contains the invalid character %(code)s"),
    N_("has a name that %(problem)s"),
    N_("is nested more than %(count)s levels deep"),
    N_("%(value)s is not a number (such as 1899.90 or 1.899,90)"),
    N_("%(value)s could be read two ways: write it with its cents (1.899,00)"),
    N_("%(value)s has more than two decimals"),
    N_("%(value)s is not a known time zone (use an IANA name such as America/Lima)"),
    N_("%(value)s is not supported (use %(choices)s)"),
    N_("%(value)s is not an ISO 4217 code (such as PEN, USD)"),
    N_("%(value)s is not a valid email address: %(error)s"),
    N_("%(value)s is already on line %(line)s"),
    N_("more than %(count)s rows: split the file"),
    N_("the header lacks %(missing)s (it has: %(header)s)"),
    N_("the columns %(names)s appear twice"),
    N_("no column holds %(names)s"),
    N_("order %(name)s is %(status)s: only paid orders are followed up"),
    N_("order %(name)s is %(status)s: only completed orders are followed up"),
    N_("order %(name)s was cancelled"),
    N_("unknown fields: %(names)s"),
    N_("%(field)s is chosen for more than one column: %(names)s"),
    N_("%(count)s columns kept with the sale (at most %(limit)s): leave out the others"),
    N_("%(value)s could be read day first or month first: write it as %(one)s or %(other)s"),
    N_("%(value)s is not a date (such as 27/11/2026 or 27/11/2026 15:30)"),
    N_("has %(count)s fields where the header has %(expected)s"),
    N_("line %(line)s: %(problem)s"),
    N_("must be between %(low)s and %(high)s"),
    N_("expected a number above %(low)s, at most %(high)s (0 turns it off)"),
    N_("expected a number above %(low)s, at most %(high)s"),
    N_("expected a number from %(low)s to %(high)s (0 turns it off)"),
    N_("expected a number from %(low)s to %(high)s"),
    N_("must be one of: %(choices)s"),
    N_("expected a non-empty list of days from %(days)s"),
    N_("unknown day %(name)s (use %(days)s)"),
    N_("expected something like %(example)s"),
    N_("%(day)s: %(problem)s"),
    N_("%(raw)s is not a valid phone number (numbers without + are read as %(region)s)"),
    N_("%(what)s can have at most %(limit)s characters (%(count)s given)"),
    N_("%(what)s contains the control character %(code)s"),
    N_("%(what)s contains the invalid character %(code)s"),
    N_("%(email)s cannot log in any more"),
    N_("at most %(value)s"),
    N_("another cadence is called %(name)s"),
    N_("another cadence already serves %(category)s"),
    N_("one of %(choices)s"),
    N_("already used by step %(count)s"),
    N_("no %(channel)s template called %(name)s"),
    N_("label %(label)s: words can be added to %(labels)s"),
    N_("no product has the SKU %(sku)s"),
    N_("say why the case is opened"),
    N_("must be between %(low)s and %(high)s days"),
    N_("no cadence is called %(name)s"),
    N_("at most %(count)s cases at once"),
    N_("the product now follows the cadence %(name)s"),
    N_("differs from line %(line)s, which gives the product %(value)s"),
    N_("recorded as %(recorded)s, sent as %(sent)s"),
    N_("at most %(count)s follow-ups at once"),
    N_("it is %(status)s already"),
    N_("cancelled by a person: %(why)s"),
)
_FIXED = frozenset(TEXTS)
_SHAPES = {"day": "[a-z]{3}", "line": r"\d+", "count": r"\d+"}  # any other value: any text


def _matcher(text: str) -> re.Pattern[str]:
    def value(name: re.Match[str]) -> str:
        return f"(?P<{name[1]}>{_SHAPES.get(name[1], '.+?')})"

    return re.compile(re.sub(r"%\\\(([a-z_]+)\\\)s", value, re.escape(text)))


_MATCHERS = tuple((_matcher(text), text) for text in PATTERNS)

# The names of the domain's values, per kind: an enum's class name, or "MessageStatus" for the
# provider's and our own words for where a message is. The context tells translators what is
# named (a follow-up is masculine in Spanish, a sale feminine).
NAMES: dict[str, dict[str, Any]] = {
    "FollowUpStatus": {
        FollowUpStatus.SCHEDULED: lazy_pgettext("follow-up status", "scheduled"),
        FollowUpStatus.SENDING: lazy_pgettext("follow-up status", "sending"),
        FollowUpStatus.SENT: lazy_pgettext("follow-up status", "sent"),
        FollowUpStatus.DELIVERED: lazy_pgettext("follow-up status", "delivered"),
        FollowUpStatus.FAILED: lazy_pgettext("follow-up status", "failed"),
        FollowUpStatus.SKIPPED: lazy_pgettext("follow-up status", "skipped"),
        FollowUpStatus.CANCELLED: lazy_pgettext("follow-up status", "cancelled"),
        FollowUpStatus.HELD: lazy_pgettext("follow-up status", "held"),
        FollowUpStatus.UNKNOWN: lazy_pgettext("follow-up status", "unknown"),
    },
    "CaseStatus": {
        CaseStatus.OPEN: lazy_pgettext("case status", "open"),
        CaseStatus.RESOLVED: lazy_pgettext("case status", "resolved"),
    },
    "SaleStatus": {
        SaleStatus.ACTIVE: lazy_pgettext("sale status", "active"),
        SaleStatus.CANCELLED: lazy_pgettext("sale status", "cancelled"),
    },
    "Role": {
        Role.OWNER: lazy_pgettext("role", "owner"),
        Role.STAFF: lazy_pgettext("role", "staff"),
    },
    "RemedyStatus": {
        RemedyStatus.GRANTED: lazy_pgettext("remedy status", "granted"),
        RemedyStatus.REQUESTED: lazy_pgettext("remedy status", "requested"),
        RemedyStatus.DECLINED: lazy_pgettext("remedy status", "declined"),
    },
    "RemedyKind": {
        RemedyKind.DISCOUNT: lazy_pgettext("remedy kind", "discount"),
        RemedyKind.REFUND: lazy_pgettext("remedy kind", "refund"),
        RemedyKind.REPLACEMENT: lazy_pgettext("remedy kind", "replacement"),
        RemedyKind.OTHER: lazy_pgettext("remedy kind", "other"),
    },
    "DateOrder": {  # how a file's dates were read ("Dates read day first")
        DateOrder.DAY_FIRST: lazy_pgettext("date order", "day first"),
        DateOrder.MONTH_FIRST: lazy_pgettext("date order", "month first"),
    },
    "Channel": {
        Channel.SMS: lazy_pgettext("channel", "SMS"),
        Channel.EMAIL: lazy_pgettext("channel", "email"),
        Channel.WHATSAPP: lazy_pgettext("channel", "WhatsApp"),
    },
    "Label": {  # how a reply was read; a case's reason is the label that opened it
        Label.OBJECTION: lazy_pgettext("reply label", "objection"),
        Label.QUESTION: lazy_pgettext("reply label", "question"),
        Label.POSITIVE: lazy_pgettext("reply label", "positive"),
        Label.NEUTRAL: lazy_pgettext("reply label", "neutral"),
        Label.OPT_OUT: lazy_pgettext("reply label", "opt-out"),
        Label.OPT_IN: lazy_pgettext("reply label", "opt-in"),
        Label.HELP: lazy_pgettext("reply label", "help"),
        Label.AUTOMATIC: lazy_pgettext("reply label", "automatic"),
        AT_RISK: lazy_pgettext("reply label", "at risk (opened by a person)"),
    },
    "Theme": {  # what a complaint is about
        Theme.DELIVERY: lazy_pgettext("complaint theme", "delivery"),
        Theme.BREAKAGE: lazy_pgettext("complaint theme", "breakage"),
        Theme.BILLING: lazy_pgettext("complaint theme", "billing"),
        Theme.STAFF: lazy_pgettext("complaint theme", "staff"),
        Theme.WAITING: lazy_pgettext("complaint theme", "waiting"),
        Theme.PRODUCT: lazy_pgettext("complaint theme", "the product itself"),
    },
    "MessageStatus": {
        "prepared": lazy_pgettext("message status", "prepared"),
        "handed_over": lazy_pgettext("message status", "handing over"),
        "uncertain": lazy_pgettext("message status", "uncertain"),
        "not_sent": lazy_pgettext("message status", "not sent"),
        "unknown": lazy_pgettext("message status", "unknown: check with the provider"),
        "accepted": lazy_pgettext("message status", "accepted"),
        "scheduled": lazy_pgettext("message status", "scheduled"),
        "queued": lazy_pgettext("message status", "queued"),
        "sending": lazy_pgettext("message status", "sending"),
        "sent": lazy_pgettext("message status", "sent"),
        "stored": lazy_pgettext("message status", "kept in the outbox"),
        "delivered": lazy_pgettext("message status", "delivered"),
        "undelivered": lazy_pgettext("message status", "undelivered"),
        "failed": lazy_pgettext("message status", "failed"),
        "canceled": lazy_pgettext("message status", "cancelled"),
        "read": lazy_pgettext("message status", "read"),
        "receiving": lazy_pgettext("message status", "receiving"),
        "received": lazy_pgettext("message status", "received"),
        "dismissed": lazy_pgettext("message status", "dismissed"),
    },
    "AuditActor": {  # who did it, when not a person who logged in (audit.by_user)
        "customer": lazy_pgettext("audit log", "the customer"),
        "worker": lazy_pgettext("audit log", "the worker"),
        "twilio": lazy_pgettext("audit log", "Twilio"),
        "cli": lazy_pgettext("audit log", "the command line"),
        "init": lazy_pgettext("audit log", "postventa init"),
        "setup": lazy_pgettext("audit log", "the first set-up"),
        "demo": lazy_pgettext("audit log", "the demo data"),
    },
    "AuditEntity": {  # what an entry of the audit log is about
        "case": lazy_pgettext("audit log", "case"),
        "sale": lazy_pgettext("audit log", "sale"),
        "customer": lazy_pgettext("audit log", "customer"),
        "user": lazy_pgettext("audit log", "user"),
        "api_token": lazy_pgettext("audit log", "API token"),
        "cadence": lazy_pgettext("audit log", "cadence"),
        "product": lazy_pgettext("audit log", "product"),
        "template": lazy_pgettext("audit log", "template"),
        "lexicon_word": lazy_pgettext("audit log", "word"),
        "settings": lazy_pgettext("audit log", "settings"),
        "saved_answer": lazy_pgettext("audit log", "saved answer"),
        "follow_up": lazy_pgettext("audit log", "follow-up"),
    },
}


def translated(error: Exception | str) -> str:
    """The text in the reader's language: whole, else part by part ("a; b" is two problems)."""
    text = str(error)
    whole = _translate(text)
    if whole is not None:
        return whole
    return "; ".join(_translate(part) or part for part in text.split("; "))


def _translate(text: str) -> str | None:
    if text in _FIXED:
        return str(gettext(text))
    for pattern, template in _MATCHERS:
        found = pattern.fullmatch(text)
        if found:
            values = {name: translated(value) for name, value in found.groupdict().items()}
            return str(gettext(template, **values))
    return None


def named(value: object, kind: str | None = None) -> str:
    """The name of a status, label or kind in the reader's language; `kind` is the enum's name,
    given for a value kept as plain text ("Label" for a case's reason). Unknown: as it is."""
    name = NAMES.get(kind or type(value).__name__, {}).get(str(value))
    return str(name) if name is not None else str(value)


def theme_name(theme: Theme | None) -> str:
    """A theme of complaints in the reader's words; None is a complaint no word placed."""
    if theme is None:
        return str(lazy_pgettext("complaint theme", "nothing the words tell"))
    return named(theme, "Theme")


def why(signal: Signal) -> str:
    """Why a customer is at risk, in words, with the day it last showed."""
    day, count = format_date(signal.at, "medium"), signal.count  # the business's day
    if signal.sign is Sign.UNDELIVERED:
        text = ngettext(
            "%(num)d follow-up did not arrive (%(day)s), and none has since",
            "%(num)d follow-ups did not arrive (the last %(day)s), and none has since",
            count,
            day=day,
        )
    elif signal.sign is Sign.BOUNCED:
        text = gettext("their email address bounced (%(day)s)", day=day)
    elif signal.sign is Sign.SILENT_SCORE:
        text = gettext(
            "scored us %(score)d out of 10, without a word (%(day)s)", score=count, day=day
        )
    elif signal.sign is Sign.REOPENED:
        text = ngettext(
            "said their case was not solved (%(day)s)",
            "said %(num)d times their case was not solved (the last %(day)s)",
            count,
            day=day,
        )
    else:
        text = gettext(
            "bought again, but answered none of their last %(count)d follow-ups (the last %(day)s)",
            count=count,
            day=day,
        )
    return str(text)


def weekday(code: str) -> str:
    """A send day ("mon") as the reader abbreviates it ("lun")."""
    if code not in WEEKDAYS:
        return code
    return str(get_day_names("abbreviated", locale=get_locale())[WEEKDAYS.index(code)])

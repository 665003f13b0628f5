"""A customer's details and consent changed on someone's word (the JSON API's PATCH, the
customer's page): checked by the rules every other way in follows, consent written through
`consent`, and audited with who and why."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.addresses import normalise_email, normalise_phone
from scheduler.consent import (
    ERASED_CUSTOMER,
    ConsentError,
    opt_in,
    opt_out,
    staff_reason,
    staff_wording,
)
from scheduler.erasure import honour_earlier_no
from scheduler.lifecycle import Channel, ConsentSource
from scheduler.models import Customer
from scheduler.sending.intake import known_time_zone, supported_locale
from scheduler.typed_text import typed_text, unfit_character

Problem = tuple[str, str]
PROFILE = ("name", "phone", "email", "locale", "timezone")
# Each consent field: its channel, and whether `true` says no to it.
CONSENTS: dict[str, tuple[Channel, bool]] = {
    "sms_opt_out": (Channel.SMS, True),
    "email_opt_out": (Channel.EMAIL, True),
    "whatsapp_opt_in": (Channel.WHATSAPP, False),
    "whatsapp_opt_out": (Channel.WHATSAPP, True),
}
MAX_NAME = 200  # customers.name
MAX_BY = 100


class AddressTaken(ValueError):
    """The phone or email asked for is another customer's: one address, one person."""

    def __init__(self, field: str, customer_id: int) -> None:
        super().__init__(f"customer {customer_id} has this {field}")
        self.field = field
        self.customer_id = customer_id


@dataclass(frozen=True)
class CustomerEdit:
    """A checked change: `profile` holds the fields given (None: none, or the business's
    default), `consent` each channel to say no to (True) or yes to, with the field that asked."""

    profile: Mapping[str, str | None] = field(default_factory=dict)
    consent: Mapping[Channel, tuple[str, bool]] = field(default_factory=dict)
    by: str = ""
    reason: str = ""


def _name(text: str | None) -> str:
    name = (text or "").strip()
    if not name:
        raise ValueError("is required")
    if len(name) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters (got {len(name)})")
    unfit = unfit_character(name)
    if unfit:
        raise ValueError(unfit)
    return name


def _optional(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    """`check` for a field that may be emptied (null or blank: none, or the default)."""

    def checked(text: str | None) -> str | None:
        value = (text or "").strip()
        return check(value) if value else None

    return checked


def _checks(region: str) -> dict[str, Callable[[str | None], str | None]]:
    """Each field's check; phones without + are read as local to `region`."""
    return {
        "name": _name,
        "phone": _optional(lambda text: normalise_phone(text, region)),
        "email": _optional(normalise_email),
        "locale": _optional(supported_locale),
        "timezone": _optional(known_time_zone),
    }


def check_edit(
    profile: Mapping[str, str | None],
    consents: Mapping[str, bool],
    *,
    by: str | None,
    reason: str | None,
    region: str,
    why_needed: bool = False,
) -> CustomerEdit | list[Problem]:
    """The edit, or every problem with it by field. Consent changes need who (`by`) and why
    (`reason`), as on the customer's page, and so does any change when `why_needed`. On
    WhatsApp, where nothing goes without a yes, only a yes clears a no: `whatsapp_opt_out`
    false records one, and given with `whatsapp_opt_in` both must say the same."""
    problems: list[Problem] = []
    checked: dict[str, str | None] = {}
    checks = _checks(region)
    for name, text in profile.items():
        try:
            checked[name] = checks[name](text)
        except ValueError as error:
            problems.append((name, str(error)))
    wanted: dict[Channel, tuple[str, bool]] = {}
    for name, value in consents.items():
        channel, no_when_true = CONSENTS[name]
        says_no = value if no_when_true else not value
        if channel in wanted and wanted[channel][1] != says_no:
            problems.append((name, "says the opposite of the other WhatsApp field: give one"))
        wanted.setdefault(channel, (name, says_no))
    who = why = ""
    if consents or why_needed:
        try:
            who = typed_text(by, empty="say who asked for the change", what="who", most=MAX_BY)
        except ValueError as error:
            problems.append(("by", str(error)))
        try:
            why = staff_reason(reason)
        except ConsentError as error:
            problems.append(("reason", str(error)))
    if problems:
        return problems
    return CustomerEdit(checked, wanted, who, why)


def edit_customer(
    session: Session, customer: Customer, edit: CustomerEdit, *, now: datetime, actor: str
) -> list[Problem]:
    """Apply `edit`: the details first, then each consent change through `consent` (pending
    follow-ups skipped at once on a no). Returns the problems found only against the customer
    (a channel without an address), after which the caller rolls back; raises AddressTaken.
    A customer erased on request takes no new details: that would bring the person back."""
    if customer.erased_at is not None:
        return [("name", ERASED_CUSTOMER)]
    for name, column in (("phone", Customer.phone), ("email", Customer.email)):
        wanted = edit.profile.get(name)
        if wanted is not None and wanted != getattr(customer, name):
            other = session.scalar(select(Customer.id).where(column == wanted))
            if other is not None:
                raise AddressTaken(name, other)
    phone, email = (edit.profile.get(name, getattr(customer, name)) for name in ("phone", "email"))
    if phone is None and email is None:
        emptied = "email" if "email" in edit.profile else "phone"
        return [(emptied, "a phone or an email is required")]
    changed = sorted(
        name for name, value in edit.profile.items() if getattr(customer, name) != value
    )
    if "email" in changed:  # a bounce was the old address's
        customer.email_bounced_at = customer.email_bounce_reason = None
    if "phone" in changed:  # a yes to WhatsApp was given from the old number
        customer.whatsapp_opt_in_at = customer.whatsapp_opt_in_via = None
    for name in changed:
        setattr(customer, name, edit.profile[name])
    if {"phone", "email"} & set(changed):  # an address someone erased had: their no's hold
        honour_earlier_no(session, [(customer, now)], now=now, actor=actor)
    problems: list[Problem] = []
    wording: dict[Channel, str] = {}
    for channel, (name, _says_no) in edit.consent.items():
        try:
            wording[channel] = staff_wording(customer, channel, edit.reason, by=edit.by)
        except ConsentError as error:
            problems.append((name, str(error)))
    if problems:
        return problems
    if changed:
        session.flush()  # the unique email index speaks now, before any consent is written
        audit.record(
            session,
            at=now,
            actor=actor,
            action="customer.edit",
            entity_type="customer",
            entity_id=customer.id,
            fields=changed,
            **({"by": edit.by, "reason": edit.reason} if edit.reason else {}),
        )
    for channel, (name, says_no) in edit.consent.items():
        via = wording[channel]
        if says_no:
            opt_out(
                session,
                customer,
                channel=channel,
                source=ConsentSource.STAFF,
                via=via,
                now=now,
                actor=actor,
            )
        elif name != "whatsapp_opt_out" or customer.opt_out_at(channel) is not None:
            opt_in(session, customer, channel=channel, via=via, now=now, actor=actor)
    return []

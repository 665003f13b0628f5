"""What went out: every outbound message with its status, filtered and a page at a time; and,
while SMS go to the outbox transport (which keeps them instead of sending), a way to answer as
a customer would: the whole loop with `make run` and no Twilio account."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from scheduler.addresses import normalise_phone, whatsapp_address
from scheduler.clock import utcnow
from scheduler.figures.period import PeriodError, days_between
from scheduler.lifecycle import Channel
from scheduler.listening.inbound import triage
from scheduler.listening.reply_store import InboundMessage
from scheduler.models import Customer, Message
from scheduler.paging import read_id
from scheduler.sending.sent import STATUSES, SentFilter, sent_messages
from scheduler.sending.transports.outbox import SENDERS
from scheduler.typed_text import search_words
from web.database import db_session, services
from web.domain_texts import named, translated
from web.forms import named_options
from web.list_filters import UnreadableFilter, page_start, search_text
from web.webhooks import receive

blueprint = Blueprint("outbox", __name__)
PEOPLE = 100  # the phones offered when simulating a reply (a page's worth)


class SimulateForm(FlaskForm):  # type: ignore[misc]
    sender = StringField("from", validators=[DataRequired(), Length(max=32)])
    body = TextAreaField("body", validators=[DataRequired(), Length(max=1600)])
    channel = RadioField(
        "channel", choices=named_options((Channel.SMS, Channel.WHATSAPP)), default="sms"
    )


def _simulating() -> bool:
    return services().config.sms.transport == "outbox"


def _whatsapp_simulated() -> bool:
    return services().config.whatsapp.transport == "outbox"


FIELDS = ("q", "channel", "status", "from", "to", "customer")


def _filter(args: dict[str, str]) -> SentFilter:
    channel = None
    if args["channel"]:
        if args["channel"] not in set(Channel):
            raise UnreadableFilter(_("Channel: SMS, WhatsApp or email."))
        channel = Channel(args["channel"])
    if args["status"] and args["status"] not in STATUSES:
        raise UnreadableFilter(_("Status: choose one of the list."))
    customer = None
    if args["customer"]:
        try:
            customer = read_id(args["customer"])
        except ValueError:
            raise UnreadableFilter(_("Customer: a customer's number, such as 42.")) from None
    words = search_words(search_text(args["q"]))
    days = None
    if args["from"] or args["to"]:
        try:
            days = days_between(args["from"], args["to"], tz=services().config.business.tz)
        except PeriodError as problem:
            label = _("From") if problem.field == "from" else _("To")
            raise UnreadableFilter(f"{label}: {translated(problem)}") from None
    return SentFilter(channel, args["status"] or None, days, customer, words)


@blueprint.get("/outbox")
def index() -> str | tuple[str, int]:
    """Every message that went out (or is going), the newest first, a page at a time; filtered
    in the URL. A filter that cannot be read is a 400 that names the field."""
    session = db_session()
    given = {field: request.args.get(field, "").strip() for field in FIELDS}
    problem, following, after = None, None, None
    rows: list[tuple[Message, Customer | None]] = []
    try:
        wanted = _filter(given)
        after = page_start(_("Page: this link is not a page of the outbox."))
        rows, following = sent_messages(session, wanted, after=after)
    except UnreadableFilter as unreadable:
        problem = str(unreadable)
    customer = None
    if given["customer"] and problem is None:
        customer = session.get(Customer, int(given["customer"]))
    people = (  # the phones offered when simulating a reply, only then
        session.scalars(
            select(Customer).where(Customer.phone.isnot(None)).order_by(Customer.name).limit(PEOPLE)
        ).all()
        if _simulating()
        else []
    )
    page = render_template(
        "outbox.html",
        rows=rows,
        given=given,
        query={field: value for field, value in given.items() if value},
        following=following,
        after=after,
        problem=problem,
        statuses=STATUSES,
        customer=customer,
        form=SimulateForm(),
        simulating=_simulating(),
        whatsapp=_whatsapp_simulated(),
        customers=people,
    )
    return (page, 400) if problem else page


@blueprint.post("/outbox/simulate")
def simulate() -> BaseResponse | tuple[str, int]:
    """Store the reply exactly as the Twilio webhook would, then read it as the worker would."""
    if not _simulating():
        return _('Only while SMS go to the outbox (sms.transport = "outbox").'), 409
    form = SimulateForm()
    if not form.validate_on_submit():
        flash(_("Say who writes and what."), "error")
        return redirect(url_for("outbox.index"))
    config, now = services().config, utcnow()
    try:  # a customer's number: short codes and alphanumeric senders are nobody's customer
        sender = normalise_phone(form.sender.data, config.business.country)
    except ValueError as error:
        flash(translated(error), "error")
        return redirect(url_for("outbox.index"))
    channel = Channel(form.channel.data)
    if channel is Channel.WHATSAPP and _whatsapp_simulated():
        sender = whatsapp_address(sender)
    else:
        channel = Channel.SMS
    message = InboundMessage(
        f"SIM{uuid.uuid4().hex}", sender, SENDERS[channel], form.body.data, channel
    )
    answer = receive(db_session(), message)
    triage(services().sessions, config, now=now)
    flash(_("Reply received as if by %(channel)s.", channel=named(channel)))
    if answer:
        flash(_("Answered at once: %(text)s", text=answer))
    return redirect(url_for("outbox.index"))

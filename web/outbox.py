"""What the outbox transport kept instead of sending, and, while SMS go to the outbox, a way to
answer as a customer would: the whole loop with `make run` and no Twilio account."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from scheduler.addresses import normalise_phone, whatsapp_address
from scheduler.clock import utcnow
from scheduler.lifecycle import Channel
from scheduler.listening.inbound import InboundMessage, triage
from scheduler.models import Customer, OutboxEntry
from scheduler.sending.transports.outbox import SENDERS
from web.database import db_session, services
from web.domain_texts import named, translated
from web.forms import named_options
from web.webhooks import receive

blueprint = Blueprint("outbox", __name__)
PAGE = 200


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


@blueprint.get("/outbox")
def index() -> str:
    session = db_session()
    entries = session.scalars(select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(PAGE)).all()
    people = session.scalars(
        select(Customer).where(Customer.phone.isnot(None)).order_by(Customer.name).limit(PAGE)
    ).all()
    return render_template(
        "outbox.html",
        entries=entries,
        form=SimulateForm(),
        simulating=_simulating(),
        whatsapp=_whatsapp_simulated(),
        customers=people,
    )


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
